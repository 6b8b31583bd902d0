"""``python -m softmax``: the command line (see softmax.cli)."""

import sys

from .cli import main

sys.exit(main())
