"""`python -m presencesync`: the commands (cli.py)."""

import sys

from presencesync.cli import main

sys.exit(main())
