#!/usr/bin/env bash
# Set up the dev environment if needed, then lint, type-check and run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
# Debian packages the tests use: shellcheck (actionlint's run: checks), chromium (the fleet page, whose
# browser test is skipped without it), npm (the Teams card's renderer, below).
missing=()
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null 2>&1 ||
      echo "test.sh: could not install ${missing[*]} with apt-get" >&2
  else
    echo "test.sh: missing ${missing[*]} (as root: apt-get install ${missing[*]})" >&2
  fi
fi
# Microsoft's Adaptive Cards renderer and Teams' host config for the Teams card's browser test, from npm,
# pinned by tests/adaptivecards/package-lock.json (installed again only when the lock file changes).
cards=.cache/adaptivecards
if command -v npm >/dev/null && ! cmp -s tests/adaptivecards/package-lock.json "$cards/installed-lock.json"; then
  mkdir -p "$cards"
  cp tests/adaptivecards/package.json tests/adaptivecards/package-lock.json tests/adaptivecards/.npmrc "$cards/"
  if (cd "$cards" && npm ci --no-audit --no-fund --silent >/dev/null 2>&1); then
    cp tests/adaptivecards/package-lock.json "$cards/installed-lock.json"
  else
    echo "test.sh: could not install the adaptivecards npm packages; the Teams card's browser test will be skipped" >&2
  fi
fi
.venv/bin/ruff check .
.venv/bin/mypy
# Two workers, one per core; each test's fake listens on an address of its own.
.venv/bin/python -m pytest -n 2 "$@"
