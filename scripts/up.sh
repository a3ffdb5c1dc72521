#!/usr/bin/env bash
# Set up and deploy one tenant: scripts/up.sh [STACK] (default: dev), on a local file backend unless
# PULUMI_BACKEND_URL says otherwise. Creates .venv and validates the stack offline first (that needs no
# CLI), then finds or installs a Pulumi CLI new enough for the post-deploy hook (scripts/pulumi_cli.sh)
# and runs pulumi up.
set -euo pipefail
cd "$(dirname "$0")/.."
stack="${1:-dev}"

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
.venv/bin/python -m presencesync check --stack "$stack" >/dev/null

pulumi="$(bash scripts/pulumi_cli.sh)"
# The CLI finds its language host (pulumi-language-python) beside itself or on PATH.
PATH="$(dirname "$pulumi"):$PATH"
export PATH
echo "up.sh: using $pulumi ($("$pulumi" version))" >&2

export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$HOME/.presencesync-state}"
[[ "$PULUMI_BACKEND_URL" == file://* ]] && mkdir -p "${PULUMI_BACKEND_URL#file://}"
"$pulumi" stack select --create "$stack"
"$pulumi" up --stack "$stack"
