"""The desktop window, driven offscreen with pytest-qt.

Small synthetic images and tiny training budgets keep this file fast.  Every
test must leave no worker thread running (autouse fixture).
"""

from __future__ import annotations

import csv
import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from smoe_gui.core.io.fileio import write_png  # noqa: E402
from smoe_gui.core.io.modelio import load_model, save_model  # noqa: E402
from smoe_gui.core.params import Params  # noqa: E402
from smoe_gui.ui import create_main_window  # noqa: E402
from smoe_gui.ui.messages import RecordingMessenger  # noqa: E402
from smoe_gui.ui.workers import running_threads  # noqa: E402

#: Parameters that keep every stage and every fit small and quick.
FAST = Params(max_pts=20, tile_size=64, tile_steps=15, time_budget=1.5, expert_iters=5, patience=50)


@pytest.fixture(scope="module", autouse=True)
def compiled_core():
    """Run the core once in the main thread so that numba's first compilation
    (slow on a busy machine) does not count against the GUI timeouts."""
    from smoe_gui.core import initialize
    from smoe_gui.core.rendering.culled import render

    render(initialize(make_image(), FAST).model)


@pytest.fixture(autouse=True)
def no_thread_left_running():
    """Fail the test if a worker QThread outlives it."""
    yield
    app = QApplication.instance()
    deadline = time.perf_counter() + 5.0
    while running_threads() and time.perf_counter() < deadline:  # finished signals still queued
        if app is not None:
            app.processEvents()
        time.sleep(0.01)
    assert running_threads() == [], f"QThread left running: {running_threads()}"


