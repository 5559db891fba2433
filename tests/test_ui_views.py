"""The kernel view's modes, the inspection overlays, view 1's edges at any zoom,
native-resolution exports and the training curves (widgets alone, offscreen)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QApplication

from smoe_gui.core.model import SmoeModel
from smoe_gui.core.rendering.territories import gate_territories
from smoe_gui.ui.control.geometry import (
    SHARE_LEVELS,
    kernel_geometry,
    max_pool_mask,
    share_levels,
)
from smoe_gui.ui.control.jobs import compute_inspection, compute_snapshot


def pair_model(h: int = 60, w: int = 80) -> SmoeModel:
    """Three edge pairs and two background kernels (one huge, one tiny)."""
    mu = np.array([[20, 20], [20, 24], [40, 30], [44, 30], [60, 40], [60, 44],
                   [10, 50], [70, 10]], dtype=np.float64)
    k = len(mu)
    A = np.tile(np.eye(2) * 0.35, (k, 1, 1))
    A[6] = np.eye(2) * 0.002  # 1-σ axis ~350 px: far outside the image
    A[7] = np.eye(2) * 3.0  # a needle: < 1 px
    m = np.linspace(0.1, 0.9, k)
    return SmoeModel(mu, A, m, np.zeros(k), h, w)


@pytest.fixture()
def views(qtbot):
    from smoe_gui.ui.theme import current_theme
    from smoe_gui.ui.views.stage_views import StageViews

    v = StageViews(current_theme())
    qtbot.addWidget(v)
    v.resize(900, 600)
    v.show()
    image = np.tile(np.linspace(0, 1, 80, dtype=np.float32), (60, 1))
    v.set_original(image)
    QApplication.processEvents()
    return v


def test_share_levels_and_max_pool() -> None:
    k = 8
    classes = share_levels(np.array([0.0, 0.2 / k, 0.5 / k, 2.0 / k, 10.0 / k]), k)
    np.testing.assert_array_equal(classes, [0, 0, 1, 2, 3])
    assert len(SHARE_LEVELS) == 4
    mask = np.zeros((7, 10), dtype=np.uint8)
    mask[3, 0:10:2] = 1  # a dashed 1-px line: every set pixel must survive
    pooled = max_pool_mask(mask, 3)
    assert pooled.shape == (3, 4)
    np.testing.assert_array_equal(pooled[1], [1, 1, 1, 0])  # columns 0-2, 3-5, 6-8 hold one
    assert pooled.sum() == 3
    np.testing.assert_array_equal(max_pool_mask(mask, 1), mask)


def test_kernel_geometry_with_shares_and_territories() -> None:
    model = pair_model()
    geo = kernel_geometry(model, "edge", n_pairs=3, n_background=2, shares=True,
                          territory_size=(30, 40))
    np.testing.assert_array_equal(geo.partner[:6], [1, 0, 3, 2, 5, 4])
    assert (geo.partner[6:] == -1).all()
    assert geo.shares is not None and geo.shares.sum() == pytest.approx(1.0, abs=1e-5)
    assert geo.territories is not None
    np.testing.assert_array_equal(geo.territories.label, gate_territories(model, 30, 40).label)
    assert geo.territories.areas.sum() == pytest.approx(60 * 80)
    # the huge background kernel's axes are clipped to the image diagonal
    assert geo.axes["background"][:, :2].max() <= np.hypot(60, 80) + 1e-9
    assert geo.category_of(7) == "background" and geo.category_of(0) == "pair"


def test_modes_draw_what_they_say(views) -> None:
    from smoe_gui.ui.views.kernel_view import MIN_ELLIPSE_PX

    model = pair_model()
    image = views._original
    for mode in ("centres", "ellipses", "territories"):
        views.set_kernel_mode(mode)
        snap = compute_snapshot(image, model, "edge", 3, 2, kernel_mode=mode)
        views.show_snapshot(1, snap)
        QApplication.processEvents()
        kv = views.views["kernels"]
        ellipses = views.kernel_line_data("pair")
        if mode == "ellipses":
            assert len(ellipses) > 0 and any(kv.lines[f"pair@{lv}"].isVisible() for lv in range(4))
            # the needle is drawn at least MIN_ELLIPSE_PX screen pixels wide
            needle = views.kernel_line_data("background")
            pts = needle[np.isfinite(needle[:, 0])]
            near = pts[np.hypot(pts[:, 0] - 70, pts[:, 1] - 10) < 20]
            px = kv.getViewBox().viewPixelSize()[0]
            assert np.hypot(near[:, 0] - 70, near[:, 1] - 10).min() >= MIN_ELLIPSE_PX * px * 0.99
            assert "gate share" in views.legend_html()
        else:
            assert not kv.lines["pair@3"].isVisible()
        assert kv.lines["link"].isVisible() == (mode != "territories")
        assert views.territory_bounds.isVisible() == (mode == "territories")
        assert kv.points["pair"].isVisible()
    assert "gate territories" in views.legend_html()
    views.set_territory_fill(True)
    assert views.territory_fill_item.isVisible()
    assert "expert value" in views.legend_html()
    # background kernels hidden, edge pairs stay
    views.set_show_background(False)
    kv = views.views["kernels"]
    assert not kv.points["background"].isVisible() and kv.points["pair"].isVisible()
    views.set_show_background(True)
    assert kv.points["background"].isVisible()
    with pytest.raises(ValueError, match="unknown kernel view mode"):
        views.set_kernel_mode("blobs")


def test_ellipses_are_clipped_to_the_image(views) -> None:
    views.set_kernel_mode("ellipses")
    snap = compute_snapshot(views._original, pair_model(), "edge", 3, 2, kernel_mode="ellipses")
    views.show_snapshot(1, snap)
    QApplication.processEvents()
    item = views.views["kernels"].lines["background@3"]
    parent = item.parentItem()
    assert parent is views._clip
    assert parent.rect().width() == pytest.approx(80) and parent.rect().height() == pytest.approx(
        60
    )
    assert parent.flags() & parent.GraphicsItemFlag.ItemClipsChildrenToShape


def test_inspection_shows_heat_outline_and_clears(views) -> None:
    model = pair_model()
    views.show_snapshot(1, compute_snapshot(views._original, model, "edge", 3, 2))
    result = compute_inspection(model, 2)
    assert result.index == 2 and result.weight_map.shape == (60, 80)
    assert result.share == pytest.approx(float(result.weight_map.mean()), rel=1e-6)
    labels = gate_territories(model).label
    assert result.area == pytest.approx(float((labels == 2).sum()))
    assert result.outline.any() and (labels[result.outline.astype(bool)] == 2).all()
    views.show_inspection(result)
    assert views.views["kernels"].mask.isVisible() and views.outlines["kernels"].isVisible()
    assert len(views.views["kernels"].line_data("selected")) > 0
    views.views["kernels"].show_hover(30.0, 30.0, "kernel 2")
    assert views.views["kernels"].hover_text.isVisible()
    views.clear_inspection()
    assert views.inspected is None and not views.views["kernels"].mask.isVisible()
    assert not views.outlines["reconstruction"].isVisible()
    assert not views.views["kernels"].hover_text.isVisible()


def test_hover_label_follows_the_pointer_and_leaves_with_it(views) -> None:
    from PySide6.QtCore import QEvent

    view = views.views["kernels"]
    vb = view.getViewBox()
    (x0, x1), (y0, y1) = vb.viewRange()
    seen = []
    for x, y in ((10.0, 12.0), (50.0, 40.0), (x1 - 1.0, y1 - 1.0)):
        view.show_hover(x, y, "kernel 2: μ = (50.0, 40.0)\nΣ axes 3.00 × 3.00 px")
        pos = view.hover_text.pos()
        px, py = vb.viewPixelSize()
        rect = view.hover_text.textItem.boundingRect()
        w, h = rect.width() * px, rect.height() * abs(py)
        # next to the pointer, and inside the view
        assert abs(pos.x() - x) <= w + 40 * px and abs(pos.y() - y) <= h + 30 * abs(py)
        assert x0 - 1e-6 <= pos.x() and pos.x() + w <= x1 + 1e-6
        assert y0 - 1e-6 <= pos.y() and pos.y() + h <= y1 + 1e-6
        seen.append((pos.x(), pos.y()))
    assert len(set(seen)) == 3
    left = []
    views.pointer_left.connect(left.append)
    QApplication.sendEvent(view, QEvent(QEvent.Type.Leave))
    assert not view.hover_text.isVisible() and left == ["kernels"]


def test_edges_survive_any_zoom_and_export_natively(views) -> None:
    class Init:
        edges = np.zeros((60, 80), dtype=np.uint8)

    Init.edges[::7, :] = 1  # 1-px horizontal lines, every 7th row
    Init.edges[:, 5] = 1
    views._edges = Init.edges.copy()
    views._refresh_backgrounds()
    vb = views.views["edges"].getViewBox()
    vb.setRange(xRange=(-400, 480), yRange=(-300, 360), padding=0)  # far zoomed out
    QApplication.processEvents()
    factor = views.edge_pool_factor()
    assert factor > 1
    shown = views.edge_image
    assert shown is not None and shown.shape == max_pool_mask(Init.edges, factor).shape
    # every row holding an edge pixel is set in the pooled image
    rows = {r // factor for r in range(60) if Init.edges[r].any()}
    assert all(shown[r].any() for r in rows)
    # zoomed in: native resolution
    vb.setRange(xRange=(0, 20), yRange=(0, 15), padding=0)
    QApplication.processEvents()
    assert views.edge_pool_factor() == 1
    np.testing.assert_array_equal(views.edge_image, Init.edges)
    # the export is the image's size, with every edge row drawn, and no hover label
    vb.setRange(xRange=(-400, 480), yRange=(-300, 360), padding=0)
    QApplication.processEvents()
    views.views["edges"].show_hover(10, 10, "HOVER " * 10)
    rgb = views.export_rgb("edges")
    assert rgb.shape == (60, 80, 3)
    fg = views.theme.foreground
    is_edge = np.abs(rgb.astype(int) - [fg.red(), fg.green(), fg.blue()]).sum(axis=2) < 60
    np.testing.assert_array_equal(is_edge, Init.edges.astype(bool))
    assert views.views["edges"].hover_text.isVisible()  # restored after the export
    assert views.edge_pool_factor() > 1  # and the zoom too
    with pytest.raises(ValueError, match="unknown stage view"):
        views.export_rgb("nothing")


def test_captions_say_which_model(views) -> None:
    views.set_caption("kernels", "grid · trained · step 120")
    assert views.title_of("kernels").endswith("grid · trained · step 120")
    views.set_caption("kernels", "")
    assert views.title_of("kernels") == "4  Kernels"


def test_fit_title_drops_the_middle_of_the_caption_first() -> None:
    from smoe_gui.ui.views.view_items import fit_title

    title, caption = "4  Kernels", "edge · trained · 128 steps · K=1373"
    full = f"{title}  —  {caption}"
    assert fit_title(title, caption, lambda t: True) == full
    # too wide: the middle parts go first, then the kernel count, then the state
    for expected in (
        "4  Kernels  —  edge · trained · K=1373",
        "4  Kernels  —  edge · trained",
        "4  Kernels  —  edge",
    ):
        assert fit_title(title, caption, lambda t, n=len(expected): len(t) <= n) == expected
    assert fit_title(title, caption, lambda t: len(t) <= 10) == "4  Kernels"
    assert fit_title(title, caption, lambda t: len(t) <= 6) == "4  Ke…"
    assert fit_title(title, "", lambda t: len(t) <= 10) == "4  Kernels"
    # a stage the method lacks: the method's name goes before the caption does
    assert fit_title("1  Canny edges", "as-smoe: no edges", lambda t: len(t) <= 28) == (
        "1  Canny edges  —  no edges"
    )


def test_every_missing_stage_caption_fits_a_view_at_1280x720(qtbot) -> None:
    """At 1280x720 a stage view leaves about 246 px for its 10 pt title: "3  Reduced
    segments  —  s-smoe: none" (258 px) and grid's "1  Canny edges  —  grid: no edges
    used" showed as the bare title, view 1 of grid blank without a word why."""
    from functools import partial

    from PySide6.QtGui import QFont, QFontMetrics

    from smoe_gui.core import registry
    from smoe_gui.ui.control.lecture_steps import stage_titles
    from smoe_gui.ui.views.view_items import fit_title, fits_width

    font = QFont(QApplication.font())
    font.setPointSize(10)
    fits = partial(fits_width, QFontMetrics(font), 246)
    seen = 0
    for name in registry.names():
        titles = stage_titles(name)
        for view, caption in getattr(registry.get(name), "no_stage_text", {}).items():
            shown = fit_title(titles[view], caption, fits)
            assert shown.endswith(caption.split(": ", 1)[-1]), (name, view, shown)
            seen += 1
    assert seen >= 7


