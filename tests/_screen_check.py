"""Run by tests/test_ui_screen.py in a process whose offscreen screen has a
given size: does the window, its five views and the training buttons lie on
the screen, before and during training, with a long status text?

Prints one line per problem and "OK" when there is none.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSettings
from PySide6.QtGui import QScreen
from PySide6.QtWidgets import QApplication, QWidget

from smoe_gui.core.io.fileio import write_png
from smoe_gui.core.params import Params
from smoe_gui.ui import create_main_window
from smoe_gui.ui.messages import RecordingMessenger

# the whole budget (no convergence stop): the checks "during training" need a
# training that still runs a second after Start, however fast the small image
# converges (with patience=50 it could end within that second)
FAST = Params(
    max_pts=20, tile_size=64, tile_steps=15, time_budget=30.0, expert_iters=5, patience=100_000
)


def spin(app: QApplication, until, timeout: float) -> bool:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        app.processEvents()
        if until():
            return True
        time.sleep(0.01)
    return False


def on_screen(widget: QWidget, screen: QRect) -> bool:
    top_left = widget.mapToGlobal(QPoint(0, 0))
    rect = QRect(top_left, widget.size())
    return (
        widget.isVisible() and rect.width() >= 40 and rect.height() >= 20 and screen.contains(rect)
    )


def check(window, when: str) -> list[str]:
    problems = []
    screen = window.screen().availableGeometry()
    if not screen.contains(window.frameGeometry()):
        problems.append(f"{when}: window {window.frameGeometry()} off the screen {screen}")
    named = dict(window.stages.views)
    named.update(
        {
            "start": window.start_button,
            "pause": window.pause_button,
            "stop": window.stop_button,
            "psnr-plot": window.plots.psnr_plot,
        }
    )
    for name, widget in named.items():
        if not on_screen(widget, screen):
            top_left = widget.mapToGlobal(QPoint(0, 0))
            problems.append(f"{when}: {name} at {QRect(top_left, widget.size())} not on {screen}")
    return problems


def check_screen(app: QApplication, image: Path, settings: QSettings, screen: QScreen) -> list[str]:
    """Open the window on ``screen``, train, and check what lies on the screen."""
    window = create_main_window(image, settings=settings)
    window.messenger = RecordingMessenger()
    if screen is not app.primaryScreen():
        window.fit_to_screen(screen)
    window.show()
    name = (
        f"{screen.name()} "
        f"{screen.availableGeometry().width()}x{screen.availableGeometry().height()}"
    )
    problems: list[str] = []
    if window.screen() is not screen:
        problems.append(f"{name}: the window is on {window.screen().name()}")
    if not spin(
        app, lambda: window.stages.views["edges"].shown_id == window.latest_request > 0, 60
    ):
        problems.append(f"{name}: stages never drawn")
    spin(app, lambda: False, 0.3)
    width = window.width()
    problems += check(window, f"{name} before training")
    window.start_training()
    spin(app, lambda: False, 1.0)
    if not window.is_training():
        problems.append(f"{name}: training did not start")
    window.show_status("a status message much longer than any window could show " * 10, 5000)
    window.train_label.setText("a training status line that goes on and on " * 10)
    window.start_compare()  # refused while training; must not widen anything either
    spin(app, lambda: False, 0.5)
    problems += check(window, f"{name} during training")
    if window.width() != width:
        problems.append(
            f"{name}: the window grew from {width} to {window.width()} px during training"
        )
    window.stop_training()
    spin(app, lambda: not window.is_training(), 30)
    problems += check(window, f"{name} after training")
    window.close()
    return problems


def main() -> int:
    app = QApplication.instance() or QApplication([sys.argv[0]])
    folder = Path(tempfile.mkdtemp())
    image = folder / "img.png"
    yy, xx = np.mgrid[0:96, 0:128].astype(np.float32)
    write_png(image, np.clip(0.2 + 0.5 * (xx > 60) + 0.2 * yy / 96, 0, 1))
    settings = QSettings(str(folder / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue("params", FAST.to_json())
    # a geometry saved on a larger screen must not be restored as it is (the
    # first window below opens on the primary screen with these settings)
    first = create_main_window(image, settings=settings)
    first.messenger = RecordingMessenger()
    first.show()
    first.setGeometry(0, 0, 1900, 1150)
    first.save_settings()
    first.close()
    first.deleteLater()

    problems: list[str] = []
    for screen in app.screens():
        problems += check_screen(app, image, settings, screen)
    for p in problems:
        print(p)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
