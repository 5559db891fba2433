"""The window while AS-SMoE initialises (issue 22): progress in the status bar,
the views say "initialising AS-SMoE...", Cancel and switching the method stop
the local fits within a second (pytest-qt, offscreen)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings  # noqa: E402

from smoe_gui.core.io.fileio import write_png  # noqa: E402
from smoe_gui.core.params import Params  # noqa: E402
from smoe_gui.ui import create_main_window  # noqa: E402
from smoe_gui.ui.control.init_status import NO_BUDGET_WARNING, InitStatus  # noqa: E402
from smoe_gui.ui.control.jobs import training_warmed  # noqa: E402
from smoe_gui.ui.messages import RecordingMessenger  # noqa: E402

#: Small stages; AS-SMoE's local fits long enough (hundreds of steps) to be cancelled.
SLOW_AS = Params(max_pts=20, expert_iters=2, as_steps=400, n_kernels=0)


def mosaic(n: int = 96, cells: int = 6) -> np.ndarray:
    rng = np.random.default_rng(5)
    return np.kron(rng.uniform(0.1, 0.9, (cells, cells)), np.ones((n // cells, n // cells)))


#: Every test ends with no QThread left running (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("no_qthread_left_running")


@pytest.fixture()
def window(qtbot, tmp_path: Path):
    path = tmp_path / "mosaic.png"
    write_png(path, mosaic().astype(np.float32))
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("params", SLOW_AS.to_json())
    win = create_main_window(path, settings=settings)
    win.messenger = RecordingMessenger()
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    qtbot.waitUntil(lambda: win.stages.views["edges"].shown_id == win.latest_request
                    and win.latest_request > 0, timeout=60_000)
    # the once-per-process warm-up fit the window starts after its first stages competes
    # for the 2 cores with the fits timed here: let it end first
    qtbot.waitUntil(training_warmed, timeout=60_000)
    yield win
    win.close()


def start_as_smoe(qtbot, window) -> int:
    """Switch to AS-SMoE; wait until its local fits report progress."""
    window.panel.set_method("as-smoe")
    rid = window.latest_request
    state = window.init_progress.state
    qtbot.waitUntil(lambda: state.rid == rid and state.total > 0, timeout=60_000)
    return rid


def caption(window, name: str) -> str:
    return window.stages.captions[name]


def test_status_text_counts_the_fits_and_warns_without_a_budget() -> None:
    state = InitStatus()
    assert state.begin(3, "edge", SLOW_AS) is None and not state.active
    text = state.begin(4, "as-smoe", SLOW_AS)
    assert text is not None and "superpixels" in text
    assert state.warning_text() == f"warning: {NO_BUDGET_WARNING}"
    assert state.progress(3, 1, 9) is None  # a stale job
    assert "2 / 9 local fits" in (state.progress(4, 2, 9) or "")
    assert state.begin(5, "as-smoe", SLOW_AS.replace(n_kernels=500)) is not None
    assert state.warning_text() == ""
    assert state.end(5) and not state.active and not state.end(5)


def test_cancel_stops_the_local_fits_within_a_second(qtbot, window) -> None:
    before = window.session.stage_result
    rid = start_as_smoe(qtbot, window)
    for name in ("edges", "kernels", "reconstruction"):
        assert caption(window, name) == "initialising AS-SMoE..."
        assert window.init_progress.overlays[name].toPlainText() == "initialising AS-SMoE..."
    assert "local fits" in window.status_line.text()
    assert window.counts_label.text().startswith("warning: ")  # N = 0
    assert window.init_progress.cancel_button.isVisible()
    cancelled: list[int] = []
    window._stage_runner.worker.cancelled.connect(cancelled.append)
    t0 = time.perf_counter()
    window.init_progress.cancel_button.click()
    qtbot.waitUntil(lambda: rid in cancelled, timeout=5_000)
    assert time.perf_counter() - t0 < 1.0
    assert not window.init_progress.cancel_button.isVisible()
    assert "cancelled" in window.status_line.text()
    assert window.session.stage_result is before  # the previous result stays
    assert caption(window, "edges") != "initialising AS-SMoE..."
    assert window.init_progress.overlays == {}
    assert not window.counts_label.text().startswith("warning")  # the previous counts again


def test_switching_back_to_edge_stops_it_within_a_second(qtbot, window) -> None:
    rid = start_as_smoe(qtbot, window)
    cancelled: list[int] = []
    window._stage_runner.worker.cancelled.connect(cancelled.append)
    t0 = time.perf_counter()
    window.panel.set_method("edge")
    qtbot.waitUntil(lambda: rid in cancelled, timeout=5_000)
    assert time.perf_counter() - t0 < 1.0
    edge = window.latest_request
    qtbot.waitUntil(lambda: window.stages.views["edges"].shown_id == edge, timeout=30_000)
    assert window.session.stage_result.init.method == "edge"
    assert not window.init_progress.cancel_button.isVisible()