def make_image(h: int = 96, w: int = 128) -> np.ndarray:
    """A disc, a dark bar, a ramp, and a square whose contrast grows to the right
    (so Canny's hysteresis thresholds matter)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 0.2 + 0.3 * xx / w
    img[(xx - 40) ** 2 + (yy - 48) ** 2 < 20**2] = 0.9
    img[20:30, 70:120] = 0.05
    square = (xx >= 76) & (xx < 120) & (yy >= 50) & (yy < 86)
    img[square] += 0.45 * (xx[square] - 76) / 44
    return np.clip(img, 0.0, 1.0).astype(np.float32)


@pytest.fixture()
def image_path(tmp_path: Path) -> Path:
    path = tmp_path / "synthetic.png"
    write_png(path, make_image())
    return path


@pytest.fixture()
def settings(tmp_path: Path) -> QSettings:
    s = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    s.setValue("params", FAST.to_json())
    return s


def wait_stages(qtbot, window, timeout: int = 30_000) -> None:
    qtbot.waitUntil(lambda: window.stages.views["edges"].shown_id == window.latest_request
                    and window.latest_request > 0, timeout=timeout)


@pytest.fixture()
def window(qtbot, image_path: Path, settings: QSettings):
    win = create_main_window(image_path, settings=settings)
    win.messenger = RecordingMessenger()
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    wait_stages(qtbot, win)
    yield win
    win.close()


def views_state(window) -> dict[str, object]:
    """What the five views show, as comparable arrays."""
    v = window.stages.views
    return {
        "edges": np.asarray(window.stages._edges).copy(),
        "segments": np.concatenate([v["segments"].line_data(f"dir{a}") for a in (0, 90, 45, -45)]),
        "reduced": np.concatenate(
            [v["reduced"].line_data("cluster"), v["reduced"].line_data("salient")]
        ),
        "salient": v["reduced"].line_data("salient"),
        "kernels": np.concatenate(
            [v["kernels"].line_data(c) for c in ("pair", "background", "grid", "trained")]
        ),
        "reconstruction": np.asarray(v["reconstruction"].base.image).copy(),
    }


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.allclose(np.nan_to_num(a), np.nan_to_num(b)))


# --------------------------------------------------------------------------- names and start-up
def test_required_object_names_exist(window) -> None:
    from PySide6.QtWidgets import QWidget

    for name in (
        "stage-edges",
        "stage-segments",
        "stage-reduced",
        "stage-kernels",
        "stage-reconstruction",
        "param-canny_sigma",
        "param-canny_low",
        "param-canny_high",
        "param-lam",
        "param-max_pts",
        "param-delta_mu",
        "psnr-plot",
        "train-start",
        "train-pause",
        "train-stop",
    ):
        assert window.findChild(QWidget, name) is not None, name
    counts = window.findChild(QWidget, "status-counts").text()
    assert "edge pixels" in counts and "segments" in counts and "kernels" in counts
    times = window.findChild(QWidget, "status-times").text()
    assert "edges" in times and "experts" in times and "render" in times
    # expert_stop = "mse": the refinement may stop before expert_iters (it keeps the best)
    assert 1 <= len(window.expert_plot.history()) <= FAST.expert_iters + 1


def test_views_are_linked(window) -> None:
    first = window.stages.views["edges"].getViewBox()
    first.setRange(xRange=(10, 40), yRange=(10, 30), padding=0)
    QApplication.processEvents()
    other = window.stages.views["reconstruction"].getViewBox().viewRange()
    mine = first.viewRange()
    # linked views show the same place; their aspect-locked extents differ with the views' shapes
    for axis in (0, 1):
        assert sum(other[axis]) / 2 == pytest.approx(sum(mine[axis]) / 2, abs=1.0)
    assert other[0][1] - other[0][0] < 200  # zoomed in, not the whole image


# --------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    ("name", "value", "changes"),
    [
        ("canny_sigma", 3.0, ("edges", "segments")),
        ("canny_low", 0.02, ("edges", "segments")),
        ("canny_high", 0.05, ("edges", "segments")),
        ("lam", 0.9, ("salient",)),
        ("max_pts", 10, ("reduced", "kernels")),
        ("delta_mu", 6.0, ("kernels", "reconstruction")),
    ],
)
def test_each_parameter_widget_changes_the_views(qtbot, window, name, value, changes) -> None:
    from PySide6.QtWidgets import QWidget

    before = views_state(window)
    widget = window.findChild(QWidget, f"param-{name}")
    with qtbot.waitSignal(window.stages_shown, timeout=30_000):
        widget.setValue(value)
    assert getattr(window.panel.params(), name) == pytest.approx(value)
    after = views_state(window)
    for key in changes:
        assert not same(before[key], after[key]), f"{name} did not change the {key} view"


def test_tooltips_come_from_the_parameter_table(window) -> None:
    from smoe_gui.core.params import PARAM_SPECS
    from smoe_gui.ui.param_panel import unused_note

    method = window.panel.method()
    for s in PARAM_SPECS:
        widget = window.panel.widget(s.name)
        note = unused_note(s.name, method)  # a parameter the method does not read says so first
        assert widget.toolTip() == (f"{note}\n{s.tooltip()}" if note else s.tooltip())
        assert s.ref in widget.toolTip()


def test_method_selector_and_reset(qtbot, window) -> None:
    with qtbot.waitSignal(window.stages_shown, timeout=30_000):
        window.panel.set_method("grid")
    v = window.stages.views["kernels"]
    assert v.line_data("grid").shape[0] > 0 and v.line_data("pair").shape[0] == 0
    assert v.line_data("link").shape[0] == 0
    with qtbot.waitSignal(window.stages_shown, timeout=30_000):
        window.panel.widget("delta_mu").setValue(7.0)
    with qtbot.waitSignal(window.stages_shown, timeout=30_000):
        window.panel.reset_button.click()
    assert window.panel.params() == Params()
    assert window.panel.widget("delta_mu").value() == pytest.approx(Params().delta_mu)


def test_stale_results_are_dropped(qtbot, window) -> None:
    shown: list[int] = []
    window.stages_shown.connect(shown.append)
    window.panel.set_params(FAST.replace(canny_sigma=2.5), emit=False)
    first = window.recompute()
    window.panel.set_params(FAST.replace(canny_sigma=0.8), emit=False)
    second = window.recompute()
    qtbot.waitUntil(lambda: second in shown, timeout=30_000)
    qtbot.wait(300)  # let any late result of the first request arrive
    assert first not in shown
    assert all(v.shown_id == second for v in window.stages.views.values())
    assert window.session.stage_result.init.params.canny_sigma == pytest.approx(0.8)


def test_slider_drag_is_debounced(qtbot, window) -> None:
    slider = window.panel.slider("delta_mu")
    before = window.latest_request
    slider.setSliderDown(True)
    for pos in range(slider.value() + 5, slider.value() + 60, 5):
        slider.setValue(pos)
    assert window.latest_request == before  # nothing computed while dragging fast
    qtbot.waitUntil(lambda: window.latest_request == before + 1, timeout=5_000)
    slider.setSliderDown(False)
    wait_stages(qtbot, window)
    assert window.session.stage_result.init.params.delta_mu == pytest.approx(
        window.panel.params().delta_mu
    )


def test_canny_thresholds_stay_ordered(window) -> None:
    window.panel.widget("canny_low").setValue(0.5)
    p = window.panel.params()
    assert p.canny_low == pytest.approx(0.5) and p.canny_high >= p.canny_low
    assert window.panel.widget("canny_high").value() == pytest.approx(p.canny_high)


def test_original_and_residual_one_click_away(qtbot, window) -> None:
    from PySide6.QtWidgets import QPushButton

    qtbot.mouseClick(window.findChild(QPushButton, "view-original"), Qt.MouseButton.LeftButton)
    assert all(window.stages.background_of(n) == "original" for n in window.stages.views)
    np.testing.assert_allclose(window.stages.views["reconstruction"].base.image, window.image)
    assert window.stages.views["edges"].mask.isVisible()  # edge pixels over the original
    qtbot.mouseClick(window.findChild(QPushButton, "view-residual"), Qt.MouseButton.LeftButton)
    residual = window.stages.views["kernels"].base.image
    np.testing.assert_allclose(
        residual, np.abs(window.image - window.stages.reconstruction()), atol=1e-6
    )
    qtbot.mouseClick(window.findChild(QPushButton, "view-stage"), Qt.MouseButton.LeftButton)
    assert window.stages.background_of("edges") == "edges"
    assert window.stages.background_of("reconstruction") == "reconstruction"


# --------------------------------------------------------------------------- training
def _steps(window, label: str = "train") -> int:
    return len(window.plots.data[label])


def test_start_pause_resume_stop(qtbot, window) -> None:
    window.panel.set_params(FAST.replace(time_budget=60.0, tile_steps=100_000 // 1000), emit=False)
    window.session.matching_init = lambda *a: None  # noqa: ARG005 (fit initialises itself here)
    qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton)
    assert window.is_training() and not window.start_button.isEnabled()
    qtbot.waitUntil(lambda: _steps(window) > 5, timeout=30_000)
    qtbot.waitUntil(lambda: window.frames_shown >= 1, timeout=10_000)
    qtbot.mouseClick(window.pause_button, Qt.MouseButton.LeftButton)
    assert window.pause_button.text() == "Resume"
    qtbot.wait(300)
    paused_at = _steps(window)
    qtbot.wait(400)
    assert _steps(window) <= paused_at + 1  # at most the step in flight
    qtbot.mouseClick(window.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _steps(window) > paused_at + 3, timeout=10_000)
    with qtbot.waitSignal(window.training_finished, timeout=10_000):
        qtbot.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)
    assert not window.is_training() and window.start_button.isEnabled()
    final = window.final_model("train")
    assert final is not None and (final.height, final.width) == window.image.shape
    x, y = window.plots.psnr_curves["train"].getData()
    # the curve is the whole image's PSNR: measured every ~0.3 s in the tile phase, then every step
    whole = window.plots.data["train"].whole_image()
    assert len(x) == len(whole) >= 2 and np.all(np.isfinite(y))
    window.tile_psnr_box.setChecked(True)  # the per-tile values on request
    tx, _ = window.plots.tile_curves["train"].getData()
    tiles = int(np.sum(window.plots.data["train"].arrays()["phase"] == "tiles"))
    assert window.plots.tile_curves["train"].isVisible() and len(tx) == tiles
    window.x_axis_combo.setCurrentIndex(1)  # seconds
    xs, _ = window.plots.psnr_curves["train"].getData()
    assert xs[-1] < 60 and not np.allclose(xs, x)
    assert window.stages.views["kernels"].line_data("trained").shape[0] > 0


def test_training_finishes_and_draws_live(qtbot, window) -> None:
    window.panel.set_params(FAST.replace(time_budget=1.0), emit=False)
    with qtbot.waitSignal(window.training_finished, timeout=30_000):
        window.start_training()
    assert window.frames_shown >= 1
    phases = set(window.plots.data["train"].arrays()["phase"].tolist())
    assert "tiles" in phases
    visible = [p for p, line in window.plots.phase_lines.items() if line.isVisible()]
    assert "tiles" in visible
    assert window.plots.kernel_curves["train"].getData()[1][-1] >= 1


def test_training_runs_below_the_gui_and_ends_with_the_final_overlay(qtbot, window) -> None:
    from smoe_gui.ui.control.geometry import KERNEL_CATEGORIES

    window.panel.set_params(FAST.replace(time_budget=1.0), emit=False)
    with qtbot.waitSignal(window.training_finished, timeout=30_000):
        window.start_training()
        worker = window.session.trainer.worker
    if sys.platform.startswith("linux"):
        assert worker.priority_lowered  # the GUI thread wins the CPU when it needs it
    final = window.final_model("train")
    qtbot.waitUntil(lambda: window.current_model() is final, timeout=10_000)
    view = window.stages.views["kernels"]
    # the overlay, redrawn at most every OVERLAY_INTERVAL_S during the run, shows
    # the final model's kernels once the run is over
    assert view.point_count("trained") == final.n_kernels
    assert sum(view.point_count(cat) for cat in KERNEL_CATEGORIES) == final.n_kernels
    drawn = np.asarray(view.points["trained"].getData()).T
    np.testing.assert_allclose(np.sort(drawn, axis=0), np.sort(final.mu, axis=0), atol=1e-9)


def test_a_failed_live_frame_is_said_and_the_next_frames_still_come(
    qtbot, window, monkeypatch
) -> None:
    """A frame job that fails reaches the session through the window (the
    status line says why) and no longer holds the next frames back."""
    import smoe_gui.ui.control.session as session_module

    real = session_module.with_numba_threads
    calls = [0]

    def first_fails(*args):
        calls[0] += 1
        if calls[0] == 1:
            raise MemoryError("no memory for this frame")
        return real(*args)

    monkeypatch.setattr(session_module, "with_numba_threads", first_fails)
    failed: list[tuple[int, str]] = []
    told = window.session.snapshot_failed
    monkeypatch.setattr(window.session, "snapshot_failed",
                        lambda rid, message: failed.append((rid, message)) or told(rid, message))
    window.panel.set_params(FAST.replace(time_budget=1.5), emit=False)
    with qtbot.waitSignal(window.training_finished, timeout=30_000):
        window.start_training()
        qtbot.waitUntil(lambda: bool(failed), timeout=20_000)
    assert "no memory for this frame" in failed[0][1]
    assert "no memory for this frame" in window.last_error


def test_a_kernel_mode_change_while_paused_is_drawn(qtbot, window) -> None:
    """A paused training sends no frames; view 4 still follows its mode box."""
    from smoe_gui.ui.control.geometry import KERNEL_MODES

    window.panel.set_params(FAST.replace(time_budget=30.0), emit=False)
    window.start_training()
    qtbot.waitUntil(lambda: window.frames_shown >= 1, timeout=30_000)
    window.toggle_pause()
    assert window.session.is_paused()
    window.stages.kernel_mode_box.setCurrentIndex(KERNEL_MODES.index("territories"))
    qtbot.waitUntil(lambda: window.stages.geometry_shown is not None
                    and window.stages.geometry_shown.territories is not None, timeout=20_000)
    assert window.session.is_paused()
    with qtbot.waitSignal(window.training_finished, timeout=30_000):
        window.stop_training()


def test_live_previews_follow_the_view_size(window) -> None:
    from smoe_gui.ui.window_training import PREVIEW_MIN_PIXELS, PREVIEW_PIXELS

    view = window.stages.views["reconstruction"]
    view.resize(120, 80)
    assert window.preview_pixels() == PREVIEW_MIN_PIXELS
    view.resize(300, 200)
    dpr = view.devicePixelRatioF()
    assert window.preview_pixels() == min(
        PREVIEW_PIXELS, max(PREVIEW_MIN_PIXELS, int(60_000 * dpr * dpr))
    )
    view.resize(3000, 2000)
    assert window.preview_pixels() == PREVIEW_PIXELS


@pytest.mark.parametrize("answer", [False, True])
def test_parameter_change_during_training_asks(qtbot, window, answer) -> None:
    window.messenger.answer = answer
    window.panel.set_params(FAST.replace(time_budget=30.0), emit=False)
    window.start_training()
    qtbot.waitUntil(lambda: _steps(window) > 2, timeout=30_000)
    old = window.panel.params()
    window.panel.widget("delta_mu").setValue(5.0)
    qtbot.waitUntil(
        lambda: window.messenger.levels() == ["ask"], timeout=5_000
    )  # asked once the editor is done
    if not answer:
        assert window.panel.params() == old  # put back; the run goes on
        assert window.panel.widget("delta_mu").value() == pytest.approx(old.delta_mu)
        assert window.is_training()
        with qtbot.waitSignal(window.training_finished, timeout=10_000):
            window.stop_training()
    else:
        # the run stops, then a new run starts with the new parameters
        qtbot.waitUntil(
            lambda: window.is_training() and window.session.train_params[0].delta_mu == 5.0,
            timeout=30_000,
        )
        with qtbot.waitSignal(window.training_finished, timeout=10_000):
            window.stop_training()
        assert window.panel.params().delta_mu == 5.0


def test_compare_overlays_edge_and_grid(qtbot, window) -> None:
    window.panel.set_params(FAST.replace(time_budget=0.8), emit=False)
    with qtbot.waitSignal(window.training_finished, timeout=60_000):
        qtbot.mouseClick(window.compare_button, Qt.MouseButton.LeftButton)
    assert _steps(window, "edge") > 0 and _steps(window, "grid") > 0
    assert (
        window.plots.psnr_curves["edge"].isVisible()
        and window.plots.psnr_curves["grid"].isVisible()
    )
    assert not window.plots.psnr_curves["train"].isVisible()
    edge, grid = window.final_model("edge"), window.final_model("grid")
    assert edge is not None and grid is not None
    assert "edge" in window.train_label.text() and "grid" in window.train_label.text()


def test_closing_during_training_stops_cleanly(qtbot, image_path, settings) -> None:
    # Destroying a running QThread is a Qt fatal error ("QThread: Destroyed while
    # thread is still running" + abort): reaching the end of this test means it
    # did not happen.
    win = create_main_window(image_path, settings=settings)
    win.messenger = RecordingMessenger()
    win.show()
    wait_stages(qtbot, win)
    win.panel.set_params(FAST.replace(time_budget=60.0), emit=False)
    win.start_training()
    qtbot.waitUntil(lambda: _steps(win) > 2, timeout=30_000)
    win.toggle_pause()  # closing while paused must not hang either
    t0 = time.perf_counter()
    win.close()
    assert time.perf_counter() - t0 < 10
    assert running_threads() == []
    assert not win.is_training()


# --------------------------------------------------------------------------- inspect
def test_hover_shows_kernel_and_click_highlights_weight_map(qtbot, window) -> None:
    model = window.current_model()
    k = 0
    x, y = model.mu[k]
    found = window.inspect_at("kernels", x + 0.2, y - 0.2)
    assert found == k
    text = window.inspect_label.text()
    assert "μ = (" in text and "α =" in text and "m =" in text and "axes" in text
    assert window.stages.views["kernels"].hover_text.isVisible()
    # through the mouse: move over the kernel in the view
    view = window.stages.views["kernels"]
    scene_pos = view.getViewBox().mapViewToScene(QPointF(float(x), float(y)))
    window.inspect_label.setText("")
    view.scene().sigMouseMoved.emit(scene_pos)
    assert "μ = (" in window.inspect_label.text()
    with qtbot.waitSignal(window.gate_map_shown, timeout=30_000) as blocker:
        window.select_kernel_at("kernels", float(x), float(y))
    assert blocker.args == [k]
    wmap = window.stages.highlight
    assert wmap is not None and wmap.shape == window.image.shape
    assert 0.0 <= wmap.min() and wmap.max() <= 1.0 + 1e-6
    iy, ix = int(round(y)), int(round(x))
    assert wmap[np.clip(iy, 0, wmap.shape[0] - 1), np.clip(ix, 0, wmap.shape[1] - 1)] > 0.2
    assert window.stages.views["kernels"].mask.isVisible()
    # a click far from every kernel clears the highlight
    window.stages.views["kernels"].getViewBox().setRange(xRange=(0, 20), yRange=(0, 15), padding=0)
    far = model.mu[:, 0].max() + 500.0
    assert window.select_kernel_at("kernels", far, far) is None
    assert window.stages.highlight is None and not window.stages.views["kernels"].mask.isVisible()


# --------------------------------------------------------------------------- files
def test_save_and_load_model_round_trip(qtbot, window, tmp_path) -> None:
    path = tmp_path / "model.npz"
    window.files.ask_save_path = lambda *a: str(path)
    window.files.save_model_dialog()
    saved = load_model(path)
    assert saved.n_kernels == window.current_model().n_kernels
    # change the view, then load the file back: its kernels are shown again
    with qtbot.waitSignal(window.stages_shown, timeout=30_000):
        window.panel.widget("max_pts").setValue(8)
    assert window.current_model().n_kernels != saved.n_kernels
    window.files.ask_open_path = lambda *a: str(path)
    with qtbot.waitSignal(window.snapshot_shown, timeout=30_000):
        window.files.load_model_dialog()
    wait_stages(qtbot, window)  # the stored parameters were applied
    qtbot.waitUntil(
        lambda: (
            window.current_model() is not None
            and window.current_model().n_kernels == saved.n_kernels
        ),
        timeout=10_000,
    )
    np.testing.assert_array_equal(window.current_model().mu, saved.mu)
    assert window.panel.params() == FAST
    assert window.messenger.messages == []


def test_model_of_another_size_is_refused(qtbot, window, tmp_path) -> None:
    from smoe_gui.core import initialize

    other = initialize(make_image(64, 64), FAST).model
    path = tmp_path / "other.npz"
    save_model(other, path)
    shown = window.current_model()
    assert not window.files.load_model_file(path)
    level, _title, text = window.messenger.messages[-1]
    assert level == "error" and "64×64" in text and "128×96" in text
    assert window.current_model() is shown


def test_bad_model_file_says_so(window, tmp_path) -> None:
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip file")
    assert not window.files.load_model_file(path)
    assert window.messenger.messages[-1][0] == "error"
    assert "broken.npz" in window.messenger.messages[-1][2]


def test_save_and_load_params_round_trip(qtbot, window, tmp_path) -> None:
    path = tmp_path / "p.json"
    wanted = FAST.replace(lam=0.7, delta_mu=4.5)
    window.panel.set_params(wanted, emit=False)
    assert window.files.save_params_file(path)
    assert json.loads(path.read_text())["lam"] == 0.7
    window.panel.set_params(Params(), emit=False)
    with qtbot.waitSignal(window.stages_shown, timeout=30_000):
        assert window.files.load_params_file(path)
    assert window.panel.params() == wanted
    assert window.panel.widget("lam").value() == pytest.approx(0.7)
    bad = tmp_path / "bad.json"
    bad.write_text('{"lam": 7}')
    assert not window.files.load_params_file(bad)
    assert "lam" in window.messenger.messages[-1][2]
    assert window.panel.params() == wanted


def test_exports(qtbot, window, tmp_path) -> None:
    from PIL import Image

    written = window.files.export_all_stages(tmp_path)
    assert [p.name for p in written] == [
        f"stage-{n}.png" for n in ("edges", "segments", "reduced", "kernels", "reconstruction")
    ]
    for p in written:
        with Image.open(p) as im:
            assert im.size[0] > 50 and im.size[1] > 50
    recon = tmp_path / "recon.png"
    assert window.files.export_reconstruction(recon)
    with Image.open(recon) as im:
        assert im.size == (128, 96)
        np.testing.assert_allclose(
            np.asarray(im) / 255.0, window.stages.reconstruction(), atol=1 / 255 + 1e-6
        )
    window.panel.set_params(FAST.replace(time_budget=0.5), emit=False)
    with qtbot.waitSignal(window.training_finished, timeout=30_000):
        window.start_training()
    assert window.files.export_psnr_png(tmp_path / "psnr.png")
    assert window.files.export_psnr_csv(tmp_path / "psnr.csv")
    rows = list(csv.DictReader((tmp_path / "psnr.csv").open()))
    assert len(rows) == _steps(window) and rows[0]["run"] == "train"
    assert {"step", "elapsed_s", "phase", "psnr_db", "n_kernels"} <= set(rows[0])


def test_settings_keep_params_recent_files_and_splitters(
    qtbot, window, image_path, settings
) -> None:
    window.panel.set_params(FAST.replace(lam=0.33), emit=False)
    window.resize(790, 700)  # fits the offscreen platform's 800x800 screen
    QApplication.processEvents()
    window.main_splitter.setSizes([470, 320])
    sizes = window.main_splitter.sizes()
    window.close()
    again = create_main_window(image_path, settings=settings)
    again.messenger = RecordingMessenger()
    qtbot.addWidget(again)
    try:
        assert again.panel.params().lam == pytest.approx(0.33)
        assert again.files.recent_files()[0] == str(image_path.resolve())
        again.show()
        qtbot.waitUntil(lambda: again.main_splitter.sizes()[0] > 0, timeout=5_000)
        assert again.main_splitter.sizes()[0] == pytest.approx(sizes[0], abs=8)
        assert again.size() == window.size()
        recent = [a.text() for a in again.recent_menu.actions()]
        assert str(image_path.resolve()) in recent
        wait_stages(qtbot, again)
    finally:
        again.close()


def test_samples_menu_lists_bundled_images(window) -> None:
    names = [a.text() for a in window.samples_menu.actions()]
    assert "parrots" in names and "flowers" in names


# --------------------------------------------------------------------------- bad input
def test_unreadable_file_keeps_current_image(window, tmp_path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    image, result = window.image, window.session.stage_result
    window.files.ask_open_path = lambda *a: str(bad)
    window.files.open_image_dialog()
    assert window.messenger.levels() == ["error"]
    assert "notes.png" in window.messenger.messages[0][2]
    assert window.image is image and window.session.stage_result is result
    assert not window.open_image(tmp_path / "missing.png")
    assert "no such file" in window.messenger.messages[-1][2]


def _drop(window, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)


def test_drop_several_files_opens_first_image_and_says_what_was_ignored(
    qtbot, window, tmp_path
) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    second = tmp_path / "second.png"
    write_png(second, make_image(64, 80))
    third = tmp_path / "third.png"
    write_png(third, make_image(48, 48))
    _drop(window, [bad, second, third])
    qtbot.waitUntil(lambda: window.image_path == second, timeout=5_000)
    wait_stages(qtbot, window)
    assert window.image.shape == (64, 80)
    level, _title, text = window.messenger.messages[-1]
    assert level == "info" and "second.png" in text and "third.png" in text and "bad.png" in text


def test_drop_folder_opens_its_first_image(qtbot, window, tmp_path) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    write_png(folder / "b.png", make_image(40, 40))
    write_png(folder / "a.png", make_image(32, 48))
    _drop(window, [folder])
    qtbot.waitUntil(lambda: window.image_path == folder / "a.png", timeout=5_000)
    assert window.image.shape == (32, 48)
    assert "b.png" in window.messenger.texts()
    wait_stages(qtbot, window)


def test_drop_nothing_usable_keeps_everything(qtbot, window, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    text = tmp_path / "readme.txt"
    text.write_text("hello")
    image = window.image
    _drop(window, [empty, text])
    qtbot.waitUntil(lambda: bool(window.messenger.messages), timeout=5_000)
    assert window.messenger.levels() == ["error"]
    assert "readme.txt" in window.messenger.messages[0][2]
    assert window.image is image


def test_drop_json_loads_parameters(qtbot, window, tmp_path) -> None:
    path = tmp_path / "p.json"
    path.write_text(FAST.replace(lam=0.55).to_json())
    _drop(window, [path])
    qtbot.waitUntil(lambda: window.panel.params().lam == pytest.approx(0.55), timeout=5_000)
    wait_stages(qtbot, window)


# --------------------------------------------------------------------------- entry points
def test_main_self_test_flag_runs_selftest(monkeypatch) -> None:
    from smoe_gui.ui import app

    fake = types.ModuleType("smoe_gui.ui.selftest")
    fake.run = lambda: 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "smoe_gui.ui.selftest", fake)
    import smoe_gui.ui as ui_pkg

    monkeypatch.setattr(ui_pkg, "selftest", fake, raising=False)
    assert app.main(["--self-test"]) == 7


def test_main_refuses_a_missing_image(capsys) -> None:
    from smoe_gui.ui import app

    assert app.main(["/no/such/image.png"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_default_window_opens_bundled_sample(qtbot, settings, monkeypatch) -> None:
    import smoe_gui.ui.main_window as mw

    opened: list[Path] = []
    monkeypatch.setattr(
        mw.MainWindow, "set_image", lambda self, image, path=None, notes=(): opened.append(path)
    )
    win = create_main_window(settings=settings)
    qtbot.addWidget(win)
    try:
        assert opened and opened[0].name == "parrots.png"
    finally:
        win.close()


def test_channels_choice_shows_a_colour_reconstruction(qtbot, window) -> None:
    """The panel's channels combo: an RGB model (of the loaded image) reaches the views."""
    combo = window.panel.widget("channels")
    with qtbot.waitSignal(window.stages_shown, timeout=30_000):
        combo.setCurrentIndex(combo.findData("rgb"))
    assert window.panel.params().channels == "rgb"
    recon = np.asarray(window.stages.views["reconstruction"].base.image)
    assert recon.ndim == 3 and recon.shape[2] == 3
    with qtbot.waitSignal(window.stages_shown, timeout=30_000):
        combo.setCurrentIndex(combo.findData("gray"))
    assert np.asarray(window.stages.views["reconstruction"].base.image).ndim == 2


