"""`python -m presencesync`: the commands (cli.py)."""

import sys

from presencesync.errors import missing_dependency

try:
    from presencesync.cli import main
except ModuleNotFoundError as missing:  # run outside the virtual environment: say how to set it up
    sys.exit(missing_dependency(missing.name))

sys.exit(main())
