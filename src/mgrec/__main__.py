"""`python -m mgrec ...`: the same command line as `mgrec ...` (`mgrec.cli`)."""

import sys

from mgrec.cli import main

sys.exit(main())
