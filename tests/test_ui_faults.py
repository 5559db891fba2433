"""Small faults of the window, one test per kind: a Compare's leftovers after
another method is chosen, view 3's strokes, the training line's time, the
guide's words for view 1, no modal box with --screenshot, actions without an
image, a model of another image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings  # noqa: E402

from smoe_gui.core.io.fileio import write_png  # noqa: E402
from smoe_gui.core.params import Params  # noqa: E402
from smoe_gui.ui import create_main_window  # noqa: E402
from smoe_gui.ui.messages import RecordingMessenger, StderrMessenger  # noqa: E402
from smoe_gui.ui.workers import running_threads  # noqa: E402

FAST = Params(max_pts=20, tile_size=64, tile_steps=15, time_budget=0.6, expert_iters=5)


def _image(seed: int = 0, h: int = 96, w: int = 128) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 0.2 + 0.3 * xx / w + 0.05 * seed
    img[(xx - 40 - 10 * seed) ** 2 + (yy - 48) ** 2 < 20**2] = 0.9
    img[20:30, 70:120] = 0.05
    return np.clip(img, 0, 1).astype(np.float32)


def _write(path: Path, img: np.ndarray) -> Path:
    write_png(path, (img * 255).astype(np.uint8))
    return path


@pytest.fixture()
def image_path(tmp_path: Path) -> Path:
    return _write(tmp_path / "a.png", _image(0))


def _wait_stages(qtbot, win) -> None:
    qtbot.waitUntil(
        lambda: win.latest_request > 0
        and win.stages.views["edges"].shown_id == win.latest_request,
        timeout=30_000,
    )


@pytest.fixture()
def window(qtbot, image_path: Path, tmp_path: Path):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue("params", FAST.to_json())
    win = create_main_window(image_path, settings=settings)
    win.messenger = RecordingMessenger()
    qtbot.addWidget(win)
    win.resize(1280, 720)
    win.show()
    _wait_stages(qtbot, win)
    yield win
    win.close()


def test_another_method_after_a_compare_clears_its_curves_status_and_runs(qtbot, window) -> None:
    assert window.start_compare("grid")
    qtbot.waitUntil(lambda: not window.is_training(), timeout=60_000)
    qtbot.waitUntil(lambda: window.run_combo.count() == 2, timeout=10_000)
    assert window.run_combo.isEnabled() and window.side_by_side_button.isEnabled()
    status = window.train_label.text()
    # the summary gives the time against the budget, as the CLI does ("9.3 / 20 s")
    assert " / 0.6 s" in status, status
    assert len(window.plots.data["edge"]) > 0 and window.plots.labels_shown == ("edge", "grid")
    window.panel.set_method("s-smoe")
    _wait_stages(qtbot, window)
    assert window.run_combo.count() == 0 and not window.run_combo.isEnabled()
    assert not window.side_by_side_button.isEnabled()
    assert window.train_label.text() == ""
    assert len(window.plots.data["edge"]) == 0 and window.plots.labels_shown == ("train",)
    assert window.session.compared_labels() == ()


def test_view_3_strokes_have_a_visible_length(qtbot, window) -> None:
    window.fit_views()
    qtbot.wait(100)
    view = window.stages.views["reduced"]
    px = view.getViewBox().viewPixelSize()[0]
    strokes = np.concatenate([view.line_data("cluster"), view.line_data("salient")])
    assert len(strokes) >= 2
    lengths = np.hypot(*(strokes[0::2] - strokes[1::2]).T) / px  # screen px
    assert lengths.min() >= 11.0  # 2·Δμ = 6 image px was a dot at this zoom
    delta_mu = window.panel.params().delta_mu
    assert lengths.min() * px >= 2 * delta_mu - 1e-6


def test_the_guide_says_view_1_s_colours_as_the_palette_draws_them(qtbot, window) -> None:
    from smoe_gui.ui.guide import guide_html
    from smoe_gui.ui.theme import current_theme

    try:
        window.set_color_scheme("light")
        text = guide_html(current_theme(), "edge")
        assert "black on white" in text and "white on black" not in text
        window.set_color_scheme("dark")
        text = guide_html(current_theme(), "edge")
        assert "white on black" in text and "black on white" not in text
    finally:
        window.set_color_scheme("system")


def test_no_image_save_and_export_say_so_before_any_dialog(qtbot, tmp_path, monkeypatch) -> None:
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    win = create_main_window(None, settings=settings, open_default=False)
    win.messenger = RecordingMessenger()
    qtbot.addWidget(win)
    asked: list[str] = []
    monkeypatch.setattr(win.files, "ask_save_path", lambda *a: asked.append("save") or "")
    monkeypatch.setattr(win.files, "ask_folder", lambda *a: asked.append("folder") or "")
    try:
        for key in ("save-model", "export-kernels", "export-stages", "export-reconstruction"):
            win.actions_by_id[key].trigger()
        assert asked == []
        assert win.messenger.levels() == ["warning"] * 4
        assert "Open an image first" in win.messenger.texts()
    finally:
        win.close()


def test_a_model_of_another_image_of_the_same_size_is_named(qtbot, window, tmp_path) -> None:
    from smoe_gui.core.io.modelio import image_digest, read_model_image_digest, save_model

    own = tmp_path / "own.npz"
    assert window.files.save_model_file(own)
    assert read_model_image_digest(own) == image_digest(window.session.source_image)
    model = window.session.model_to_save()
    bare = tmp_path / "bare.npz"
    save_model(model, bare)  # no fingerprint (files older than the fingerprint)
    assert window.files.load_model_file(own)
    assert window.messenger.messages == [] and "made for this image" in window.status_line.text()
    assert window.files.load_model_file(bare)
    assert "no image fingerprint" in window.status_line.text()
    assert window.messenger.messages == []
    other = _write(tmp_path / "b.png", _image(2))
    assert window.open_image(other)
    _wait_stages(qtbot, window)
    assert window.files.load_model_file(own)  # same size: loads, and says so
    assert window.messenger.levels() == ["warning"]
    assert "another image of the same size" in window.messenger.texts()


@pytest.mark.parametrize("command", ["init", "fit"])
def test_the_cli_s_models_carry_the_image_s_fingerprint(
    qtbot, window, image_path, tmp_path, command
) -> None:
    # issue 21: `smoe init` / `smoe fit` wrote no fingerprint, so their model
    # loaded over another image of the same size without a warning
    from smoe_gui.cli import main
    from smoe_gui.core.io.modelio import image_digest, read_model_image_digest

    out = tmp_path / command
    extra = ["--set", "time_budget=0.3", "--quiet"] if command == "fit" else []
    argv = [command, str(image_path), "--set", "max_pts=20", "--set", "expert_iters=2"]
    assert main([*argv, *extra, "--out", str(out)]) == 0
    model = out / "model.npz"
    assert read_model_image_digest(model) == image_digest(window.session.source_image)
    assert window.files.load_model_file(model)  # its own image: no warning
    assert window.messenger.messages == [] and "made for this image" in window.status_line.text()
    other = _write(tmp_path / "b.png", _image(2))
    assert window.open_image(other)
    _wait_stages(qtbot, window)
    assert window.files.load_model_file(model)
    assert window.messenger.levels() == ["warning"]
    assert "another image of the same size" in window.messenger.texts()


def test_every_model_writer_stores_a_fingerprint(tmp_path) -> None:
    from smoe_gui.core.experiment.store import RunOutput, save_run
    from smoe_gui.core.io.modelio import image_digest, read_model_image_digest, save_model
    from smoe_gui.core.model import SmoeModel

    model = SmoeModel(
        mu=np.array([[10.0, 12.0]]), A=np.eye(2)[None] * 0.2, m=np.array([0.5]),
        log_alpha=np.zeros(1), height=96, width=128,
    )
    digest = image_digest(_image(0))
    output = RunOutput(record={"run_id": "r1"}, init_model=model, final_model=model,
                       image_digest=digest)
    save_run(tmp_path, output)  # smoe experiment's per-run models
    for name in ("r1.init.npz", "r1.model.npz"):
        assert read_model_image_digest(tmp_path / "runs" / name) == digest
    save_model(model, tmp_path / "d.npz", digest=digest)  # smoe tune's trial models
    assert read_model_image_digest(tmp_path / "d.npz") == digest
    with pytest.raises(ValueError, match="hex digits"):
        save_model(model, tmp_path / "bad.npz", digest="not hex")


def test_screenshot_never_waits_on_a_box(qtbot, tmp_path, capsys) -> None:
    from smoe_gui.ui.app import main

    messenger = StderrMessenger()
    messenger.error("Cannot open image", "x.png: not an image\nfile")
    assert messenger.failed and messenger.ask("Large image", "downscale?")
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "smoe-gui: error: Cannot open image: x.png: not an image file"
    assert "(answered yes)" in err[1]
    # an image wider than 4096 px: the window would ask whether to downscale it
    rng = np.random.default_rng(0)
    wide = _write(tmp_path / "wide.png", rng.random((24, 4100)).astype(np.float32))
    out = tmp_path / "shot.png"
    assert main([str(wide), "--screenshot", str(out)]) == 0
    assert out.exists() and "Large image" in capsys.readouterr().err
    notes = _write(tmp_path / "notes.png", _image())
    notes.write_text("not an image")
    assert main([str(notes), "--screenshot", str(tmp_path / "x.png")]) == 2
    assert "not an image file" in capsys.readouterr().err
    assert running_threads() == []
