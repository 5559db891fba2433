"""The window with colour (the Gray/Colour switch) and with the segment
methods (S-SMoE, AS-SMoE), and Compare with a chosen second method; driven
offscreen with pytest-qt on small generated images."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from smoe_gui.core.fileio import write_png  # noqa: E402
from smoe_gui.core.params import Params  # noqa: E402
from smoe_gui.ui import create_main_window  # noqa: E402
from smoe_gui.ui.geometry import segment_boundaries  # noqa: E402
from smoe_gui.ui.messages import RecordingMessenger  # noqa: E402
from smoe_gui.ui.session import compare_pair, view_captions  # noqa: E402
from smoe_gui.ui.workers import running_threads  # noqa: E402

FAST = Params(max_pts=20, tile_size=64, tile_steps=15, time_budget=0.8, expert_iters=5, patience=50,
              n_kernels=150)


def colour_image(h: int = 72, w: int = 96) -> np.ndarray:
    """A red disc, a blue bar and a green ramp: colour the luma cannot tell apart."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    img[..., 1] = 0.2 + 0.5 * xx / w
    img[..., 2] = 0.3
    disc = (xx - 30) ** 2 + (yy - 36) ** 2 < 16**2
    img[disc] = (0.9, 0.1, 0.1)
    img[10:20, 50:90] = (0.1, 0.2, 0.9)
    return img


@pytest.fixture(scope="module", autouse=True)
def compiled_core():
    """Compile the core once in the main thread (numba's first compilation is
    slow on a busy machine and must not count against the GUI timeouts)."""
    from smoe_gui.core import initialize
    from smoe_gui.core.rendering import render

    for method in ("edge", "s-smoe"):
        render(initialize(colour_image(), FAST.replace(channels="rgb"), method).model)


@pytest.fixture(autouse=True)
def no_thread_left_running():
    yield
    app = QApplication.instance()
    deadline = time.perf_counter() + 5.0
    while running_threads() and time.perf_counter() < deadline:
        if app is not None:
            app.processEvents()
        time.sleep(0.01)
    assert running_threads() == [], f"QThread left running: {running_threads()}"


@pytest.fixture()
def window(qtbot, tmp_path: Path):
    path = tmp_path / "colour.png"
    write_png(path, np.round(colour_image() * 255).astype(np.uint8))
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("params", FAST.to_json())
    win = create_main_window(path, settings=settings)
    win.messenger = RecordingMessenger()
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    wait_stages(qtbot, win)
    yield win
    win.close()


def wait_stages(qtbot, window, timeout: int = 60_000) -> None:
    qtbot.waitUntil(lambda: window.stages.views["edges"].shown_id == window.latest_request
                    and window.latest_request > 0, timeout=timeout)


def test_segment_boundaries_are_one_between_labels() -> None:
    labels = np.zeros((4, 6), np.int32)
    labels[:, 3:] = 1
    labels[2:, :3] = 2
    b = segment_boundaries(labels)
    assert b.dtype == np.uint8 and b.shape == labels.shape
    assert b[:, 2].tolist() == [1, 1, 1, 1]  # left of the vertical boundary
    assert b[1, :3].tolist() == [1, 1, 1]  # above the horizontal one (columns 0-2)
    assert b[0, 0] == 0 and b[3, 5] == 0
    assert not segment_boundaries(np.zeros((3, 3), np.int32)).any()
    with pytest.raises(ValueError, match="segment map"):
        segment_boundaries(np.zeros(5))


def test_compare_pair_and_captions() -> None:
    assert compare_pair("edge", "grid") == ("edge", "grid")
    assert compare_pair("s-smoe", "as-smoe") == ("s-smoe", "as-smoe")
    assert compare_pair("grid", "grid") == ("grid", "edge")
    assert compare_pair("edge", "edge") == ("edge", "grid")
    caps = view_captions("s-smoe", "s-smoe stages", 12)
    assert caps["segments"] == "s-smoe superpixels (12)" and caps["edges"] == "s-smoe: no edges"
    assert caps["reduced"] == "s-smoe: none"
    assert view_captions("edge", "edge stages") == dict.fromkeys(("edges", "segments", "reduced"), "edge stages")


