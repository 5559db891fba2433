"""Entry script of the PyInstaller bundle.

One executable serves both faces: started as ``smoe-gui`` it opens the desktop
application (``smoe-gui --self-test`` runs the built-in check); started through
the ``smoe`` link that the spec puts beside it, it is the command-line tool.

With ``SMOE_GUI_STARTUP_PROBE=1`` in the environment the application starts as
usual, and when its main window is first painted prints one line
``SMOE_GUI_FIRST_PAINT <unix time> <resource folder>`` and quits: that is how
``benchmarks/bench_bundle.py`` measures the start-up time to the first drawn
window (it runs this script from the source tree too, for comparison).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

PROBE_ENV = "SMOE_GUI_STARTUP_PROBE"
PROBE_TAG = "SMOE_GUI_FIRST_PAINT"


def _install_startup_probe() -> None:
    """Make the first paint of the main window print the time and quit."""
    import smoe_gui.ui as ui

    create = ui.create_main_window

    def create_and_probe(*args: Any, **kwargs: Any) -> Any:
        from PySide6.QtCore import QEvent, QObject, QTimer
        from PySide6.QtWidgets import QApplication

        from smoe_gui.resources import resource_root

        window = create(*args, **kwargs)

        class FirstPaint(QObject):
            def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
                if event.type() == QEvent.Type.Paint and not getattr(self, "seen", False):
                    self.seen = True
                    print(f"{PROBE_TAG} {time.time():.6f} {resource_root()}", flush=True)
                    QTimer.singleShot(0, window.close)
                    QTimer.singleShot(0, QApplication.quit)
                return False

        probe = FirstPaint(window)
        window.installEventFilter(probe)
        return window

    ui.create_main_window = create_and_probe


def main() -> int:
    """Dispatch on the name the bundle was started by; returns the exit status."""
    multiprocessing.freeze_support()
    name = Path(sys.argv[0]).stem.lower()
    if name == "smoe":
        from smoe_gui.cli import main as cli_main

        return int(cli_main() or 0)
    if os.environ.get(PROBE_ENV) == "1":
        _install_startup_probe()
    from smoe_gui.ui.app import main as gui_main

    return int(gui_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
