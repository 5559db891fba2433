"""The window's Tune panel: bad input in a dialog, a grid study in a child process that
fills the table and the plot, a click that loads a trial's model, Stop keeps what is done,
errors of the child in a dialog, closing the window ends the child."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings, QTimer  # noqa: E402

from smoe_gui.core.io.fileio import write_png  # noqa: E402
from smoe_gui.core.io.modelio import load_model  # noqa: E402
from smoe_gui.core.params import Params  # noqa: E402
from smoe_gui.core.tune import load_trials, outputs, study  # noqa: E402
from smoe_gui.ui import create_main_window  # noqa: E402
from smoe_gui.ui.messages import RecordingMessenger  # noqa: E402

FAST = Params(max_pts=20, tile_size=32, tile_steps=3, time_budget=1.0, expert_iters=3)


@pytest.fixture()
def window(qtbot, tmp_path: Path, synthetic_image: np.ndarray):
    path = tmp_path / "synthetic.png"
    write_png(path, synthetic_image[:64, :80])
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("params", FAST.to_json())
    win = create_main_window(path, settings=settings)
    win.messenger = RecordingMessenger()
    win.tune_panel.out_root = tmp_path / "tune"
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def test_the_panel_is_a_dock_with_a_menu_toggle(window) -> None:
    panel = window.tune_panel
    assert panel.dock.isHidden()
    panel.dock.toggleViewAction().trigger()
    assert panel.dock.isVisible()
    assert panel.first.combo.findText("segment_steering") >= 0
    assert panel.first.combo.findText("channels") < 0  # not numeric
    assert "Range" in panel.first.combo.toolTip()


def test_bad_input_shows_a_dialog_and_starts_nothing(window) -> None:
    panel = window.tune_panel
    panel.first.combo.setCurrentText("delta_mu")
    panel.first.low.setValue(6.0)
    panel.first.high.setValue(2.0)
    assert not panel.start()
    level, title, text = window.messenger.messages[-1]
    assert (level, title) == ("error", "Cannot tune") and "above high bound" in text
    assert not panel.running and not panel.out_root.exists()


#: What the study needs and the window's process must not import for it.
HEAVY = ("optuna", "sqlalchemy", "matplotlib")


def test_a_grid_runs_in_a_child_process_fills_in_and_loads_a_trial(
    qtbot,
    window,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def here(*_a, **_k) -> None:
        raise AssertionError("the study ran in the window's process")

    for module, name in ((study, "run_tune"), (study, "open_study"), (outputs, "write_outputs")):
        monkeypatch.setattr(module, name, here)
    before = set(sys.modules)
    panel = window.tune_panel
    panel.first.combo.setCurrentText("delta_mu")
    panel.first.low.setValue(2.0)
    panel.first.high.setValue(4.0)
    panel.sampler.setCurrentText("grid")
    panel.steps.setValue(2)
    panel.budget.setValue(0.5)
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(10)
    assert panel.start()
    assert panel.process is not None and panel.process.pid != os.getpid()
    qtbot.waitUntil(lambda: not panel.running and panel.start_button.isEnabled(), timeout=240_000)
    timer.stop()
    assert not [m for m in set(sys.modules) - before if m.split(".")[0] in HEAVY]
    monkeypatch.undo()  # load_trials below reads the study here
    assert [r["state"] for r in panel.rows] == ["complete", "complete"]
    assert panel.rows[1]["model"] == str(panel.out_dir / "models" / "trial-0001.npz")
    assert panel.table.rowCount() == 2 and len(panel.points.data) == 2
    assert "tuning done: best: trial" in panel.status.text()
    assert len(load_trials(panel.out_dir)) == 2
    # the GUI thread was never held for seconds: the study ran in a child process
    assert max(gaps) < 2.0, max(gaps)

    assert panel.load_trial(1)
    expected = load_model(panel.out_dir / "models" / "trial-0001.npz")

    def shows_it() -> bool:
        shown = window.current_model()
        return shown is not None and np.array_equal(shown.mu, expected.mu)

    qtbot.waitUntil(shows_it, timeout=60_000)  # the views render it off the GUI thread
    assert window.panel.params().delta_mu == 4.0


def test_stop_keeps_the_finished_trials(qtbot, window, monkeypatch: pytest.MonkeyPatch) -> None:
    panel = window.tune_panel
    panel.first.combo.setCurrentText("delta_mu")
    panel.sampler.setCurrentText("grid")
    panel.steps.setValue(6)
    panel.budget.setValue(1.0)
    assert panel.start()
    qtbot.waitUntil(lambda: len(panel.rows) >= 1, timeout=240_000)
    # the window holds the study's running fit while it computes and draws the stages
    calls: list[str] = []
    process = panel.process
    for name in ("hold", "release"):
        real = getattr(process, name)
        monkeypatch.setattr(process, name,
                            lambda *a, _real=real, _name=name: (calls.append(_name), _real(*a)))
    with qtbot.waitSignal(window.stages_shown, timeout=60_000):
        window.recompute()
    assert calls == ["hold", "release"]
    panel.stop()
    asked = time.monotonic()
    qtbot.waitUntil(lambda: not panel.running and panel.start_button.isEnabled(), timeout=60_000)
    assert time.monotonic() - asked < 30  # about 1 s on a quiet machine
    assert "tuning stopped" in panel.status.text()
    rows = load_trials(panel.out_dir)
    kept = [r for r in rows if r["state"] == "complete"]
    shown = [r for r in panel.rows if r["state"] == "complete"]
    assert 1 <= len(kept) < 6 and len(kept) == len(shown)
    assert "fail" not in {r["state"] for r in rows}  # the stopped trial runs again on resume
    assert window.messenger.messages == []


def test_an_error_of_the_child_is_a_dialog(qtbot, window, monkeypatch) -> None:
    panel = window.tune_panel
    folder = panel.out_root / "broken"
    folder.mkdir(parents=True)
    (folder / "study.db").write_bytes(b"not a database at all" * 100)
    monkeypatch.setattr(panel, "study_dir", lambda _config: folder)
    assert panel.start()
    qtbot.waitUntil(lambda: bool(window.messenger.messages), timeout=120_000)
    level, title, text = window.messenger.messages[-1]
    assert (level, title) == ("error", "Tuning failed") and "is not a study" in text
    assert not panel.running and panel.start_button.isEnabled()


def test_closing_the_window_ends_the_child(qtbot, window) -> None:
    panel = window.tune_panel
    panel.first.combo.setCurrentText("delta_mu")
    panel.sampler.setCurrentText("grid")
    panel.steps.setValue(4)
    panel.budget.setValue(30.0)
    assert panel.start()
    process = panel.process
    qtbot.waitUntil(lambda: panel.progress is not None, timeout=240_000)  # a trial trains
    started = time.monotonic()
    window.close()
    assert time.monotonic() - started < 5.0 + 5.0  # its wait, then terminate and kill
    assert not process.process.is_alive() and process.process.exitcode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)  # ended and reaped: no orphan, no zombie
    assert window.messenger.messages == []
    assert "stale" in {r["state"] for r in load_trials(panel.out_dir)}  # it stopped its trial
