#!/usr/bin/env bash
# Set up and deploy one tenant: bash scripts/up.sh STACK, on a local file backend unless
# PULUMI_BACKEND_URL says otherwise. First it creates .venv with the project installed (its `presencesync`
# command), so it is the first command on a fresh machine: without a stack, or for a stack with no file yet,
# it ends there with the command that makes one. Then it validates the stack offline (that needs no CLI),
# finds or installs a Pulumi CLI new enough for the post-deploy hook (scripts/pulumi_cli.sh), selects or
# creates the stack, has the CLI ask for the sync user's password where a new stack has none, reads with the
# deployer's credentials what the tenant would refuse (preflight: it stops here, before anything is
# created) and runs pulumi up.
set -euo pipefail
cd "$(dirname "$0")/.."
stack="${1:-}"

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
[ -x .venv/bin/presencesync ] || .venv/bin/pip install --quiet --disable-pip-version-check --no-deps -e .

make_stack() { echo ".venv/bin/presencesync new-tenant $1 --tenant-id <GUID> --profile ucwa|graph --sync-user <UPN>"; }
if [ -z "$stack" ]; then
  echo "up.sh: .venv is set up; next, make the tenant's stack: $(make_stack STACK), then bash scripts/up.sh STACK" >&2
  exit 64
fi
if [ ! -f "Pulumi.$stack.yaml" ]; then
  echo "up.sh: there is no Pulumi.$stack.yaml; make it with: $(make_stack "$stack")" >&2
  exit 1
fi
if head -n 1 "Pulumi.$stack.yaml" | grep -q '^# An example stack' && [ "${PRESENCESYNC_DEPLOY_EXAMPLE:-}" != 1 ]; then
  echo "up.sh: Pulumi.$stack.yaml is the example stack (made-up tenant and owner): make your own with" \
    "$(make_stack STACK), or set PRESENCESYNC_DEPLOY_EXAMPLE=1 to deploy the example" >&2
  exit 1
fi

# check exits 3 when the stack's only problem is the sync user's missing password (a new stack): the CLI
# sets it below, once the stack exists. Any other problem stops here, before any CLI is looked for.
verdict=0
problems="$(.venv/bin/python -m presencesync check --stack "$stack" 2>&1 >/dev/null)" || verdict=$?
if [ "$verdict" = 3 ]; then
  echo "up.sh: Pulumi.$stack.yaml has no sync user password yet; it is set once the stack exists" >&2
else
  [ -z "$problems" ] || printf '%s\n' "$problems" >&2
  [ "$verdict" = 0 ] || exit 1
fi

pulumi="$(bash scripts/pulumi_cli.sh)"
# The CLI finds its language host (pulumi-language-python) beside itself or on PATH.
PATH="$(dirname "$pulumi"):$PATH"
export PATH
echo "up.sh: using $pulumi ($("$pulumi" version))" >&2

export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$HOME/.presencesync-state}"
[[ "$PULUMI_BACKEND_URL" == file://* ]] && mkdir -p "${PULUMI_BACKEND_URL#file://}"
if [ "$verdict" = 3 ]; then
  # A new stack gets the secrets provider the repository's other stacks use, as new-tenant's stack init.
  provider="$(.venv/bin/python -m presencesync secrets-provider --stack "$stack")"
  "$pulumi" stack select --create "$stack" ${provider:+--secrets-provider "$provider"}
  set_password=("$pulumi" config set --secret presencesync:syncUserPassword --stack "$stack")
  # The CLI prompts only with a terminal on stdin and stdout (cmdutil.Interactive); the password goes
  # from there to the CLI, never through this script or presencesync.
  if ! { [ -t 0 ] && [ -t 1 ]; }; then
    command="PULUMI_BACKEND_URL=$(printf '%q' "$PULUMI_BACKEND_URL") $(printf '%q ' "${set_password[@]}")"
    echo "up.sh: no terminal to ask for the sync user's password; on one, run ${command}(it prompts)," \
      "then bash scripts/up.sh $stack" >&2
    exit 1
  fi
  "${set_password[@]}"
  .venv/bin/python -m presencesync check --stack "$stack" >/dev/null
else
  "$pulumi" stack select --create "$stack"
fi
.venv/bin/python -m presencesync preflight --stack "$stack"
"$pulumi" up --stack "$stack"
