"""``python -m smoe_gui.cli``."""

from . import run

run()