# --------------------------------------------------------------------------- keys
def _focus(qtbot, window, widget) -> None:
    window.activateWindow()
    widget.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is widget, timeout=5_000)


def test_training_keys_work_from_a_field_without_stealing_typing(qtbot, window) -> None:
    window.panel.set_params(FAST.replace(time_budget=60.0), emit=False)
    window.start_training()
    qtbot.waitUntil(lambda: _steps(window) > 2, timeout=30_000)
    spin = window.panel.widget("max_pts")
    _focus(qtbot, window, spin)
    qtbot.keyClick(spin, Qt.Key.Key_Space)  # a spin box with the focus, nothing typed: the shortcut
    assert window.is_paused() and window.pause_button.text() == "Resume"
    qtbot.keyClick(spin, Qt.Key.Key_Space)
    assert not window.is_paused()
    # typing: the keys are the field's; Esc puts back the value the app holds
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "3")
    assert spin.text() == "3"
    qtbot.keyClick(spin, Qt.Key.Key_Escape)
    assert spin.text() == str(FAST.max_pts) and window.is_training()
    # the same key again, nothing typed: stop
    with qtbot.waitSignal(window.training_finished, timeout=15_000):
        qtbot.keyClick(spin, Qt.Key.Key_Escape)
    # a focused push button does not swallow Space either
    window.start_training()
    qtbot.waitUntil(lambda: _steps(window) > 2, timeout=30_000)
    _focus(qtbot, window, window.panel.reset_button)
    qtbot.keyClick(window.panel.reset_button, Qt.Key.Key_Space)
    assert window.is_paused() and window.messenger.levels() == []  # paused, not reset
    with qtbot.waitSignal(window.training_finished, timeout=15_000):
        window.stop_training()


