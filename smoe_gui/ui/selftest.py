"""``smoe-gui --self-test``: check that an installed smoe-gui really works.

The check opens the real main window offscreen (``QT_QPA_PLATFORM=offscreen``
unless the environment names another platform), loads a bundled sample
image, lets the window compute the initialisation on its worker thread,
trains 20 fine-tuning steps through the window's own Train path, checks that
the model and its reconstruction are finite, closes the window and checks
that no worker thread is left.  It prints a short report and returns 0, or
prints ``self-test FAILED: <why>`` on stderr and returns 1.

It is what ``make bundle-test`` runs on the PyInstaller bundle, so it needs
nothing from the source tree: the sample comes from
:func:`smoe_gui.resources.sample_images`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["SELFTEST_MAX_SIDE", "SELFTEST_PARAMS", "SelfTestError", "binding_refcounts_ok", "run"]

#: The sample is downscaled so that its longer side has this many pixels, which
#: keeps the check to seconds on a laptop CPU.
SELFTEST_MAX_SIDE = 256
#: Parameters changed from the defaults: no tile phase, then exactly 20
#: fine-tuning steps (the convergence test needs ``patience`` = 1000 steps).
SELFTEST_PARAMS: dict[str, Any] = {"tile_steps": 0, "max_steps": 20, "time_budget": 300.0}
#: Seconds allowed for the initialisation and for the training.
TIMEOUT_S = 300.0


def binding_refcounts_ok(calls: int = 200) -> bool:
    """Whether the Qt binding keeps Python's reference counts intact.

    PySide6 6.12.0 on Python 3.11 drops one reference to ``None`` (or
    ``False``) each time C++ calls a Python override such as ``paintEvent``
    or ``eventFilter``; ``None`` is not immortal before Python 3.12, so the
    application ends in "Fatal Python error: none_dealloc" after a few minutes
    of use.  This repaints a small widget with a Python ``paintEvent``
    ``calls`` times and checks that ``None`` kept its references.  Needs a
    ``QApplication``.
    """
    from PySide6.QtWidgets import QWidget

    class Probe(QWidget):
        def paintEvent(self, _event: object) -> None:  # noqa: N802 (Qt override)
            return None

    probe = Probe()
    probe.resize(8, 8)
    probe.show()
    probe.repaint()
    before = sys.getrefcount(None)
    for _ in range(calls):
        probe.repaint()
    lost = before - sys.getrefcount(None)
    probe.close()
    probe.deleteLater()
    return lost < calls // 2


class SelfTestError(RuntimeError):
    """A check of the self-test failed; the message says which and why."""


def _wait_until(done: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Run the Qt event loop until ``done()``; returns the seconds waited.

    Raises
    ------
    SelfTestError
        After ``timeout_s`` seconds.
    """
    from PySide6.QtCore import QCoreApplication, QEventLoop, QThread

    start = time.perf_counter()
    while not done():
        if time.perf_counter() - start > timeout_s:
            raise SelfTestError(f"{what} did not finish within {timeout_s:.0f} s")
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        QThread.msleep(5)
    return time.perf_counter() - start


def _check_finite(model: Any, what: str) -> None:
    import numpy as np

    if model is None:
        raise SelfTestError(f"{what}: no model")
    for name in ("mu", "A", "m", "log_alpha"):
        if not np.all(np.isfinite(getattr(model, name))):
            raise SelfTestError(f"{what}: NaN or infinite values in '{name}'")


