"""Soak: many start/stop cycles of training in the window, with parameter changes.

A classroom presses Train and Stop again and again, changes sliders between
runs, pauses and stops while paused, and lets some runs finish.  After all of
it: no worker thread is left running, Qt printed no warning, and the process
memory (RSS) grew by less than :data:`MAX_GROWTH_MB`.

The test runs :data:`TEST_CYCLES` cycles; ``benchmarks/bench_soak.py`` runs 50
and prints the figures.  Both use :func:`run_soak`, which drives the window
only through its widgets (``train-start``, ``train-pause``, ``train-stop``,
``param-<name>``), as a user would.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

#: Cycles run by the test (the benchmark runs 50).
TEST_CYCLES = 15
#: Cycles before the memory baseline is taken (caches, first torch use).
WARMUP_CYCLES = 3
#: Largest allowed growth of the resident set over the measured cycles.
MAX_GROWTH_MB = 50.0
#: Qt messages that are not warnings about the program: the offscreen platform
#: plugin says this about window-manager hints it cannot pass on.
IGNORED_QT_MESSAGES = ("propagateSizeHints",)

#: Parameter changes made between cycles, in turn: (widget name, values).
#: Training parameters only restart nothing; initialisation parameters make the
#: window recompute its stages while no training runs.
CHANGES: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("lr_m", (0.02, 0.01)),
    ("canny_sigma", (2.0, 1.5)),
    ("tile_steps", (8, 4)),
    ("delta_mu", (3.5, 3.0)),
    ("lr_mu", (0.08, 0.05)),
    ("max_pts", (30, 40)),
)


def rss_mb() -> float:
    """Resident set size of this process in MiB, from ``/proc/self/statm``."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        resident_pages = int(handle.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def soak_params() -> Any:
    """Small, quick parameters for the soak window."""
    from smoe_gui.core.params import Params

    return Params(max_pts=40, tile_size=48, tile_steps=4, max_steps=400, time_budget=1.0,
                  expert_iters=3, patience=50)


