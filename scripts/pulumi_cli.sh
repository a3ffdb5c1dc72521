#!/usr/bin/env bash
# Print the path of a Pulumi CLI new enough for the post-deploy hook: .pulumi/bin/pulumi, else pulumi on
# PATH, else the pinned version installed into .pulumi/bin (for this project only) with Pulumi's
# official installer. Messages go to stderr; exit 1, with one line, when none can be had.
set -euo pipefail
cd "$(dirname "$0")/.."
pinned=3.272.0   # the CLI installed when no usable one is found (the SDK's own version)
minimum=3.238.0  # from here a failing post-deploy hook fails pulumi up (presencesync/fleet.py: MINIMUM_CLI)
# Pulumi's official installer; the tests put a stand-in here.
installer="${PRESENCESYNC_PULUMI_INSTALLER:-}"

version_of() {  # "v3.272.0" -> 3.272.0; nothing when it does not run
  "$1" version 2>/dev/null | sed -n 's/^v\{0,1\}\([0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1
}
new_enough() {
  local found
  found="$(version_of "$1")"
  [ -n "$found" ] && [ "$(printf '%s\n%s\n' "$minimum" "$found" | sort -V | head -n 1)" = "$minimum" ]
}

for candidate in "$PWD/.pulumi/bin/pulumi" "$(command -v pulumi || true)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && new_enough "$candidate"; then
    echo "$candidate"
    exit 0
  fi
done
if found="$(command -v pulumi)"; then
  echo "pulumi_cli.sh: $found is Pulumi CLI '$(version_of "$found")', not $minimum or newer" >&2
fi
echo "pulumi_cli.sh: installing Pulumi CLI $pinned into $PWD/.pulumi/bin (only for this project)" >&2
install_args=(--no-edit-path --install-root "$PWD/.pulumi" --version "$pinned")
if [ -n "$installer" ]; then
  "$installer" "${install_args[@]}" >&2 || failed=1
else
  curl -fsSL https://get.pulumi.com/install.sh | sh -s -- "${install_args[@]}" >&2 || failed=1
fi
if [ -n "${failed:-}" ] || ! new_enough "$PWD/.pulumi/bin/pulumi"; then
  echo "error: installing Pulumi CLI $pinned failed; install $minimum or newer yourself" \
    "(https://www.pulumi.com/docs/install/) and rerun" >&2
  exit 1
fi
echo "$PWD/.pulumi/bin/pulumi"
