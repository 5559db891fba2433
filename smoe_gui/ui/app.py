"""``smoe-gui [IMAGE] [--self-test]``: start the desktop application."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

__all__ = ["configure_threads", "ensure_application", "main", "training_threads"]

_threads_configured = False


def training_threads() -> int:
    """Threads for training: every core (:func:`smoe_gui.core.threads.default_threads`).

    The training thread runs at a lower CPU priority than the GUI thread
    (:func:`smoe_gui.ui.workers.lower_thread_priority`), so the GUI still gets
    a core whenever it needs one, without idling a core the rest of the time
    (on 2 cores, keeping one free for the GUI held training to ~60 % of the
    CLI's speed).
    """
    from ..core.threads import default_threads

    return default_threads()


def configure_threads() -> None:
    """Set torch's thread count once per process (:func:`smoe_gui.core.threads.set_threads`)."""
    global _threads_configured
    if _threads_configured:
        return
    from ..core.threads import set_threads

    set_threads(training_threads())
    _threads_configured = True


def ensure_application(argv: Sequence[str] | None = None) -> object:
    """The running ``QApplication``, created if needed (with pyqtgraph options)."""
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else [sys.argv[0]])
        app.setOrganizationName("smoe-gui")
        app.setApplicationName("smoe-gui")
        app.setApplicationDisplayName("smoe-gui")
        app.setDesktopFileName("smoe-gui")
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
    return app


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smoe-gui",
        description="Steered Mixture-of-Experts with edge-aligned kernels: see every stage, train, compare.",
    )
    parser.add_argument("image", nargs="*",  # the .desktop file's %F may pass several: the first opens
                        help="image to open (default: a bundled sample)")
    parser.add_argument("--self-test", action="store_true",
                        help="check that the installed application works, print the result, exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``smoe-gui`` and ``python -m smoe_gui``; returns the exit status."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    if args.self_test:
        from . import selftest  # type: ignore[attr-defined]

        return int(selftest.run())
    image = args.image[0] if args.image else None
    if image is not None and not os.path.isfile(image):
        from ..core.errors import show_path

        print(f"smoe-gui: error: {show_path(image)}: no such file", file=sys.stderr)
        return 2
    app = ensure_application([sys.argv[0]])
    from . import create_main_window

    window = create_main_window(image)
    window.show()
    return int(app.exec())  # type: ignore[attr-defined]


if __name__ == "__main__":
    raise SystemExit(main())