def test_a_narrow_view_shows_a_shortened_title_and_the_full_one_as_tooltip(views) -> None:
    caption = "edge · trained · 128 steps · K=1373"
    views.set_caption("kernels", caption)
    view = views.views["kernels"]
    views.resize(600, 400)
    views.show()
    QApplication.processEvents()
    shown = view.getPlotItem().titleLabel.text
    assert shown.startswith("4  Kernels") and "128 steps" not in shown
    metrics = QFontMetrics(QFont(views.font().family(), 10))
    assert (
        metrics.horizontalAdvance(views.title_of("kernels")) > view.width() - 16
    )  # too wide whole
    assert view.toolTip() == views.title_of("kernels")
    views.resize(2400, 900)  # wide enough again: the whole title, no tooltip
    QApplication.processEvents()
    assert view.getPlotItem().titleLabel.text.endswith(caption)
    assert view.toolTip() == ""


def test_curves_whole_image_psnr_tiles_labels_and_integer_axis(qtbot) -> None:
    from smoe_gui.core.train.runs import FitHistory
    from smoe_gui.ui.control.jobs import ProgressBatch
    from smoe_gui.ui.theme import current_theme
    from smoe_gui.ui.views.plots import IntegerAxis, TrainingPlots

    plots = TrainingPlots(current_theme())
    qtbot.addWidget(plots.psnr_plot)
    qtbot.addWidget(plots.kernel_plot)
    n = 12
    phases = ["tiles"] * 8 + ["merge"] + ["finetune"] * 3
    tile_psnr = [30, 35, 22, 40, 25, 33, 21, 38, 27, 27.5, 28, 28.2]
    whole: dict[int, float] = {0: 20.0, 3: 22.0, 6: 24.0}
    history = FitHistory()
    for i in range(n):
        history.add_row(
            i + 1,
            0.1 * (i + 1),
            phases[i],
            tile_psnr[i],
            1373,
            i if phases[i] == "tiles" else None,
            whole.get(i),
        )
    plots.append(ProgressBatch("train", history))
    plots.flush()
    x, y = plots.psnr_curves["train"].getData()
    np.testing.assert_array_equal(x, [1, 4, 7, 9, 10, 11, 12])  # no per-tile sawtooth
    assert np.all(np.diff(y[:3]) > 0)
    assert not plots.tile_curves["train"].isVisible()
    plots.set_show_tile_psnr(True)
    assert plots.tile_curves["train"].isVisible()
    tx, _ = plots.tile_curves["train"].getData()
    assert len(tx) == 8
    # phase labels never overlap and lie inside the plot, at the plot's size in a
    # 1280x720 window (merge and finetune start one step apart)
    for size in ((540, 120), (560, 150), (900, 260)):  # (540, 120): 1280x720 as it is
        plots.psnr_plot.resize(*size)
        plots.psnr_plot.show()
        qtbot.waitUntil(lambda s=size: plots.psnr_plot.width() == s[0], timeout=2_000)
        QApplication.processEvents()
        vb = plots.psnr_plot.getViewBox().sceneBoundingRect()
        rects = [line.label.sceneBoundingRect() for line in plots.phase_lines.values()]
        for i, a in enumerate(rects):
            assert vb.top() <= a.top() and a.bottom() <= vb.bottom(), size  # not cut
            for b in rects[i + 1 :]:
                assert not a.intersects(b), size
    # a constant kernel count gets an integer axis with room around it
    axis = plots.kernel_plot.getAxis("left")
    assert isinstance(axis, IntegerAxis)
    lo, hi = plots.kernel_plot.getViewBox().viewRange()[1]
    assert lo <= 1371.5 and hi >= 1374.5
    for _spacing, values in axis.tickValues(lo, hi, 200):
        assert all(float(v).is_integer() for v in values)
    # with two runs the names are in the title, not over the curves
    plots.show_labels(("edge", "grid"))
    assert "edge-aligned init" in plots.legend_text() and "grid init" in plots.legend_text()
    assert not hasattr(plots, "legend") or plots.psnr_plot.getPlotItem().legend is None


