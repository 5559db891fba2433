"""``python -m smoe_gui.cli``."""

import sys

from . import main

sys.exit(main())
