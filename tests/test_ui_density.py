"""View 4 legible at any density: marker sizes follow the scale and the
kernel density, dense kernels are thinned, the image stays visible
(ui/control/density.py, ui/views/kernel_view.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from smoe_gui.ui.control.density import density_level, marker_coverage, thin_index

pytest.importorskip("pytestqt")
from PySide6.QtCore import QRectF, QSettings  # noqa: E402

from smoe_gui.ui.control.geometry import KERNEL_CATEGORIES, KERNEL_MODES  # noqa: E402
from smoe_gui.ui.views.view_items import widget_rgb  # noqa: E402


def test_marker_size_follows_the_screen_area_per_kernel() -> None:
    # 1,373 kernels on a 195x130 px view (parrots at 1280x720): small markers
    small = density_level(1373, (512, 768), 768 / 195, 5.0)
    assert 1.5 <= small.marker_px < 3.0 and not small.outline
    # the same kernels at 1600x1000 (430 px wide): the mode's full size, outlined
    large = density_level(1373, (512, 768), 768 / 430, 5.0)
    assert 4.0 < large.marker_px <= 5.0 and large.outline
    assert marker_coverage(1373, small.marker_px, 195 * 130) < 0.5
    dense = density_level(29_257, (4096, 4096), 4096 / 250, 5.0)
    assert dense.marker_px == pytest.approx(1.5) and dense.boundary_alpha < 0.5
    with pytest.raises(ValueError, match="pixel size"):
        density_level(10, (10, 10), 0.0, 5.0)


def test_thinning_keeps_one_kernel_per_cell_edge_kernels_first() -> None:
    rng = np.random.default_rng(1)
    pair = rng.random((400, 2)) * 100
    background = rng.random((400, 2)) * 100
    index = {"pair": np.arange(400), "background": np.arange(400, 800)}
    keep = thin_index({"pair": pair, "background": background}, index, 10.0)
    drawn = np.concatenate([pair[keep["pair"]], background[keep["background"]]])
    cells = {tuple(c) for c in np.floor(drawn / 10.0).astype(int)}
    assert len(cells) == len(drawn) <= 100  # one per occupied cell
    assert len(keep["pair"]) > len(keep["background"])  # pairs win their cells
    again = thin_index({"pair": pair, "background": background}, index, 10.0)
    assert all(np.array_equal(keep[c], again[c]) for c in keep)  # the same kernels each time
    every = thin_index({"pair": pair}, {"pair": np.arange(400)}, 0.0)
    assert np.array_equal(every["pair"], np.arange(400))


# ------------------------------------------------------------------ the real views


def _image_rect(view) -> tuple[int, int, int, int]:
    """The image's rectangle in the view widget's pixels (x0, y0, x1, y1)."""
    vb = view.getViewBox()
    h, w = view.base.image.shape[:2]
    scene = vb.mapViewToScene(QRectF(-0.5, -0.5, float(w), float(h))).boundingRect()
    r = view.mapFromScene(scene).boundingRect()
    return max(r.left(), 0), max(r.top(), 0), r.right(), r.bottom()


def _grab_without(view, items) -> np.ndarray:
    shown = [i.isVisible() for i in items]
    for i in items:
        i.setVisible(False)
    try:
        return widget_rgb(view)
    finally:
        for i, s in zip(items, shown, strict=True):
            i.setVisible(s)


def test_markers_cover_at_most_half_of_view_4_at_1280x720(qtbot, sample_path, tmp_path) -> None:
    from smoe_gui.ui import create_main_window
    from smoe_gui.ui.messages import RecordingMessenger

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    win = create_main_window(sample_path, settings=settings, warm_up=False)
    win.messenger = RecordingMessenger()
    qtbot.addWidget(win)
    win.show()
    try:
        qtbot.waitUntil(
            lambda: win.latest_request > 0
            and win.stages.views["edges"].shown_id == win.latest_request,
            timeout=60_000,
        )
        win.resize(1280, 720)
        qtbot.waitUntil(lambda: win.width() == 1280, timeout=5_000)
        view = win.stages.views["kernels"]
        for mode in KERNEL_MODES:
            win.set_kernel_mode(mode)
            qtbot.waitUntil(lambda: not win.session.render_pending(), timeout=60_000)
            win.fit_views()
            qtbot.wait(100)
            geo = win.stages.geometry_shown
            assert geo is not None and 1200 <= geo.n_kernels <= 1600
            x0, y0, x1, y1 = _image_rect(view)
            assert x1 - x0 < 320  # the 1280x720 grid's small view 4
            with_markers = widget_rgb(view)[y0:y1, x0:x1]
            markers = [view.points[c] for c in KERNEL_CATEGORIES]
            without = _grab_without(view, markers)[y0:y1, x0:x1]
            covered = float(np.mean(np.any(with_markers != without, axis=2)))
            assert 0.0 < covered <= 0.5, (mode, covered)
    finally:
        win.close()


def _dense_model():
    from smoe_gui.core.methods.edge.placement import grid_kernels
    from smoe_gui.core.model import SmoeModel

    rng = np.random.default_rng(0)
    k, n = 29_257, 4096
    mu, a, log_alpha = grid_kernels(k, n, n)
    mu = np.clip(mu + rng.normal(0.0, 3.0, mu.shape), 0, n - 1)
    return SmoeModel(mu, a, rng.random(k), log_alpha, n, n)


def test_29257_kernels_on_4096x4096_draw_in_every_mode(qtbot) -> None:
    from smoe_gui.ui.control.geometry import kernel_geometry
    from smoe_gui.ui.theme import current_theme
    from smoe_gui.ui.views.stage_views import StageViews

    model = _dense_model()
    image = np.full((4096, 4096), 0.5, dtype=np.float32)  # uniform: only the overlay varies
    views = StageViews(current_theme())
    qtbot.addWidget(views)
    views.resize(900, 600)  # view 4 about 250 px: ~2 screen px² per kernel
    views.show()
    views.set_original(image)
    view = views.views["kernels"]
    for mode in KERNEL_MODES:
        geo = kernel_geometry(
            model,
            None,  # a trained model: every kernel "trained"
            shares=mode == "ellipses",
            territory_size=(256, 256) if mode == "territories" else None,
        )
        views.set_kernel_mode(mode)
        t0 = time.perf_counter()
        views.show_kernels(geo)
        rgb = widget_rgb(view)  # paints
        draw_s = time.perf_counter() - t0
        x0, y0, x1, y1 = _image_rect(view)
        inside = rgb[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2].reshape(-1, 3)
        colours, counts = np.unique(inside, axis=0, return_counts=True)
        assert len(colours) > 1, mode  # something is drawn
        image_colour = widget_rgb_of_image(views, view, x0, y0, x1, y1)
        near = np.abs(inside.astype(int) - image_colour.astype(int)).max(axis=1) <= 40
        assert float(np.mean(near)) > 0.3, mode  # and the image still shows through
        assert float(np.mean(near)) < 1.0, mode
        assert draw_s < 1.0, (mode, draw_s)  # the GUI thread's part (loaded machine)
        assert sum(len(view.points[c].drawn) for c in KERNEL_CATEGORIES) < 15_000


def widget_rgb_of_image(views, view, x0, y0, x1, y1) -> np.ndarray:
    """The colour of the (uniform) image with no overlay drawn."""
    items = [*view.points.values(), *view.lines.values(), views.territory_bounds]
    rgb = _grab_without(view, items)[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2].reshape(-1, 3)
    colours, counts = np.unique(rgb, axis=0, return_counts=True)
    return colours[np.argmax(counts)]



def test_a_layout_pass_redraws_the_overlay_once(qtbot, monkeypatch) -> None:
    """Range changes in one pass (a resize, a fit, a pan) give one overlay redraw,
    one turn of the event loop later, at the final zoom; axes never re-render
    their labels for an SI prefix."""
    from PySide6.QtWidgets import QApplication

    from smoe_gui.ui.theme import current_theme
    from smoe_gui.ui.views.stage_views import StageViews

    views = StageViews(current_theme())
    qtbot.addWidget(views)
    views.resize(900, 600)
    views.show()
    views.set_original(np.full((64, 80), 0.5, dtype=np.float32))
    QApplication.processEvents()
    calls: list[float] = []
    real = views._draw_ellipses
    monkeypatch.setattr(views, "_draw_ellipses", lambda: (calls.append(0.0), real())[1])
    views._ellipses_later.timeout.disconnect()
    views._ellipses_later.timeout.connect(views._draw_ellipses)
    box = views.views["kernels"].getViewBox()
    for width in (40.0, 60.0, 80.0):
        box.setRange(xRange=(0.0, width), yRange=(0.0, 64.0), padding=0.0)
    assert calls == []  # nothing drawn inside the pass
    qtbot.waitUntil(lambda: len(calls) >= 1, timeout=2_000)
    QApplication.processEvents()
    assert len(calls) == 1
    for view in views.views.values():
        assert not any(view.getAxis(a).autoSIPrefix for a in ("left", "bottom"))