def test_a_snapshot_caption_sets_only_the_titles_it_changes(views, monkeypatch) -> None:
    views.set_captions({name: "edge stages" for name in ("edges", "segments", "reduced")})
    set_calls: list[str] = []
    for name, view in views.views.items():
        label = view.getPlotItem().titleLabel
        original = label.setText
        monkeypatch.setattr(
            label,
            "setText",
            lambda *a, _n=name, _o=original, **k: (set_calls.append(_n), _o(*a, **k)),
        )
    views.set_captions({"edges": "edge stages", "kernels": "training · step 12",
                        "reconstruction": "training · step 12"})
    assert sorted(set_calls) == ["kernels", "reconstruction"]  # view 1's title was unchanged
    assert views.views["kernels"].getPlotItem().titleLabel.text.endswith("step 12")
    set_calls.clear()
    views.set_captions({"kernels": "training · step 12"})
    views.set_titles({})  # the same titles again
    assert set_calls == []
    with pytest.raises(ValueError, match="unknown stage views"):
        views.set_captions({"view 7": ""})


def test_psnr_axis_labels_never_overlap_in_a_low_plot(qtbot) -> None:
    """Before training, the PSNR plot at 1280x720 is about 40 px high: pyqtgraph put
    0, 0.2, ..., 1.0 there, one label over the next.  Every labelled tick of the
    PSNR, kernel and expert plots' left axes now lies >= 1.3 text heights apart."""
    from smoe_gui.ui.theme import current_theme
    from smoe_gui.ui.views.plots import ExpertPlot, LegibleAxis, TrainingPlots, thin_levels

    plots = TrainingPlots(current_theme())
    expert = ExpertPlot(current_theme())
    for widget in (plots.psnr_plot, plots.kernel_plot, expert):
        qtbot.addWidget(widget)
    axes = [p.getAxis("left") for p in (plots.psnr_plot, plots.kernel_plot, expert)]
    assert all(isinstance(a, LegibleAxis) for a in axes)
    for axis in axes:
        gap = axis.min_gap_px()
        assert gap > 10
        for lo, hi, size in ((0.0, 1.0, 40.0), (18.0, 27.0, 45.0), (1371.0, 1375.0, 40.0),
                             (21.72, 21.81, 60.0), (0.0, 1.0, 400.0)):
            if axis is axes[1] and hi - lo < 1:
                continue  # the kernel count's axis shows whole numbers only
            levels = axis.tickValues(lo, hi, size)
            assert levels and levels[0][1], (lo, hi, size)
            for spacing, values in levels:
                assert spacing * size / (hi - lo) >= gap - 1e-9, (lo, hi, size, spacing)
                assert len(values) >= 1
    # Fig. 3 counts whole iterations: focused (key 6) its axis said 0, 0.5, 1, ..., 5
    bottom = expert.getAxis("bottom")
    for _spacing, values in bottom.tickValues(0.0, 5.0, 1200.0):
        assert all(float(v).is_integer() for v in values)
    # a tall plot keeps pyqtgraph's own ticks; a round step stays round
    assert thin_levels([(0.2, [0.0, 0.2, 0.4]), (0.1, [0.1, 0.3])], 1.0, 400.0, 16.0) == [
        (0.2, [0.0, 0.2, 0.4]), (0.1, [0.1, 0.3])]
    assert thin_levels([(0.2, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]), (0.1, [0.1])], 1.0, 40.0, 16.0) == [
        (0.4, [0.0, 0.4, 0.8])]
