#!/usr/bin/env bash
# Set up and deploy one tenant: scripts/up.sh [STACK] (default: dev), on a local file backend unless
# PULUMI_BACKEND_URL says otherwise. Validates the stack offline first, then runs pulumi up.
set -euo pipefail
cd "$(dirname "$0")/.."
stack="${1:-dev}"
if ! command -v pulumi >/dev/null; then
  echo "error: the Pulumi CLI is not installed; install it (https://www.pulumi.com/docs/install/) and rerun" >&2
  exit 1
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$HOME/.presencesync-state}"
[[ "$PULUMI_BACKEND_URL" == file://* ]] && mkdir -p "${PULUMI_BACKEND_URL#file://}"
.venv/bin/python -m presencesync check --stack "$stack" >/dev/null
pulumi stack select --create "$stack"
pulumi up --stack "$stack"
