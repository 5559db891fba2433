"""The desktop application (PySide6 + pyqtgraph).  Qt lives only here.

>>> from smoe_gui.ui import create_main_window   # doctest: +SKIP
>>> window = create_main_window("photo.png")      # doctest: +SKIP
>>> window.show()                                 # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtCore import QSettings

    from .main_window import MainWindow

__all__ = ["create_main_window"]


def create_main_window(
    image_path: str | os.PathLike[str] | None = None,
    settings: QSettings | None = None,
    open_default: bool = True,
    warm_up: bool = True,
) -> MainWindow:
    """Create the main window without running the event loop.

    A ``QApplication`` is created if none exists, and torch's thread count is
    set once (every core; the training thread runs at a lower priority than
    the GUI thread, see :func:`smoe_gui.ui.workers.lower_thread_priority`).

    Parameters
    ----------
    image_path : path-like, optional
        Image to open; without it the bundled sample (parrots) is opened when
        ``open_default`` is true.
    settings : QSettings, optional
        Where geometry, parameters and recent files are kept (tests pass an INI
        file under a temporary folder); default: the user's settings, or the INI
        file named by ``$SMOE_GUI_SETTINGS``.
    open_default : bool
        Open the bundled sample when no image is given.
    warm_up : bool
        Once the first stages are drawn, run a tiny fit in a worker thread (once
        per process) so that the first training starts without a stall.

    Returns
    -------
    MainWindow
        Not yet shown.
    """
    from .app import configure_threads, ensure_application
    from .main_window import MainWindow

    ensure_application()
    configure_threads()
    return MainWindow(image_path, settings=settings, open_default=open_default, warm_up=warm_up)
