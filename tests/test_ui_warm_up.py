"""Closing the window during the training warm-up (issue 21): on a first start
numba compiles the training kernels for tens of seconds in the warm-up, which
nothing can interrupt; closing the window then must neither wait for it nor
leave a QThread running (Qt aborts the process when one is destroyed while
running), and the process must end cleanly (pytest-qt, offscreen)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings  # noqa: E402

from smoe_gui.core.params import Params  # noqa: E402
from smoe_gui.ui import create_main_window, main_window  # noqa: E402
from smoe_gui.ui.workers import warm_ups_running  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FAST = Params(max_pts=20, tile_size=64, tile_steps=15, time_budget=1.0, expert_iters=2)

#: Every test ends with no QThread left running (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("no_qthread_left_running")


class SlowWarmUp:
    """A stand-in for the cold warm-up: work that cannot be interrupted (numba
    compiling) until :attr:`release` is set or ``seconds`` have passed, then a
    check of the cancel hook.  It holds the GIL in short bursts, as the
    compiler does, but not for seconds on end: on a loaded two-core machine a
    thread that never lets go starves the GUI thread (a convoy) and the test
    would measure the scheduler, not the window."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = threading.Event()
        self.ended = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> float:
        from smoe_gui.core.work import current_hooks

        self.started.set()
        end = time.perf_counter() + self.seconds
        while time.perf_counter() < end and not self.release.is_set():
            sum(range(10_000))  # holds the GIL for a while, as the compiler does
            self.release.wait(0.002)
        self.ended.set()
        current_hooks().check()
        return self.seconds


def test_closing_during_the_warm_up_neither_waits_nor_leaves_a_thread(
    qtbot, tmp_path, monkeypatch, disc_png
) -> None:
    slow = SlowWarmUp(120.0)  # runs until released: closing must not wait for it
    monkeypatch.setattr(main_window, "warm_up_training", slow)
    monkeypatch.setattr(main_window, "training_warmed", lambda: False)
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue("params", FAST.to_json())
    win = create_main_window(disc_png, settings=settings, warm_up=True)
    qtbot.addWidget(win)
    try:
        # the first stages start the warm-up; on a cold numba cache (a fresh
        # clone) they compile for tens of seconds, more on a loaded machine
        with qtbot.waitSignal(win.stages_shown, timeout=300_000):
            win.show()
        warm = win._warm_thread
        assert warm is not None
        qtbot.waitUntil(slow.started.is_set, timeout=30_000)
        assert warm.is_running()
        t0 = time.perf_counter()
        win.close()
        closed_s = time.perf_counter() - t0
        # closing did not wait for a warm-up that runs until released
        assert warm.is_running() and not slow.ended.is_set() and closed_s < 5.0, closed_s
    finally:
        slow.release.set()
    warm.thread.join(30)
    assert not warm.is_running() and warm.cancelled and warm.error is None
    assert warm_ups_running() == []


SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {tests!r})
    from test_ui_warm_up import SlowWarmUp
    from smoe_gui.ui import create_main_window, main_window

    slow = SlowWarmUp(120.0)  # runs until released, after the application ended
    main_window.warm_up_training = slow
    main_window.training_warmed = lambda: False
    app = QApplication([])
    settings = QSettings({ini!r}, QSettings.Format.IniFormat)
    settings.setValue("params", {params!r})
    win = create_main_window(Path({image!r}), settings=settings, warm_up=True)
    win.show()

    def poll():
        if slow.started.is_set():
            win.close()  # the last window: the application quits, as in smoe-gui
            print("closed", flush=True)
        else:
            QTimer.singleShot(20, poll)

    QTimer.singleShot(20, poll)
    status = app.exec()
    print("ended" if not slow.ended.is_set() else "ended late", flush=True)
    slow.release.set()  # the interpreter waits for the warm-up thread, now short
    sys.exit(status)
    """
)


def test_the_process_ends_cleanly_when_closed_during_the_warm_up(
    tmp_path, disc_png
) -> None:
    script = SCRIPT.format(
        root=str(ROOT),
        tests=str(ROOT / "tests"),
        ini=str(tmp_path / "s.ini"),
        params=FAST.to_json(),
        image=str(disc_png),
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["closed", "ended"], done.stdout
    for bad in ("Traceback", "QThread: Destroyed", "Abort", "Fatal"):
        assert bad not in done.stderr, done.stderr[-2000:]
