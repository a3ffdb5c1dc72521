#!/usr/bin/env bash
# The slow tests apart from the quick suite, with the real Azure CLI against the loopback fakes: the az
# script (tests/test_az_script.py) and scripts/bootstrap.sh (tests/test_bootstrap.py), every test marked
# `az`. Installs the Azure CLI once into .cache/azure-cli.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/test.sh --collect-only >/dev/null
if [ ! -x .cache/azure-cli/bin/az ]; then
  python3 -m venv .cache/azure-cli
  .cache/azure-cli/bin/pip install --quiet --disable-pip-version-check azure-cli==2.91.0
fi
.venv/bin/python -m pytest -m az "$@"
