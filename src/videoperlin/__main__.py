"""``python -m videoperlin`` runs the command line."""

import sys

from videoperlin.cli import main

sys.exit(main())