def _self_test(report: Callable[[str], None]) -> None:
    """The checks; raises :class:`SelfTestError` on the first that fails."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    t_start = time.perf_counter()

    import numpy as np

    from .. import __version__
    from ..core.io.image import load_image
    from ..core.metrics import psnr
    from ..core.params import METHODS, Params
    from ..core.rendering.culled import render
    from ..resources import resource_root, sample_images

    samples = sample_images()
    if not samples:
        raise SelfTestError("no bundled sample image found (resources/samples is missing or empty)")
    sample = next((p for p in samples if p.name == "parrots.png"), samples[0])
    full = load_image(sample)
    image = load_image(sample, max_size=SELFTEST_MAX_SIDE)

    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import QSettings, QtMsgType, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    qt_messages: list[str] = []

    def on_qt_message(kind: QtMsgType, _context: object, text: str) -> None:
        if kind != QtMsgType.QtDebugMsg and kind != QtMsgType.QtInfoMsg:
            qt_messages.append(text)

    previous_handler = qInstallMessageHandler(on_qt_message)
    try:
        import torch

        from . import create_main_window
        from .messages import RecordingMessenger
        from .workers import running_threads

        report(f"smoe-gui {__version__} self-test")
        with tempfile.TemporaryDirectory(prefix="smoe-gui-selftest-") as tmp:
            settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
            t0 = time.perf_counter()
            window = create_main_window(settings=settings, open_default=False)
            app = QApplication.instance()
            platform = app.platformName() if app else "?"  # type: ignore[attr-defined]
            report(
                f"  Python {sys.version.split()[0]}, Qt {pyside_version} "
                f"({platform}), torch {torch.__version__} "
                f"({torch.get_num_threads()} threads)"
            )
            report(f"  resources: {resource_root()}")
            if not binding_refcounts_ok():
                raise SelfTestError(
                    f"PySide6 {pyside_version} loses references to None on Python "
                    f"{sys.version.split()[0]} and would crash the application; "
                    "install PySide6-Essentials<6.12 or use Python 3.12 or newer"
                )
            messenger = RecordingMessenger()
            window.messenger = messenger
            params = Params().replace(**SELFTEST_PARAMS)
            window.panel.set_params(params, emit=False)
            window.panel.set_method(METHODS[0], emit=False)

            shown: list[int] = []
            finished: list[bool] = []
            window.stages_shown.connect(shown.append)
            window.training_finished.connect(lambda: finished.append(True))
            window.show()
            _wait_until(lambda: window.isVisible(), 30.0, "showing the window")
            pixmap = window.grab()
            if pixmap.isNull() or pixmap.width() < 100 or pixmap.height() < 100:
                raise SelfTestError("the main window could not be drawn")
            drawn_s = time.perf_counter() - t0
            report(
                f"  window drawn: {pixmap.width()}x{pixmap.height()} px, {drawn_s:.2f} s after "
                "start"
            )

            h, w = image.shape
            report(
                f"  sample: {sample.name}, {w}x{h} px"
                + (
                    f" (downscaled from {full.shape[1]}x{full.shape[0]})"
                    if image.shape != full.shape
                    else ""
                )
            )
            t1 = time.perf_counter()
            window.set_image(image, sample)
            _wait_until(
                lambda: bool(shown) or window.last_error is not None,
                TIMEOUT_S,
                "the initialisation",
            )
            if window.last_error is not None:
                raise SelfTestError(f"the initialisation failed: {window.last_error}")
            init_s = time.perf_counter() - t1
            initial = window.current_model()
            _check_finite(initial, "initial model")
            assert initial is not None
            init_psnr = psnr(render(initial), image)
            report(
                f"  initialisation: {initial.n_kernels} kernels, PSNR {init_psnr:.2f} dB, "
                f"{init_s:.2f} s"
            )

            t2 = time.perf_counter()
            if not window.start_training():
                raise SelfTestError("the window refused to start training")
            _wait_until(lambda: bool(finished), TIMEOUT_S, "the training")
            train_s = time.perf_counter() - t2
            errors = [m for m in messenger.messages if m[0] == "error"]
            if errors or window.last_error is not None:
                detail = errors[0][2] if errors else window.last_error
                raise SelfTestError(f"the training failed: {detail}")
            model = window.final_model("train")
            _check_finite(model, "trained model")
            assert model is not None
            steps_done = window.plots.data["train"].arrays()["step"]
            n_steps = int(steps_done[-1]) if len(steps_done) else 0
            recon = render(model)
            if recon.shape != image.shape or not np.all(np.isfinite(recon)):
                raise SelfTestError("the reconstruction has NaN or infinite values")
            final_psnr = psnr(recon, image)
            report(
                f"  training: {n_steps} steps, {model.n_kernels} kernels, "
                f"PSNR {final_psnr:.2f} dB, {train_s:.2f} s"
            )
            if n_steps < params.max_steps:
                raise SelfTestError(
                    f"the training stopped after {n_steps} of {params.max_steps} steps"
                )

            window.close()
            _wait_until(lambda: not running_threads(), 30.0, "stopping the worker threads")
            settings.sync()
        bad = [m for m in qt_messages if "QThread" in m or "Destroyed" in m]
        if bad:
            raise SelfTestError(f"Qt warned: {bad[0]}")
        report(
            f"  Qt warnings: {len(qt_messages)}"
            + (f" (first: {qt_messages[0]})" if qt_messages else "")
        )
        report(f"self-test passed in {time.perf_counter() - t_start:.1f} s")
    finally:
        qInstallMessageHandler(previous_handler)


def run() -> int:
    """Run the self-test, print its report; returns the exit status (0 passed, 1 failed)."""

    def report(line: str) -> None:
        print(line, flush=True)

    try:
        _self_test(report)
    except SelfTestError as exc:
        print(f"self-test FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # noqa: BLE001  (any error is a failed check, said in one line)
        print(f"self-test FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0