def test_colour_switch_shows_rgb_reconstruction(qtbot, window) -> None:
    session = window.session
    assert session.source_image is not None and session.source_image.ndim == 3  # the file's colours kept
    assert window.image.ndim == 2  # gray (the paper) by default
    gray_button = window.panel.findChild(type(window.start_button), "channels-gray")
    colour_button = window.panel.findChild(type(window.start_button), "channels-rgb")
    assert gray_button.isChecked() and colour_button.text() == "Colour"
    source = session.source_image
    qtbot.mouseClick(colour_button, Qt.MouseButton.LeftButton)
    wait_stages(qtbot, window)
    assert window.panel.params().channels == "rgb" and session.params.channels == "rgb"
    assert session.source_image is source  # not read again
    assert window.image.shape == (72, 96, 3)
    recon = window.stages.reconstruction()
    assert recon is not None and recon.shape == (72, 96, 3)
    assert session.stage_result.snapshot.model.m.shape[1:] == (3,)
    # the red disc is red in the reconstruction, the blue bar blue
    assert recon[36, 30, 0] > recon[36, 30, 2] + 0.3
    assert recon[15, 70, 2] > recon[15, 70, 0] + 0.3
    assert window.stages.views["reconstruction"].base.image.shape == (72, 96, 3)
    assert "colour" in window.counts_label.text()
    window.set_view_mode("residual")
    assert window.stages.views["reconstruction"].base.image.shape == (72, 96, 3)
    window.set_view_mode("stage")
    export = window.stages.export_rgb("reconstruction")
    assert export.shape == (72, 96, 3)
    assert int(export[36, 30, 0]) > int(export[36, 30, 2]) + 60  # exported in colour
    # the kernel numbers show m as three values
    k = window.select_kernel_at("kernels", 30.0, 36.0)
    assert k is not None
    qtbot.waitUntil(lambda: window.stages.inspected is not None, timeout=30_000)

    info = window.stages.inspected.info
    assert info.expert_rgb is not None and len(info.expert_rgb) == 3 and "RGB" in info.text()
    # back to gray: the luma, without reading the file
    qtbot.mouseClick(window.panel.findChild(type(window.start_button), "channels-gray"), Qt.MouseButton.LeftButton)
    wait_stages(qtbot, window)
    assert window.image.ndim == 2 and window.stages.reconstruction().ndim == 2


def test_s_smoe_shows_the_segment_map(qtbot, window) -> None:
    window.panel.set_method("s-smoe")
    wait_stages(qtbot, window)
    result = window.session.stage_result
    assert result.init.method == "s-smoe" and result.superpixel_bounds is not None
    shown = window.stages.superpixel_image
    assert shown is not None and shown.shape == (72, 96) and shown.any()
    assert np.array_equal(shown, segment_boundaries(result.init.segment_map))
    assert window.stages.views["segments"].mask.isVisible()
    titles = {n: window.stages.title_of(n) for n in ("edges", "segments", "reduced", "kernels")}
    assert "s-smoe superpixels" in titles["segments"]
    assert "s-smoe: no edges" in titles["edges"] and "s-smoe: none" in titles["reduced"]
    assert window.stages.background_of("edges") == "dimmed"  # no stale or empty edge mask
    assert "s-smoe · initial" in titles["kernels"]
    assert window.stages.reconstruction() is not None
    counts, times = window.counts_label.text(), window.times_label.text()
    assert "superpixels" in counts and "edge pixels" not in counts
    assert "superpixels" in times and "allocation" in times and "experts" in times
    # back to edge: the segment map goes
    window.panel.set_method("edge")
    wait_stages(qtbot, window)
    assert window.stages.superpixel_image is None
    assert "superpixel" not in window.stages.title_of("segments")


def test_compare_with_a_chosen_method_labels_both_runs(qtbot, window) -> None:
    window.panel.set_method("s-smoe")
    wait_stages(qtbot, window)
    with qtbot.waitSignal(window.training_finished, timeout=120_000):
        assert window.start_compare("edge")
    assert window.session.compared_labels() == ("s-smoe", "edge")
    assert window.final_model("s-smoe") is not None and window.final_model("edge") is not None
    text = window.train_label.text()
    assert "s-smoe:" in text and "edge:" in text
    assert window.plots.psnr_curves["s-smoe"].isVisible() and window.plots.psnr_curves["edge"].isVisible()
    assert not window.plots.psnr_curves["grid"].isVisible()
    assert [window.run_combo.itemData(i) for i in range(window.run_combo.count())] == ["s-smoe", "edge"]
    window.show_run("s-smoe")
    assert window.session.model_caption.startswith("s-smoe · trained")
