"""Entry script of the PyInstaller bundle.

One executable serves both faces: started as ``smoe-gui`` it opens the desktop
application (``smoe-gui --self-test`` runs the built-in check); started through
the ``smoe`` link that the spec puts beside it, it is the command-line tool.
"""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path


def main() -> int:
    """Dispatch on the name the bundle was started by; returns the exit status."""
    multiprocessing.freeze_support()
    name = Path(sys.argv[0]).stem.lower()
    if name == "smoe":
        from smoe_gui.cli import main as cli_main

        return int(cli_main() or 0)
    from smoe_gui.ui.app import main as gui_main

    return int(gui_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
