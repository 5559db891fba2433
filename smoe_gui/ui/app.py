"""``smoe-gui [IMAGE] [--theme T] [--method M] [--self-test] [--screenshot OUT.png]``: start the "
"desktop application."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.params import METHODS

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["configure_threads", "ensure_application", "main", "take_screenshot", "training_threads"]

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
        description=(
            "Steered Mixture-of-Experts with edge-aligned kernels: see every stage, train, "
            "compare."
        ),
    )
    parser.add_argument(
        "image",
        nargs="*",  # the .desktop file's %F may pass several: the first opens
        help="image to open (default: a bundled sample)",
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check that the installed application works, print the result, exit",
    )
    parser.add_argument(
        "--theme",
        choices=("system", "light", "dark"),
        help="colours: the desktop's, or a light or dark palette (remembered)",
    )
    parser.add_argument(
        "--method",
        choices=METHODS,
        help="initialisation method to start with (default: the last one chosen; "
        f"{METHODS[0]} for --screenshot)",
    )
    shot = parser.add_argument_group("screenshots (for the documentation)")
    shot.add_argument(
        "--screenshot",
        metavar="OUT.png",
        help="save a picture of the window once the stages are drawn, then exit",
    )
    shot.add_argument(
        "--train",
        type=float,
        metavar="SECONDS",
        help="with --screenshot: train for this time budget first",
    )
    shot.add_argument(
        "--lecture",
        type=int,
        metavar="STEP",
        help="with --screenshot: lecture mode at this step of the method's lecture "
        "(edge: 1-6, grid: 1-3, s-smoe and as-smoe: 1-5)",
    )
    return parser


def _spin(until: Callable[[], bool], timeout_s: float) -> bool:
    from PySide6.QtWidgets import QApplication

    end = time.perf_counter() + timeout_s
    while time.perf_counter() < end:
        QApplication.processEvents()
        if until():
            return True
        time.sleep(0.01)
    return False


def take_screenshot(
    window: MainWindow, out: str, train_s: float | None = None, lecture_step: int | None = None
) -> int:
    """Draw the stages (and train ``train_s`` seconds), save the window as
    PNG to ``out``, close the window; returns the exit status."""
    from ..core.io.fileio import write_png
    from .file_ops import qimage_rgb

    def drawn() -> bool:
        return (
            window.latest_request > 0
            and window.stages.views["edges"].shown_id == window.latest_request
        )

    if not _spin(drawn, 300):
        print("smoe-gui: error: the stages were not drawn in time", file=sys.stderr)
        return 1
    if train_s is not None:
        from .control.jobs import training_warmed

        _spin(
            training_warmed, 300
        )  # the once-per-process warm-up, so that the budget is all training
        window.panel.set_params(window.panel.params().replace(time_budget=train_s), emit=False)
        window.start_training()
        _spin(lambda: not window.is_training(), train_s + 300)
        final = window.final_model("train")
        _spin(lambda: window.current_model() is final, 60)
    if lecture_step is not None:
        window.lecture.set_active(True)
        for _ in range(max(0, lecture_step - 1)):
            window.lecture.next()
        _spin(
            lambda: not window.session.render_pending(), 60
        )  # a step may redraw view 4 (its mode)
    _spin(lambda: False, 0.5)  # let the layout and the plots settle
    window.fit_views()
    _spin(lambda: False, 0.3)
    write_png(out, qimage_rgb(window.grab().toImage()))
    window.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``smoe-gui`` and ``python -m smoe_gui``; returns the exit status."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    if args.self_test:
        from . import selftest  # type: ignore[attr-defined]

        return int(selftest.run())
    if args.lecture is not None:
        from .control.lecture_steps import lecture_steps

        method = args.method or METHODS[0]
        n_steps = len(lecture_steps(method))
        if not args.screenshot:
            print("smoe-gui: error: --lecture needs --screenshot", file=sys.stderr)
            return 2
        if not 1 <= args.lecture <= n_steps:
            print(
                f"smoe-gui: error: --lecture {args.lecture}: the {method} lecture has steps "
                f"1-{n_steps}",
                file=sys.stderr,
            )
            return 2
    image = args.image[0] if args.image else None
    if image is not None:
        from ..core.errors import one_line, show_text
        from ..core.io.image import MAX_SIDE, read_image
        from ..core.limits import check_input_file

        try:
            check_input_file(image, "an image file", empty_ok=True)  # a FIFO would block the window
            if args.screenshot:  # no one is there to close a modal box: refuse here, one line
                read_image(image, max_size=MAX_SIDE)
        except ValueError as exc:
            print(f"smoe-gui: error: {show_text(one_line(exc))}", file=sys.stderr)
            return 2
    app = ensure_application([sys.argv[0]])
    from . import create_main_window

    if args.screenshot:
        # a picture for the docs: the default settings, and the user's settings untouched
        import tempfile

        from PySide6.QtCore import QSettings

        with tempfile.TemporaryDirectory(prefix="smoe-gui-screenshot-") as scratch:
            settings = QSettings(str(Path(scratch) / "settings.ini"), QSettings.Format.IniFormat)
            if args.method is not None:
                settings.setValue("method", args.method)  # the first stages are this method's
            from .messages import StderrMessenger
            from .resources import default_sample

            # no modal box: errors go to stderr and exit 2, questions get "yes"; no
            # training warm-up without --train: it cannot be cancelled, and on a fresh
            # checkout (numba compiling) it outlived the window and aborted the process
            window = create_main_window(
                None, settings=settings, open_default=False, warm_up=args.train is not None
            )
            messenger = StderrMessenger()
            window.messenger = messenger
            if args.theme is not None:
                window.set_color_scheme(args.theme)
            target = image if image is not None else default_sample()
            if target is None or not window.open_image(target) or messenger.failed:
                if target is None:
                    print("smoe-gui: error: no image to show", file=sys.stderr)
                window.close()
                return 2
            window.show()
            status = take_screenshot(window, args.screenshot, args.train, args.lecture)
            return 2 if messenger.failed else status
    window = create_main_window(image)
    if args.theme is not None:
        window.set_color_scheme(args.theme)
    if args.method is not None:
        window.panel.set_method(args.method)
    window.show()
    return int(app.exec())  # type: ignore[attr-defined]


if __name__ == "__main__":
    raise SystemExit(main())
