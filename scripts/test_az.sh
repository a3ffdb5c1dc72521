#!/usr/bin/env bash
# The slow test apart from the quick suite: the az script run with the real Azure CLI against the
# loopback fake (tests/test_az_script.py). Installs the Azure CLI once into .cache/azure-cli.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/test.sh --collect-only >/dev/null
if [ ! -x .cache/azure-cli/bin/az ]; then
  python3 -m venv .cache/azure-cli
  .cache/azure-cli/bin/pip install --quiet --disable-pip-version-check azure-cli==2.91.0
fi
.venv/bin/python -m pytest -m az "$@"