def test_declined_restart_puts_the_typed_value_back(qtbot, window) -> None:
    window.messenger.answer = False
    window.panel.set_params(FAST.replace(time_budget=60.0), emit=False)
    window.start_training()
    qtbot.waitUntil(lambda: _steps(window) > 2, timeout=30_000)
    spin = window.panel.widget("max_pts")
    _focus(qtbot, window, spin)
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "30")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.messenger.levels() == ["ask"], timeout=5_000)
    qtbot.wait(50)
    assert window.panel.params().max_pts == FAST.max_pts
    assert spin.value() == FAST.max_pts and spin.text() == str(FAST.max_pts)  # never blank
    assert window.session.params.max_pts == FAST.max_pts and window.is_training()
    with qtbot.waitSignal(window.training_finished, timeout=15_000):
        window.stop_training()


def test_pausing_does_not_spend_the_time_budget(qtbot, window) -> None:
    window.panel.set_params(
        FAST.replace(time_budget=1.5, tile_steps=100_000 // 1000, patience=10_000, tol_db=0.0),
        emit=False,
    )
    window.start_training()
    qtbot.waitUntil(lambda: _steps(window) > 2, timeout=30_000)
    window.toggle_pause()
    qtbot.wait(2_500)  # longer than the whole budget
    paused_at = _steps(window)
    window.toggle_pause()
    with qtbot.waitSignal(window.training_finished, timeout=30_000):
        pass
    assert _steps(window) > paused_at + 3  # it went on training after the pause
    elapsed = window.plots.data["train"].arrays()["elapsed_s"]
    assert elapsed[-1] < 2.4  # training time: the pause is not in it


# --------------------------------------------------------------------------- large images
def test_large_image_is_offered_downscaled(qtbot, window, tmp_path) -> None:
    from smoe_gui.core.io.image import MAX_SIDE

    big = tmp_path / "wide.png"
    yy, xx = np.mgrid[0:40, 0 : MAX_SIDE + 200].astype(np.float32)
    write_png(big, 0.3 + 0.4 * (np.sin(xx / 50.0) > 0) + 0.1 * yy / 40)
    before = window.image
    window.messenger.answer = False
    assert not window.open_image(big)
    assert window.messenger.levels() == ["ask"] and "--max-size" in window.messenger.texts()
    assert window.image is before
    window.messenger.answer = True
    assert window.open_image(big)
    assert window.image.shape[1] == MAX_SIDE and window.image.shape[0] == round(
        40 * MAX_SIDE / (MAX_SIDE + 200)
    )
    wait_stages(qtbot, window)
    assert "downscaled from" in window.status_line.text()  # what loading did is said


def test_stage_exports_are_at_the_image_resolution_with_overlays_without_hover(
    qtbot, window, tmp_path
) -> None:
    from PIL import Image

    h, w = window.image.shape
    window.stages.views["kernels"].getViewBox().setRange(
        xRange=(0, 20), yRange=(0, 15), padding=0
    )  # zoomed in
    zoomed = window.stages.views["kernels"].getViewBox().viewRange()
    plain = window.files.stage_image("kernels", 1)
    assert plain.shape == (h, w, 3)
    assert np.any(plain.astype(int).std(axis=2) > 20)  # the coloured kernel overlay is in it
    np.testing.assert_allclose(
        window.stages.views["kernels"].getViewBox().viewRange(), zoomed, atol=1e-9
    )  # zoom kept
    model = window.current_model()
    x, y = model.mu[0]
    assert window.inspect_at("kernels", float(x), float(y)) == 0  # hover text shown on screen
    assert window.stages.views["kernels"].hover_text.isVisible()
    np.testing.assert_array_equal(window.files.stage_image("kernels", 1), plain)  # never exported
    assert window.stages.views["kernels"].hover_text.isVisible()
    window.files.set_export_scale(2)
    path = tmp_path / "k2.png"
    assert window.files.export_stage("kernels", path)
    with Image.open(path) as im:
        assert im.size == (2 * w, 2 * h)
    with pytest.raises(ValueError):
        window.files.set_export_scale(3)


# --------------------------------------------------------------------------- help and lecture
def test_guide_explains_views_sliders_equations_and_shortcuts(qtbot, window) -> None:
    from smoe_gui.core.params import PARAM_SPECS

    window.actions_by_id["guide"].trigger()
    guide = window.findChild(QWidget, "guide")
    assert guide is not None and guide.isVisible()
    text = guide.browser.toPlainText()
    for s in PARAM_SPECS:
        assert s.label in text and s.effect in text, s.name
    for needle in (
        "Canny edges",
        "Reduced segments",
        "Reconstruction",
        "softmax",
        "Eq. 12",
        "PSNR",
        "F1",
        "Space",
        "Esc",
        "F5",
        "Lecture mode",
    ):
        assert needle in text, needle
    assert window.actions_by_id["guide"].shortcut().toString() == "F1"
    guide.close()


def test_lecture_mode_reveals_the_stages_one_at_a_time(qtbot, window) -> None:
    from smoe_gui.ui.lecture import LECTURE_STEPS

    def shown() -> list[str]:
        return window.lecture.revealed()

    window.actions_by_id["lecture"].trigger()
    assert shown() == ["edges"] and not window.training_panel.isVisible()
    # the presentation layout: the current stage alone over the stage area, the panel folded
    assert [n for n, v in window.stages.views.items() if not v.isHidden()] == ["edges"]
    assert window.panel_strip.collapsed
    assert window.lecture_caption.isVisible() and "Canny" in window.lecture_caption.text()
    window.activateWindow()
    window.stages.views["edges"].setFocus()
    for n in range(2, 6):
        qtbot.keyClick(window.stages.views["edges"], Qt.Key.Key_PageDown)
        assert len(shown()) == n
    qtbot.keyClick(window.stages.views["edges"], Qt.Key.Key_N)
    assert window.training_panel.isVisible() and window.lecture.current() is LECTURE_STEPS[-1]
    window.lecture.next()  # past the end: stays
    assert window.lecture.current() is LECTURE_STEPS[-1]
    qtbot.keyClick(window.stages.views["edges"], Qt.Key.Key_PageUp)
    assert not window.training_panel.isVisible() and len(shown()) == 5
    window.actions_by_id["lecture"].trigger()  # leave: everything again
    assert (
        len(shown()) == 5
        and window.training_panel.isVisible()
        and not window.lecture_caption.isVisible()
    )
    assert all(not v.isHidden() for v in window.stages.views.values())
    assert not window.panel_strip.collapsed  # as the user had it
    assert not window.actions_by_id["lecture-next"].isEnabled()


# --------------------------------------------------------------------------- themes and screenshots
def test_light_and_dark_themes_recolour_the_views(qtbot, window) -> None:
    from smoe_gui.ui.theme import current_theme

    try:
        window.actions_by_id["theme-dark"].trigger()
        QApplication.processEvents()
        assert current_theme().dark and window.settings.value("theme") == "dark"
        assert window.plots.psnr_plot.backgroundBrush().color().lightness() < 80
        window.actions_by_id["theme-light"].trigger()
        QApplication.processEvents()
        assert not current_theme().dark
        assert window.plots.psnr_plot.backgroundBrush().color().lightness() > 200
    finally:
        window.set_color_scheme("system")
    assert window.settings.value("theme") == "system"


def test_screenshot_option_writes_the_window(qtbot, image_path, tmp_path, monkeypatch) -> None:
    from PIL import Image

    from smoe_gui.ui.app import main

    settings = tmp_path / "shot.ini"
    s = QSettings(str(settings), QSettings.Format.IniFormat)
    s.setValue("params", FAST.to_json())
    s.sync()
    monkeypatch.setenv("SMOE_GUI_SETTINGS", str(settings))
    out = tmp_path / "shot.png"
    assert main([str(image_path), "--screenshot", str(out), "--lecture", "2"]) == 0
    with Image.open(out) as im:
        assert im.size[0] > 300 and im.size[1] > 200
    assert running_threads() == []


def test_screenshot_without_train_runs_no_warm_up(qtbot, image_path, tmp_path, monkeypatch) -> None:
    """The warm-up fit cannot be cancelled: a screenshot that does not train must not start
    it, or closing the window at once left it running (``QThread: Destroyed while thread
    'smoe-inspect' is still running``, SIGABRT) while numba compiled on a fresh checkout."""
    from smoe_gui.ui import main_window
    from smoe_gui.ui.app import main

    calls: list[int] = []
    monkeypatch.setattr(main_window, "training_warmed", lambda: False)
    monkeypatch.setattr(main_window, "warm_up_training", lambda: calls.append(1) or 0.0)
    settings = tmp_path / "shot.ini"
    s = QSettings(str(settings), QSettings.Format.IniFormat)
    s.setValue("params", FAST.to_json())
    s.sync()
    monkeypatch.setenv("SMOE_GUI_SETTINGS", str(settings))
    assert main([str(image_path), "--screenshot", str(tmp_path / "shot.png")]) == 0
    assert calls == []
    assert running_threads() == []


def test_file_dialogs_start_in_the_last_folder_else_pictures_or_home(
    window, tmp_path, monkeypatch
) -> None:
    from PySide6.QtWidgets import QFileDialog

    from smoe_gui.ui.file_ops import default_folder

    window.settings.remove("last_folder")
    assert window.files.dialog_folder() == default_folder()
    assert Path(default_folder()).is_dir()
    folder = tmp_path / "exports"
    folder.mkdir()
    seen: list[str] = []

    def fake_save(parent, title, start, file_filter):
        seen.append(start)
        return str(folder / "model.npz"), file_filter

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_save))
    window.files.save_model_dialog()
    assert (folder / "model.npz").is_file()
    window.files.save_model_dialog()  # the next dialog starts where the last one ended
    assert Path(seen[-1]).parent == folder


def test_training_warm_up_runs_once_off_the_gui_thread(qtbot, window) -> None:
    from smoe_gui.ui.control import jobs

    # the module's compiled_core fixture does not train: the first window warms up
    qtbot.waitUntil(jobs.training_warmed, timeout=120_000)
    assert jobs.warm_up_training() == 0.0  # once per process
    assert window.last_error is None
