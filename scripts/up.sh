#!/usr/bin/env bash
# Set up and deploy one tenant: scripts/up.sh [STACK] (default: dev), on a local file backend unless
# PULUMI_BACKEND_URL says otherwise. Creates .venv and validates the stack offline first (that needs no
# CLI), then uses a Pulumi CLI new enough for the post-deploy hook, installing a pinned one into
# .pulumi/bin when none is found, and runs pulumi up.
set -euo pipefail
cd "$(dirname "$0")/.."
stack="${1:-dev}"
pinned=3.272.0   # the CLI installed when no usable one is found (the SDK's own version)
minimum=3.238.0  # from here a failing post-deploy hook fails pulumi up (presencesync/fleet.py: MINIMUM_CLI)
# Pulumi's official installer; the tests put a stand-in here.
installer="${PRESENCESYNC_PULUMI_INSTALLER:-}"

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
.venv/bin/python -m presencesync check --stack "$stack" >/dev/null

version_of() {  # "v3.272.0" -> 3.272.0; nothing when it does not run
  "$1" version 2>/dev/null | sed -n 's/^v\{0,1\}\([0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1
}
new_enough() {
  local found
  found="$(version_of "$1")"
  [ -n "$found" ] && [ "$(printf '%s\n%s\n' "$minimum" "$found" | sort -V | head -n 1)" = "$minimum" ]
}

pulumi=""
for candidate in "$PWD/.pulumi/bin/pulumi" "$(command -v pulumi || true)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && new_enough "$candidate"; then
    pulumi="$candidate"
    break
  fi
done
if [ -z "$pulumi" ]; then
  if found="$(command -v pulumi)"; then
    echo "up.sh: $found is Pulumi CLI '$(version_of "$found")', not $minimum or newer" >&2
  fi
  echo "up.sh: installing Pulumi CLI $pinned into $PWD/.pulumi/bin (only for this project)" >&2
  install_args=(--no-edit-path --install-root "$PWD/.pulumi" --version "$pinned")
  if [ -n "$installer" ]; then
    "$installer" "${install_args[@]}" || failed=1
  else
    curl -fsSL https://get.pulumi.com/install.sh | sh -s -- "${install_args[@]}" || failed=1
  fi
  pulumi="$PWD/.pulumi/bin/pulumi"
  if [ -n "${failed:-}" ] || ! new_enough "$pulumi"; then
    echo "error: installing Pulumi CLI $pinned failed; install $minimum or newer yourself" \
      "(https://www.pulumi.com/docs/install/) and rerun" >&2
    exit 1
  fi
fi
# The CLI finds its language host (pulumi-language-python) beside itself or on PATH.
PATH="$(dirname "$pulumi"):$PATH"
export PATH
echo "up.sh: using $pulumi ($(version_of "$pulumi"))" >&2

export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$HOME/.presencesync-state}"
[[ "$PULUMI_BACKEND_URL" == file://* ]] && mkdir -p "${PULUMI_BACKEND_URL#file://}"
"$pulumi" stack select --create "$stack"
"$pulumi" up --stack "$stack"
