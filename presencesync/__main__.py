import sys

from presencesync.cli import main

sys.exit(main())
