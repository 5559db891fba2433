"""The window with colour (the Gray/Colour switch) and with the segment
methods (S-SMoE, AS-SMoE), and Compare with a chosen second method; driven
offscreen with pytest-qt on small generated images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QGroupBox  # noqa: E402

from smoe_gui.core.io.fileio import write_png  # noqa: E402
from smoe_gui.core.labels import label_boundaries  # noqa: E402
from smoe_gui.core.params import Params  # noqa: E402
from smoe_gui.ui import create_main_window  # noqa: E402
from smoe_gui.ui.control.session import compare_pair, view_captions  # noqa: E402
from smoe_gui.ui.messages import RecordingMessenger  # noqa: E402
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
    from smoe_gui.core.rendering.culled import render

    for method in ("edge", "s-smoe"):
        render(initialize(colour_image(), FAST.replace(channels="rgb"), method).model)


#: Every test ends with no QThread left running (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("no_qthread_left_running")


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
    b = label_boundaries(labels)
    assert b.dtype == np.bool_ and b.shape == labels.shape
    assert b[:, 2].tolist() == [1, 1, 1, 1]  # left of the vertical boundary
    assert b[1, :3].tolist() == [1, 1, 1]  # above the horizontal one (columns 0-2)
    assert b[0, 0] == 0 and b[3, 5] == 0
    assert not label_boundaries(np.zeros((3, 3), np.int32)).any()
    with pytest.raises(ValueError, match="label map"):
        label_boundaries(np.zeros(5))


def test_compare_pair_and_captions() -> None:
    assert compare_pair("edge", "grid") == ("edge", "grid")
    assert compare_pair("s-smoe", "as-smoe") == ("s-smoe", "as-smoe")
    assert compare_pair("grid", "grid") == ("grid", "edge")
    assert compare_pair("edge", "edge") == ("edge", "grid")
    caps = view_captions("s-smoe", "s-smoe stages", 12)
    assert caps["segments"] == "s-smoe · 12" and caps["edges"] == "s-smoe: no edges"
    assert caps["reduced"] == "s-smoe: none"
    assert view_captions("edge", "edge stages") == dict.fromkeys(
        ("edges", "segments", "reduced"), "edge stages"
    )


def test_colour_switch_shows_rgb_reconstruction(qtbot, window) -> None:
    session = window.session
    assert (
        session.source_image is not None and session.source_image.ndim == 3
    )  # the file's colours kept
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
    qtbot.mouseClick(
        window.panel.findChild(type(window.start_button), "channels-gray"),
        Qt.MouseButton.LeftButton,
    )
    wait_stages(qtbot, window)
    assert window.image.ndim == 2 and window.stages.reconstruction().ndim == 2


def test_s_smoe_shows_the_segment_map(qtbot, window) -> None:
    window.panel.set_method("s-smoe")
    wait_stages(qtbot, window)
    result = window.session.stage_result
    assert result.init.method == "s-smoe" and result.superpixel_bounds is not None
    shown = window.stages.superpixel_image
    assert shown is not None and shown.shape == (72, 96) and shown.any()
    assert np.array_equal(shown, label_boundaries(result.init.segment_map))
    assert window.stages.views["segments"].mask.isVisible()
    titles = {n: window.stages.title_of(n) for n in ("edges", "segments", "reduced", "kernels")}
    n_sp = int(result.init.segment_map.max()) + 1
    assert titles["segments"] == f"2  Superpixels  —  s-smoe · {n_sp}"
    assert "s-smoe: no edges" in titles["edges"] and "s-smoe: none" in titles["reduced"]
    assert window.stages.background_of("edges") == "dimmed"  # no stale or empty edge mask
    window.panel.set_method("grid")  # no edge pixel either: the image dimmed, not blank white
    wait_stages(qtbot, window)
    assert not window.session.stage_result.init.edges.any()
    assert window.stages.background_of("edges") == "dimmed"
    assert "grid: no edges used" in window.stages.title_of("edges")
    window.panel.set_method("s-smoe")
    wait_stages(qtbot, window)
    assert "s-smoe · initial" in titles["kernels"]
    assert window.stages.reconstruction() is not None
    counts, times = window.counts_label.text(), window.times_label.text()
    assert "superpixels" in counts and "edge pixels" not in counts
    assert "superpixels" in times and "allocation" in times and "experts" in times
    # back to edge: the segment map goes
    window.panel.set_method("edge")
    wait_stages(qtbot, window)
    assert window.stages.superpixel_image is None
    assert "superpixel" not in window.stages.title_of("segments").lower()
    assert window.stages.title_of("segments").startswith("2  Raw segments")


def test_compare_with_a_chosen_method_labels_both_runs(qtbot, window) -> None:
    window.panel.set_method("s-smoe")
    wait_stages(qtbot, window)
    with qtbot.waitSignal(window.training_finished, timeout=120_000):
        assert window.start_compare("edge")
    assert window.session.compared_labels() == ("s-smoe", "edge")
    assert window.final_model("s-smoe") is not None and window.final_model("edge") is not None
    text = window.train_label.text()
    assert "s-smoe:" in text and "edge:" in text
    assert (
        window.plots.psnr_curves["s-smoe"].isVisible()
        and window.plots.psnr_curves["edge"].isVisible()
    )
    assert not window.plots.psnr_curves["grid"].isVisible()
    assert [window.run_combo.itemData(i) for i in range(window.run_combo.count())] == [
        "s-smoe",
        "edge",
    ]
    window.show_run("s-smoe")
    assert window.session.model_caption.startswith("s-smoe · trained")


# --------------------------------------------------------------- every method's kernels and lecture
def quick_as_smoe(window) -> None:
    """Short AS-SMoE local fits (set quietly: the next method change recomputes)."""
    window.panel.set_params(window.panel.params().replace(as_steps=10, as_doublings=1), emit=False)


@pytest.mark.parametrize("method", ["s-smoe", "as-smoe"])
def test_segment_methods_initial_kernels_are_drawn_as_initial(qtbot, window, method: str) -> None:
    from smoe_gui.ui.control.geometry import KERNEL_CATEGORIES

    quick_as_smoe(window)
    window.panel.set_method(method)
    wait_stages(qtbot, window)
    kv = window.stages.views["kernels"]
    k = window.session.stage_result.snapshot.model.n_kernels
    assert kv.point_count("segment") == k and kv.point_count("trained") == 0
    assert sum(kv.point_count(c) for c in KERNEL_CATEGORIES) == k
    assert len(window.stages.kernel_line_data("segment")) > 0  # its ellipses, in the segment colour
    assert len(window.stages.kernel_line_data("trained")) == 0
    assert "segment (S-SMoE, AS-SMoE)" in window.stages.legend_html()
    # the hover label and the kernel panel say what the kernel is
    x, y = window.session.stage_result.snapshot.model.mu[0]
    assert window.inspect_at("kernels", float(x), float(y)) is not None
    hover = kv.hover_text.textItem.toPlainText().split("\n")
    assert hover[0] == "kernel 0 · segment, initial" and hover[1].startswith("μ = (")
    assert window.select_kernel_at("kernels", float(x), float(y)) is not None
    qtbot.waitUntil(lambda: window.stages.inspected is not None, timeout=30_000)
    text = window.kernel_panel.text.text()
    assert "segment (S-SMoE, AS-SMoE), initial" in text and "pair partner" not in text


def test_trained_segment_model_is_drawn_as_trained(qtbot, window) -> None:
    window.panel.set_method("s-smoe")
    wait_stages(qtbot, window)
    with qtbot.waitSignal(window.training_finished, timeout=120_000):
        assert window.start_training()
    final = window.final_model("train")
    qtbot.waitUntil(
        lambda: window.current_model() is final and not window.session.render_pending(),
        timeout=30_000,
    )
    kv = window.stages.views["kernels"]
    assert kv.point_count("trained") == final.n_kernels and kv.point_count("segment") == 0
    assert window.session.kernel_kind(0) == "trained"


def test_lecture_of_each_method_shows_its_steps(qtbot, window) -> None:
    from smoe_gui.core.params import METHODS
    from smoe_gui.ui.control.lecture_steps import VIEW_NAMES, lecture_steps

    quick_as_smoe(window)
    window.set_kernel_mode("territories")  # the user's choice, put back after the lecture
    for method in METHODS:
        window.panel.set_method(method)
        wait_stages(qtbot, window)
        window.actions_by_id["lecture"].trigger()
        assert window.lecture.active and window.lecture.method == method
        steps = lecture_steps(method)
        for i, step in enumerate(steps):
            assert window.lecture.current() is step
            assert window.lecture.revealed() == [v for v in VIEW_NAMES if v in step.views], (
                method,
                step.title,
            )
            caption = window.lecture_caption.text()
            assert window.lecture_caption.isVisible()
            assert f"{method} · {step.title}" in caption and f"({i + 1}/{len(steps)})" in caption
            assert window.training_panel.isVisible() == step.training
            expected_mode = step.kernel_mode or "territories"
            assert window.stages.kernel_mode == expected_mode
            assert window.stages.kernel_mode_box.currentData() == expected_mode
            if "kernels" in step.views:  # the drawn kernels: the method's initial kinds
                qtbot.waitUntil(lambda: not window.session.render_pending(), timeout=30_000)
                geo = window.stages.geometry_shown
                assert geo is not None and len(geo.centres["trained"]) == 0
            window.lecture.next()
        assert window.lecture.current() is steps[-1]  # past the end: stays
        window.actions_by_id["lecture"].trigger()  # leave: everything again, the user's view 4
        assert not window.lecture.active and len(window.lecture.revealed()) == 5
        assert window.stages.kernel_mode == "territories"
    # the method selector during a lecture: that method's lecture from its start
    window.panel.set_method("s-smoe")
    wait_stages(qtbot, window)
    window.lecture.set_active(True)
    window.lecture.next()
    window.panel.set_method("grid")
    assert window.lecture.method == "grid" and window.lecture.step == 0
    assert (
        window.lecture.revealed() == ["kernels"]
        and "grid · 1 Grid kernels" in window.lecture_caption.text()
    )
    window.lecture.set_active(False)


def test_guide_and_parameter_groups_follow_the_method(qtbot, window) -> None:
    from smoe_gui.ui.control.lecture_steps import lecture_steps

    window.panel.set_method("as-smoe", emit=False)
    guide = window.show_guide()
    text = guide.browser.toPlainText()
    assert "AS-SMoE (adaptive superpixels) — the method selected" in text
    assert text.index("— the method selected") < text.index(
        "Canny marks"
    )  # as-smoe's lecture first
    for method in ("edge", "grid", "s-smoe", "as-smoe"):
        for step in lecture_steps(method):
            assert step.title in text and step.caption in text, (method, step.title)
    for needle in (
        "Superpixels",
        "segment kernels (S-SMoE, AS-SMoE)",
        "a trained or loaded model",
        "A AT = C−1/2",
    ):
        assert needle in text, needle
    guide.close()
    boxes = {
        g: window.panel.findChild(QGroupBox, f"param-group-{g}")
        for g in ("edges", "segments", "experts")
    }
    assert boxes["edges"].title() == "1  Canny edges  (not used by as-smoe)"
    assert (
        boxes["segments"].title() == "Superpixels (S-SMoE, AS-SMoE)"
        and boxes["experts"].title() == "5  Experts"
    )
    window.panel.set_method("grid", emit=False)
    assert boxes["edges"].title() == "1  Canny edges"  # the grid's count follows the edge stages
    assert boxes["segments"].title().endswith("(not used by grid)")


def test_screenshot_option_picks_the_method_and_lecture_step(qtbot, tmp_path, monkeypatch) -> None:
    from smoe_gui.ui import app

    path = tmp_path / "colour.png"
    write_png(path, np.round(colour_image() * 255).astype(np.uint8))
    seen: dict[str, object] = {}
    original = app.take_screenshot

    def spy(window, out, train_s=None, lecture_step=None):  # noqa: ANN001, ANN202
        seen["method"] = window.panel.method()
        status = original(window, out, train_s, lecture_step)
        seen["init"] = window.session.stage_result.init.method
        seen["step"] = window.lecture.current()
        return status

    monkeypatch.setattr(app, "take_screenshot", spy)
    out = tmp_path / "shot.png"
    assert (
        app.main([str(path), "--method", "s-smoe", "--screenshot", str(out), "--lecture", "3"]) == 0
    )
    from smoe_gui.ui.control.lecture_steps import lecture_steps

    assert seen == {"method": "s-smoe", "init": "s-smoe", "step": lecture_steps("s-smoe")[2]}
    assert out.stat().st_size > 0
    with pytest.raises(SystemExit):
        app.main([str(path), "--method", "blobs", "--screenshot", str(out)])
    assert running_threads() == []


def test_lecture_step_out_of_range_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    from smoe_gui.ui import app

    out = tmp_path / "shot.png"
    for argv, says in (
        (
            ["--method", "s-smoe", "--screenshot", str(out), "--lecture", "9"],
            "s-smoe lecture has steps 1-5",
        ),
        (["--screenshot", str(out), "--lecture", "0"], "edge lecture has steps 1-6"),
        (["--lecture", "2"], "--lecture needs --screenshot"),
    ):
        assert app.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert says in err and "\n" not in err
    assert not out.exists()
