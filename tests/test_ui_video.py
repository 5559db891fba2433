"""File -> Export -> Training as video, offscreen: the action, the worker, cancel, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings  # noqa: E402

from smoe_gui.core.io.fileio import write_png  # noqa: E402
from smoe_gui.core.params import Params  # noqa: E402
from smoe_gui.ui import create_main_window  # noqa: E402
from smoe_gui.ui.messages import RecordingMessenger  # noqa: E402
from smoe_gui.ui.video_export import video_exporter  # noqa: E402

FAST = Params(max_pts=20, tile_size=64, tile_steps=15, time_budget=1.5, expert_iters=5,
              patience=50)


#: Every test ends with no QThread left running (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("no_qthread_left_running")


@pytest.fixture()
def window(qtbot, tmp_path: Path, synthetic_image):
    path = tmp_path / "synthetic.png"
    write_png(path, synthetic_image)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("params", FAST.to_json())
    win = create_main_window(path, settings=settings)
    win.messenger = RecordingMessenger()
    qtbot.addWidget(win)
    win.resize(1280, 720)
    win.show()
    qtbot.waitUntil(lambda: win.stages.views["edges"].shown_id == win.latest_request
                    and win.latest_request > 0, timeout=60_000)
    yield win
    win.close()


def _read_frames(path: Path) -> list[np.ndarray]:
    if path.suffix == ".gif":
        import imageio.v3 as iio

        return list(np.asarray(iio.imread(path, index=None, plugin="pillow")))
    import imageio.v2 as imageio

    reader = imageio.get_reader(str(path), format="FFMPEG")
    try:
        return [np.asarray(f) for f in reader]
    finally:
        reader.close()


def test_export_training_video_from_the_menu(qtbot, window, tmp_path: Path) -> None:
    action = window.actions_by_id["export-video"]
    assert "video" in action.text().lower()
    # nothing trained yet: a dialog, no file dialog
    asked: list[str] = []
    window.files.ask_save_path = lambda *a: asked.append("asked") or str(tmp_path / "x.mp4")
    action.trigger()
    assert window.messenger.levels() == ["warning"] and asked == []
    assert "Train" in window.messenger.texts()

    window.panel.set_params(FAST.replace(time_budget=1.0), emit=False)
    with qtbot.waitSignal(window.training_finished, timeout=60_000):
        window.start_training()
    exporter = video_exporter(window)
    result = exporter.last_result()
    assert result is not None and len(result.snapshots) > 2
    for name, action_id in (("run.mp4", "export-video"),
                            ("run.gif", "export-video-reconstruction")):
        target = tmp_path / name
        window.files.ask_save_path = lambda *a, t=target: str(t)
        with qtbot.waitSignal(exporter.ended, timeout=120_000):
            window.actions_by_id[action_id].trigger()
            assert exporter.is_running() and exporter.cancel_button.isVisible()
        assert not exporter.cancel_button.isVisible()
        frames = _read_frames(target)
        assert len(frames) > 1
        assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.5
        assert exporter.last_info.path == target
    # the reconstruction-only layout is narrower than the full one
    assert _read_frames(tmp_path / "run.gif")[0].shape[1] < _read_frames(
        tmp_path / "run.mp4")[0].shape[1]
    assert window.messenger.levels() == ["warning"]


def test_export_video_bad_path_cancel_and_close(qtbot, window, tmp_path: Path) -> None:
    window.panel.set_params(FAST.replace(time_budget=1.0), emit=False)
    with qtbot.waitSignal(window.training_finished, timeout=60_000):
        window.start_training()
    exporter = video_exporter(window)
    for bad in ("run.avi", "missing/run.mp4"):
        assert not exporter.start_export(tmp_path / bad)
    assert window.messenger.levels() == ["error", "error"]
    assert ".mp4 or .gif" in window.messenger.messages[0][2]
    assert "does not exist" in window.messenger.messages[1][2]
    # cancelled at once: nothing is written, not even a temporary file
    before = sorted(p.name for p in tmp_path.iterdir())
    with qtbot.waitSignal(exporter.ended, timeout=60_000):
        assert exporter.start_export(tmp_path / "cancelled.mp4")
        exporter.cancel()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert exporter.last_info is None
    # closing the window during an export cancels it and waits for its thread
    assert exporter.start_export(tmp_path / "closing.mp4")
    window.close()
    assert exporter.wait(1000)
    assert not (tmp_path / "closing.mp4").exists()
