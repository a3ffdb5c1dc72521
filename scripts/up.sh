#!/usr/bin/env bash
# Set up and deploy one tenant: scripts/up.sh STACK, on a local file backend unless
# PULUMI_BACKEND_URL says otherwise. Creates .venv and validates the stack offline first (that needs no
# CLI), then finds or installs a Pulumi CLI new enough for the post-deploy hook (scripts/pulumi_cli.sh),
# reads with the deployer's credentials what the tenant would refuse (preflight: it stops here, before
# anything is created) and runs pulumi up.
set -euo pipefail
cd "$(dirname "$0")/.."
stack="${1:?usage: bash scripts/up.sh STACK (make the stack with python -m presencesync new-tenant)}"
if head -n 1 "Pulumi.$stack.yaml" 2>/dev/null | grep -q '^# An example stack' && [ "${PRESENCESYNC_DEPLOY_EXAMPLE:-}" != 1 ]; then
  echo "up.sh: Pulumi.$stack.yaml is the example stack (made-up tenant and owner): make your own with python -m" \
    "presencesync new-tenant, or set PRESENCESYNC_DEPLOY_EXAMPLE=1 to deploy the example" >&2
  exit 1
fi

# A virtual environment made here also gets the project itself, with its `presencesync` command.
[ -x .venv/bin/python ] || { python3 -m venv .venv && fresh_venv=1; }
.venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
[ -z "${fresh_venv:-}" ] || .venv/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
.venv/bin/python -m presencesync check --stack "$stack" >/dev/null

pulumi="$(bash scripts/pulumi_cli.sh)"
# The CLI finds its language host (pulumi-language-python) beside itself or on PATH.
PATH="$(dirname "$pulumi"):$PATH"
export PATH
echo "up.sh: using $pulumi ($("$pulumi" version))" >&2

export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$HOME/.presencesync-state}"
[[ "$PULUMI_BACKEND_URL" == file://* ]] && mkdir -p "${PULUMI_BACKEND_URL#file://}"
"$pulumi" stack select --create "$stack"
.venv/bin/python -m presencesync preflight --stack "$stack"
"$pulumi" up --stack "$stack"
