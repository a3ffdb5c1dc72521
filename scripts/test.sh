#!/usr/bin/env bash
# Set up the dev environment if needed, then lint, type-check and run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
# The fleet page is tested in Debian's headless Chromium; without it that test is skipped.
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 ||
      echo "test.sh: chromium could not be installed; the fleet page's browser test will be skipped" >&2
  else
    echo "test.sh: no chromium (as root: apt-get install chromium); the fleet page's browser test will be skipped" >&2
  fi
fi
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
