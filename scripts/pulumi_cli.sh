#!/usr/bin/env bash
# Print the path of a Pulumi CLI new enough for the post-deploy hook: .pulumi/bin/pulumi, else pulumi on
# PATH, else the pinned release installed into .pulumi/bin (for this project only): its archive from
# Pulumi's GitHub release, checked against the release's checksums file before anything is unpacked
# (no installer script runs). Messages go to stderr; exit 1, with one line, when none can be had.
set -euo pipefail
cd "$(dirname "$0")/.."
pinned=3.272.0   # the CLI installed when no usable one is found (the SDK's own version)
minimum=3.238.0  # from here a failing post-deploy hook fails pulumi up (presencesync/fleet.py: MINIMUM_CLI)
# The tests put a stand-in installer here (taking install.sh's arguments), or a loopback release server.
installer="${PRESENCESYNC_PULUMI_INSTALLER:-}"
releases="${PRESENCESYNC_PULUMI_RELEASES:-https://github.com/pulumi/pulumi/releases/download}"

version_of() {  # "v3.272.0" -> 3.272.0; nothing when it does not run
  "$1" version 2>/dev/null | sed -n 's/^v\{0,1\}\([0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1
}
new_enough() {
  local found
  found="$(version_of "$1")"
  [ -n "$found" ] && [ "$(printf '%s\n%s\n' "$minimum" "$found" | sort -V | head -n 1)" = "$minimum" ]
}

sha256_of() {
  if command -v sha256sum >/dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d ' ' -f 1
}
# Pulumi's release assets (.goreleaser.yml in pulumi/pulumi): pulumi-v<version>-<os>-<arch>.tar.gz, which
# unpacks into pulumi/, and pulumi-<version>-checksums.txt, lines of "<sha256>  <file name>".
install_release() {
  local os arch archive expected actual
  case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) echo "pulumi_cli.sh: no Pulumi release for $(uname -s)" >&2; return 1 ;; esac
  case "$(uname -m)" in x86_64 | amd64) arch=x64 ;; aarch64 | arm64) arch=arm64 ;; *) echo "pulumi_cli.sh: no Pulumi release for $(uname -m)" >&2; return 1 ;; esac
  archive="pulumi-v$pinned-$os-$arch.tar.gz"
  curl -fsSL -o "$download/$archive" "$releases/v$pinned/$archive" || return 1
  curl -fsSL -o "$download/checksums.txt" "$releases/v$pinned/pulumi-$pinned-checksums.txt" || return 1
  expected="$(awk -v name="$archive" '$2 == name { print $1 }' "$download/checksums.txt")"
  actual="$(sha256_of "$download/$archive")"
  if [ -z "$expected" ] || [ "$expected" != "$actual" ]; then
    echo "pulumi_cli.sh: $archive does not match its checksum in pulumi-$pinned-checksums.txt; nothing installed" >&2
    return 1
  fi
  tar -xzf "$download/$archive" -C "$download" || return 1
  mkdir -p "$PWD/.pulumi/bin" || return 1
  cp "$download"/pulumi/* "$PWD/.pulumi/bin/"
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
  download="$(mktemp -d)"
  trap 'rm -rf "$download"' EXIT
  install_release >&2 || failed=1
fi
if [ -n "${failed:-}" ] || ! new_enough "$PWD/.pulumi/bin/pulumi"; then
  echo "error: installing Pulumi CLI $pinned failed; install $minimum or newer yourself" \
    "(https://www.pulumi.com/docs/install/) and rerun" >&2
  exit 1
fi
echo "$PWD/.pulumi/bin/pulumi"
