"""``python -m softmax.cli``: the same command as ``softmax``."""

import sys

from .core import main

sys.exit(main())
