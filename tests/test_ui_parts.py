"""Qt-free and small parts of the desktop application: slider scales, drawing
geometry, the Inspect helpers of smoe_gui.core.rendering.inspection, the panel alone."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

from smoe_gui.core.model import SmoeModel, dense_logits, ellipse_axes
from smoe_gui.core.params import PARAM_SPECS, Params, spec
from smoe_gui.core.rendering.inspection import gate_weight_map, kernel_info, nearest_kernel
from smoe_gui.ui.control.geometry import (
    ellipse_polylines,
    kernel_geometry,
    reduced_geometry,
    segment_strokes,
)
from smoe_gui.ui.control.jobs import preview_size


@pytest.fixture(autouse=True)
def no_thread_left_running():
    """Fail the test if a worker QThread outlives it."""
    yield
    from smoe_gui.ui.workers import running_threads

    deadline = time.perf_counter() + 5.0
    while running_threads() and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert running_threads() == []


def small_model() -> SmoeModel:
    mu = np.array([[10.0, 8.0], [30.0, 20.0], [50.0, 10.0]])
    A = np.stack([np.eye(2) / 4.0, np.array([[0.3, 0.1], [0.0, 0.2]]), np.eye(2) / 6.0])
    return SmoeModel(mu, A, np.array([0.2, 0.8, 0.5]), np.log([1.0, 0.5, 2.0]), 32, 64)


# --------------------------------------------------------------------------- slider scales
@pytest.mark.parametrize(
    "s", [s for s in PARAM_SPECS if s.kind not in (bool, str)], ids=lambda s: s.name
)
def test_slider_scale_round_trips_and_covers_the_range(s) -> None:
    from smoe_gui.ui.param_panel import SLIDER_STEPS, SliderScale

    scale = SliderScale(s)
    assert scale.to_value(0) == pytest.approx(s.low)
    assert scale.to_value(SLIDER_STEPS) == pytest.approx(s.high, rel=1e-2)
    pos = scale.to_position(float(s.default))
    assert abs(scale.to_value(pos) - float(s.default)) <= max(
        0.02 * abs(float(s.default)), (s.high - s.low) / SLIDER_STEPS + 1e-12
    )
    values = [scale.to_value(p) for p in range(0, SLIDER_STEPS + 1, 50)]
    assert values == sorted(values)  # monotonic


def test_log_slider_reaches_tiny_values_and_zero() -> None:
    from smoe_gui.ui.param_panel import SliderScale

    scale = SliderScale(spec("reg_weight"))  # low 0, default 1e-7, log scale
    assert scale.to_value(0) == 0.0
    assert 0 < scale.to_value(1) < 1e-9
    assert scale.to_position(1e-7) not in (0, 1000)


# --------------------------------------------------------------------------- geometry
def test_segment_strokes_follow_the_run_directions() -> None:
    segs = np.array(
        [[5.0, 5.0, 0.0, 3.0], [5.0, 5.0, 90.0, 5.0], [5.0, 5.0, 45.0, 3.0], [5.0, 5.0, -45.0, 3.0]]
    )
    strokes = segment_strokes(segs)
    np.testing.assert_allclose(strokes[0], [[4, 5], [6, 5]])
    np.testing.assert_allclose(strokes[90], [[5, 3], [5, 7]])
    np.testing.assert_allclose(strokes[45], [[4, 4], [6, 6]])  # y down: 45° is the step (1, 1)
    np.testing.assert_allclose(strokes[-45], [[4, 6], [6, 4]])


def test_reduced_geometry_splits_clusters_and_salient() -> None:
    red = np.array([[10.0, 10.0, 0.0], [20.0, 5.0, 90.0], [30.0, 30.0, 45.0]])
    geo = reduced_geometry(red, np.array([False, True, False]), half_length=2.0)
    assert geo.cluster_centres.shape == (2, 2) and geo.salient_centres.shape == (1, 2)
    np.testing.assert_allclose(geo.salient_strokes, [[20, 3], [20, 7]], atol=1e-12)


def test_ellipses_have_the_kernel_axes() -> None:
    model = small_model()
    poly = ellipse_polylines(model).reshape(3, -1, 2)[:, :-1]  # drop the NaN break
    axes = ellipse_axes(model)
    for k in range(3):
        r = np.linalg.norm(poly[k] - model.mu[k], axis=1)
        assert r.max() == pytest.approx(axes[k, 0], rel=1e-2)
        assert r.min() == pytest.approx(axes[k, 1], rel=2e-2)


def test_kernel_geometry_categories_and_pair_links() -> None:
    model = small_model()
    edge = kernel_geometry(model, "edge", n_pairs=1, n_background=1)
    assert edge.centres["pair"].shape == (2, 2) and edge.centres["background"].shape == (1, 2)
    np.testing.assert_allclose(edge.pair_links, model.mu[:2])
    grid = kernel_geometry(model, "grid")
    assert grid.centres["grid"].shape == (3, 2) and grid.pair_links.shape == (0, 2)
    trained = kernel_geometry(model, None)
    assert trained.centres["trained"].shape == (3, 2)


def test_preview_size_keeps_aspect_and_budget() -> None:
    assert preview_size(512, 768, None) == (512, 768)
    h, w = preview_size(512, 768, 100_000)
    assert h * w <= 100_500 and abs(w / h - 1.5) < 0.02


# --------------------------------------------------------------------------- core.inspection
def test_nearest_kernel_and_info() -> None:
    model = small_model()
    assert nearest_kernel(model, 29.0, 21.0) == 1
    assert nearest_kernel(model, 200.0, 200.0, max_distance=5.0) is None
    info = kernel_info(model, 2)
    assert (info.x, info.y) == (50.0, 10.0)
    assert info.alpha == pytest.approx(2.0) and info.expert == pytest.approx(0.5)
    assert info.major == pytest.approx(ellipse_axes(model)[2, 0])
    assert "α = 2" in info.text()
    with pytest.raises(ValueError, match="kernel 3 does not exist"):
        kernel_info(model, 3)


def test_gate_weight_map_matches_the_dense_softmax() -> None:
    import inspect

    assert list(inspect.signature(gate_weight_map).parameters) == ["model", "index"]
    model = small_model()
    ys, xs = np.mgrid[0:32, 0:64].astype(np.float64)
    logits = dense_logits(model, np.stack([xs.ravel(), ys.ravel()], axis=1))
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    for k in range(3):
        got = gate_weight_map(model, k)
        assert got.shape == (32, 64) and got.dtype == np.float32
        np.testing.assert_allclose(got, w[:, k].reshape(32, 64), atol=2e-6)


# --------------------------------------------------------------------------- the panel alone


@pytest.mark.parametrize("method", ["edge", "grid", "s-smoe", "as-smoe"])
def test_the_panel_disables_what_the_method_does_not_read(qtbot, method) -> None:
    from PySide6.QtWidgets import QLabel

    from smoe_gui.core.params import param_users
    from smoe_gui.ui.param_panel import ParamPanel

    panel = ParamPanel()
    qtbot.addWidget(panel)
    panel.set_method(method, emit=False)
    unread = 0
    for s in PARAM_SPECS:
        users = param_users(s.name)
        reads = users is None or method in users
        widgets = [panel.widget(s.name)]
        if s.name in panel._sliders:
            widgets.append(panel.slider(s.name))
        for widget in widgets:
            assert widget.isEnabled() == reads, (method, s.name)
            tip = widget.toolTip()
            assert tip.startswith("Not read by") != reads, (method, s.name, tip)
        if not reads:
            unread += 1
            names = {"as-smoe": "AS-SMoE", "s-smoe": "S-SMoE"}
            for user in users or ():
                assert names.get(user, user) in widgets[0].toolTip(), (method, s.name)
            labels = [w for w in panel.findChildren(QLabel) if w.text().startswith(s.label)]
            assert labels == [] or not any(w.isEnabled() for w in labels), (method, s.name)
    assert unread > 0  # every built-in method leaves some parameter to the others
    if method == "s-smoe":  # the report of issue 21: AS-SMoE's sliders under S-SMoE
        assert not panel.slider("as_steps").isEnabled()
        assert "only AS-SMoE uses it" in panel.slider("as_steps").toolTip()
        assert panel.slider("superpixel_threshold").isEnabled()
    panel.set_method("edge" if method != "edge" else "as-smoe", emit=False)
    assert panel.slider("as_steps").isEnabled() == (method == "edge")

def test_panel_builds_every_parameter_and_emits_changes(qtbot) -> None:
    from smoe_gui.ui.param_panel import ParamPanel

    panel = ParamPanel()
    qtbot.addWidget(panel)
    for s in PARAM_SPECS:
        assert panel.widget(s.name).objectName() == f"param-{s.name}"
    with qtbot.waitSignal(panel.params_changed) as blocker:
        panel.widget("max_pts").setValue(123)
    params, name, dragging = blocker.args
    assert params.max_pts == 123 and name == "max_pts" and dragging is False
    with qtbot.waitSignal(panel.params_changed) as blocker:
        panel.widget("background_kernels").setChecked(False)
    assert blocker.args[0].background_kernels is False
    slider = panel.slider("lr_m")
    with qtbot.waitSignal(panel.params_changed) as blocker:
        slider.setValue(slider.value() + 100)
    assert blocker.args[0].lr_m > Params().lr_m
    assert panel.widget("lr_m").value() == pytest.approx(blocker.args[0].lr_m)
    # choice parameters (channels, experts, expert_stop) are combo boxes of the table's values
    combo = panel.widget("channels")
    assert [combo.itemData(i) for i in range(combo.count())] == ["gray", "rgb"]
    with qtbot.waitSignal(panel.params_changed) as blocker:
        combo.setCurrentIndex(combo.findData("rgb"))
    assert blocker.args[0].channels == "rgb" and blocker.args[1] == "channels"
    panel.set_params(Params(experts="lstsq"), emit=False)
    assert panel.widget("experts").currentData() == "lstsq"
    panel.reset_to_defaults()
    assert panel.params() == Params()
    assert combo.currentData() == "gray"


# ------------------------------------------------------------------------ training load on the GUI
@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's"
)
def test_lower_thread_priority_lowers_only_the_calling_thread() -> None:
    from smoe_gui.ui.workers import lower_thread_priority

    seen: dict[str, int] = {}

    def worker() -> None:
        tid = threading.get_native_id()
        before = os.getpriority(os.PRIO_PROCESS, tid)
        seen["lowered"] = int(lower_thread_priority(3))
        seen["delta"] = os.getpriority(os.PRIO_PROCESS, tid) - before

    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["lowered"] == 1
    assert seen["delta"] == min(3, 19 - main_before)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's"
)
def test_a_job_runner_with_nice_runs_its_jobs_below_the_gui(qtbot) -> None:
    """The live frames' runner (nice > 0) runs every job at the lowered priority;
    a runner without nice, and the GUI thread, keep theirs."""
    from smoe_gui.ui.workers import LIVE_FRAME_NICE, TRAINING_NICE, JobRunner

    assert LIVE_FRAME_NICE > TRAINING_NICE  # frames never take a core from the training
    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def nice_now() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    low, plain = JobRunner("test-low", nice=4), JobRunner("test-plain")
    try:
        for runner in (low, plain):
            for job in (1, 2):  # the second job too: the priority stays lowered
                with qtbot.waitSignal(runner.worker.done, timeout=10_000):
                    runner.submit(job, nice_now)
                seen = runner.take(job)
                expected = min(19, main_before + 4) if runner is low else main_before
                assert seen == expected
        assert low.worker.priority_lowered and not plain.worker.priority_lowered
        assert nice_now() == main_before
    finally:
        low.shutdown()
        plain.shutdown()


def test_training_curves_are_drawn_in_batches_and_on_flush(qtbot) -> None:
    from smoe_gui.core.train.runs import FitHistory
    from smoe_gui.ui.control.jobs import ProgressBatch
    from smoe_gui.ui.theme import current_theme
    from smoe_gui.ui.views.plots import PLOT_REFRESH_MS, TrainingPlots

    plots = TrainingPlots(current_theme())
    qtbot.addWidget(plots.psnr_plot)
    qtbot.addWidget(plots.kernel_plot)

    def batch(first: int, n: int) -> ProgressBatch:
        history = FitHistory()
        for step in range(first, first + n):
            history.add_row(step, step * 0.01, "finetune", 20.0 + step * 0.1, 100)
        return ProgressBatch("train", history)

    def drawn() -> int:
        x, _ = plots.psnr_curves["train"].getData()
        return 0 if x is None else len(x)

    plots.append(batch(1, 5))
    plots.append(batch(6, 5))
    assert drawn() == 0  # not one repaint per batch
    qtbot.waitUntil(lambda: drawn() == 10, timeout=PLOT_REFRESH_MS + 2000)
    plots.append(batch(11, 3))
    plots.flush()
    assert drawn() == 13
    _, kernels = plots.kernel_curves["train"].getData()
    assert kernels[-1] == 100


def test_snapshot_of_a_colour_model() -> None:
    from smoe_gui.core.model import model_in_channels
    from smoe_gui.ui.control.jobs import compute_snapshot

    gray_model = small_model()
    colour = model_in_channels(gray_model, "rgb").replace(
        m=np.array([[0.2, 0.5, 0.9], [0.8, 0.1, 0.3], [0.5, 0.5, 0.5]])
    )
    image = np.full((32, 64), 0.4, np.float32)
    snap = compute_snapshot(image, colour)
    assert snap.reconstruction.shape == (32, 64, 3) and snap.residual.shape == (32, 64, 3)
    rgb = np.stack([image, image * 0.5, image * 1.5], axis=2)
    snap = compute_snapshot(rgb, colour, max_pixels=512)
    assert snap.reconstruction.ndim == 3 and np.isfinite(snap.psnr)
    assert compute_snapshot(rgb, gray_model).residual.shape == (32, 64)


def test_panel_labels_name_a_unit_once(qtbot) -> None:
    import re

    from PySide6.QtWidgets import QLabel

    from smoe_gui.ui.param_panel import ParamPanel

    panel = ParamPanel()
    qtbot.addWidget(panel)
    texts = [label.text() for label in panel.findChildren(QLabel)]
    assert any(t.endswith("(px)") for t in texts)  # units are shown where the label lacks them
    for text in texts:
        found = re.fullmatch(r"(.*) \(([^()]+)\)", text)
        if found:
            assert found.group(2) not in found.group(1).lower(), (
                text
            )  # not "initial kernels (kernels)"