def soak_image(h: int = 72, w: int = 96) -> np.ndarray:
    """(h, w) float32: a disc, a bar and a ramp."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 0.2 + 0.3 * xx / w
    img[(xx - w / 3) ** 2 + (yy - h / 2) ** 2 < (h / 4) ** 2] = 0.9
    img[h // 5: h // 5 + 6, w // 2: w - 8] = 0.05
    return np.clip(img, 0.0, 1.0).astype(np.float32)


@dataclass
class SoakFigures:
    """What a soak run measured."""

    cycles: int
    stopped: int = 0
    finished: int = 0
    paused_then_stopped: int = 0
    param_changes: int = 0
    rss_start_mb: float = 0.0
    rss_baseline_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_peak_mb: float = 0.0
    seconds: float = 0.0
    threads_left: list[str] = field(default_factory=list)
    python_threads_added: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def growth_mb(self) -> float:
        """RSS growth from the baseline (after the warm-up cycles) to the end."""
        return self.rss_end_mb - self.rss_baseline_mb

    def lines(self) -> list[str]:
        return [
            f"cycles: {self.cycles} (stopped {self.stopped}, ran to the end {self.finished}, "
            f"paused then stopped {self.paused_then_stopped}), "
            f"parameter changes: {self.param_changes}",
            f"RSS: start {self.rss_start_mb:.1f} MiB, after {WARMUP_CYCLES} warm-up cycles "
            f"{self.rss_baseline_mb:.1f} MiB, end {self.rss_end_mb:.1f} MiB, "
            f"peak {self.rss_peak_mb:.1f} MiB",
            f"RSS growth after warm-up: {self.growth_mb:+.1f} MiB (limit {MAX_GROWTH_MB:.0f})",
            f"worker threads left running: {len(self.threads_left)}; Python threads added: "
            f"{self.python_threads_added}; errors shown: {len(self.errors)}",
            f"time: {self.seconds:.1f} s ({self.seconds / max(1, self.cycles):.2f} s per cycle)",
        ]


def run_soak(
    window: Any,
    cycles: int,
    wait_until: Callable[[Callable[[], bool], float], None],
    wait_ms: Callable[[int], None],
    click: Callable[[Any], None],
    seed: int = 0,
) -> SoakFigures:
    """Run ``cycles`` start/stop cycles on ``window`` through its widgets.

    Parameters
    ----------
    window : MainWindow
        Shown, with an image whose stages are computed, and a
        ``RecordingMessenger`` (errors are collected from it).
    cycles : int
    wait_until : callable(predicate, timeout_s)
        Runs the event loop until ``predicate()``; raises on timeout.
    wait_ms : callable(ms)
        Runs the event loop for ``ms`` milliseconds.
    click : callable(widget)
        A left mouse click on a button.
    seed : int
        Seed of the random stop delays.

    Returns
    -------
    SoakFigures
    """
    from PySide6.QtWidgets import QPushButton, QWidget

    from smoe_gui.core.params import spec
    from smoe_gui.ui.param_panel import INIT_GROUPS
    from smoe_gui.ui.workers import running_threads

    rng = np.random.default_rng(seed)
    start_button = window.findChild(QPushButton, "train-start")
    stop_button = window.findChild(QPushButton, "train-stop")
    pause_button = window.findChild(QPushButton, "train-pause")
    assert start_button and stop_button and pause_button, "training buttons not found"
    figures = SoakFigures(cycles)
    python_threads = threading.active_count()
    gc.collect()
    figures.rss_start_mb = figures.rss_peak_mb = rss_mb()
    t0 = time.perf_counter()
    done: list[bool] = []
    window.training_finished.connect(lambda: done.append(True))

    for cycle in range(cycles):
        if cycle == WARMUP_CYCLES:
            gc.collect()
            figures.rss_baseline_mb = rss_mb()
        # --- change a parameter, as a user between two runs
        name, values = CHANGES[cycle % len(CHANGES)]
        value = values[(cycle // len(CHANGES)) % len(values)]
        widget = window.findChild(QWidget, f"param-{name}")
        assert widget is not None, f"param-{name} not found"
        recompute = spec(name).group in INIT_GROUPS
        before = window.latest_request
        widget.setValue(value)
        figures.param_changes += 1
        if recompute:
            wait_until(
                lambda before=before: (
                    window.latest_request > before
                    and window.stages.views["edges"].shown_id == window.latest_request
                ),
                60.0,
            )
        # --- start
        done.clear()
        wait_until(lambda: start_button.isEnabled(), 30.0)
        click(start_button)
        wait_until(lambda: window.is_training() or bool(done), 30.0)
        mode = cycle % 5
        if mode == 4:  # let it run to its own end (time budget)
            wait_until(lambda: bool(done), 60.0)
            figures.finished += 1
        elif mode == 3:  # pause, then stop while paused
            wait_ms(int(rng.integers(20, 150)))
            if window.is_training():
                click(pause_button)
                wait_ms(30)
                click(stop_button)
                figures.paused_then_stopped += 1
            wait_until(lambda: bool(done), 30.0)
        else:  # stop at once, or after a short while
            wait_ms(0 if mode == 0 else int(rng.integers(10, 300)))
            if window.is_training():
                click(stop_button)
            wait_until(lambda: bool(done), 30.0)
            figures.stopped += 1
        wait_until(lambda: "smoe-training" not in running_threads(), 10.0)
        if cycle % 5 == 4:
            gc.collect()
        figures.rss_peak_mb = max(figures.rss_peak_mb, rss_mb())

    wait_ms(200)  # the last snapshot renders
    gc.collect()
    figures.rss_end_mb = rss_mb()
    if cycles <= WARMUP_CYCLES:
        figures.rss_baseline_mb = figures.rss_start_mb
    figures.seconds = time.perf_counter() - t0
    figures.errors = [f"{m[1]}: {m[2]}" for m in window.messenger.messages if m[0] == "error"]
    window.close()
    wait_until(lambda: not running_threads(), 30.0)
    figures.threads_left = running_threads()
    deadline = time.perf_counter() + 5
    while threading.active_count() > python_threads and time.perf_counter() < deadline:
        time.sleep(0.05)
    figures.python_threads_added = max(0, threading.active_count() - python_threads)
    return figures


def relevant_qt_messages(messages: list[str]) -> list[str]:
    """Qt warnings that matter (see :data:`IGNORED_QT_MESSAGES`)."""
    return [m for m in messages if not any(s in m for s in IGNORED_QT_MESSAGES)]


@pytest.mark.slow
def test_start_stop_soak(qtbot, qtlog, tmp_path) -> None:
    from PySide6.QtCore import QSettings, QtMsgType
    from PySide6.QtWidgets import QApplication

    from smoe_gui.ui import create_main_window
    from smoe_gui.ui.messages import RecordingMessenger

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("params", soak_params().to_json())
    window = create_main_window(settings=settings, open_default=False)
    window.messenger = RecordingMessenger(answer=True)
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    window.set_image(soak_image())
    qtbot.waitUntil(
        lambda: window.stages.views["edges"].shown_id == window.latest_request, timeout=60_000
    )

    def wait_until(predicate: Callable[[], bool], timeout_s: float) -> None:
        qtbot.waitUntil(predicate, timeout=int(timeout_s * 1000))

    def click(button: Any) -> None:
        from PySide6.QtCore import Qt

        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)

    figures = run_soak(window, TEST_CYCLES, wait_until, qtbot.wait, click)
    QApplication.processEvents()
    print("\n".join(["soak:", *figures.lines()]))

    assert figures.stopped + figures.finished + figures.paused_then_stopped == TEST_CYCLES
    assert figures.errors == []
    assert figures.threads_left == []
    assert figures.python_threads_added == 0
    warnings = relevant_qt_messages(
        [
            r.message
            for r in qtlog.records
            if r.type in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg)
        ]
    )
    assert warnings == [], warnings
    assert figures.growth_mb < MAX_GROWTH_MB, figures.lines()


def test_qt_binding_keeps_reference_counts(qtbot) -> None:
    """PySide6 6.12.0 on Python 3.11 loses a reference to None per Python
    override call, which ends a long session in "Fatal Python error:
    none_dealloc" (pyproject.toml pins PySide6-Essentials below 6.12)."""
    from smoe_gui.ui.selftest import binding_refcounts_ok

    assert binding_refcounts_ok(), "this PySide6 corrupts reference counts: the app would crash"
