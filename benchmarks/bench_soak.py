"""Soak benchmark: 50 start/stop cycles of training in the window, offscreen.

Prints the cycle counts, the resident memory (start, after the warm-up, end,
peak) and its growth, the worker threads left running and the Qt warnings.
Exits 1 when a limit is broken (threads left, a Qt warning, an error shown,
growth of 50 MiB or more).  The cycles are those of ``tests/test_soak.py``
(:func:`run_soak`), driven through the window's buttons and parameter widgets.

    .venv/bin/python benchmarks/bench_soak.py [--cycles 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _testmodule import load_test_module  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=50)
    args = parser.parse_args(argv)
    if args.cycles < 1:
        parser.error("--cycles must be at least 1")

    soak = load_test_module("soak", "test_soak.py")
    from PySide6.QtCore import (
        QCoreApplication,
        QEventLoop,
        QSettings,
        Qt,
        QThread,
        QtMsgType,
        qInstallMessageHandler,
    )
    from PySide6.QtTest import QTest

    from smoe_gui.ui import create_main_window
    from smoe_gui.ui.messages import RecordingMessenger

    messages: list[str] = []

    def on_message(kind: QtMsgType, _context: object, text: str) -> None:
        if kind in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg):
            messages.append(text)

    qInstallMessageHandler(on_message)

    def wait_until(predicate: Callable[[], bool], timeout_s: float) -> None:
        start = time.perf_counter()
        while not predicate():
            if time.perf_counter() - start > timeout_s:
                raise TimeoutError(f"waited {timeout_s:.0f} s for the window")
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            QThread.msleep(2)

    def wait_ms(ms: int) -> None:
        end = time.perf_counter() + ms / 1000
        while time.perf_counter() < end:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 10)
            QThread.msleep(1)

    def click(button: Any) -> None:
        QTest.mouseClick(button, Qt.MouseButton.LeftButton)

    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        settings.setValue("params", soak.soak_params().to_json())
        window = create_main_window(settings=settings, open_default=False)
        window.messenger = RecordingMessenger(answer=True)
        window.resize(1200, 800)
        window.show()
        window.set_image(soak.soak_image())
        wait_until(lambda: window.stages.views["edges"].shown_id == window.latest_request, 120.0)
        figures = soak.run_soak(window, args.cycles, wait_until, wait_ms, click)

    warnings = soak.relevant_qt_messages(messages)
    print(f"soak benchmark ({args.cycles} start/stop cycles, {soak.soak_image().shape[1]}x"
          f"{soak.soak_image().shape[0]} image, offscreen; timings noisy on a shared machine)")
    for line in figures.lines():
        print("  " + line)
    ignored = len(messages) - len(warnings)
    print(f"  Qt warnings: {len(warnings)}" + (f" (first: {warnings[0]})" if warnings else "")
          + f"; ignored offscreen-plugin notices: {ignored}")
    ok = (not figures.threads_left and not warnings and not figures.errors
          and figures.python_threads_added == 0 and figures.growth_mb < soak.MAX_GROWTH_MB)
    print("soak: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
