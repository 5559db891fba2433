"""The five linked stage views: their grid, backgrounds, titles, legend and
native exports.

Views (``objectName``): ``stage-edges``, ``stage-segments``, ``stage-reduced``,
``stage-kernels``, ``stage-reconstruction``.  Each is a pyqtgraph plot whose
items are created once; new results only call ``setData``/``setImage``
(re-plotting every frame would rebuild the items; see docs/gui.md).  Image
coordinates: pixel centres at integers, x right, y down.

View 4's modes and the kernel inspection live in
:mod:`smoe_gui.ui.views.kernel_view` (a mixin of :class:`StageViews`), the
drawing items in :mod:`smoe_gui.ui.views.view_items`, the legend's text in
:mod:`smoe_gui.ui.views.legend`.  The hover label follows the pointer and is
never part of an export (:meth:`StageViews.export_rgb`).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QFontMetrics, QImage, QPainter
from PySide6.QtWidgets import QGraphicsRectItem, QGridLayout, QLabel, QWidget

from ..control.geometry import (
    KERNEL_CATEGORIES,
    SHARE_LEVELS,
    KernelGeometry,
    max_pool_mask,
    reduced_geometry,
)
from ..control.jobs import InspectResult, SnapshotResult, StageResult
from ..control.lecture_steps import STAGE_TITLES
from ..theme import Theme
from .kernel_view import KernelViewMixin, centre_size
from .legend import legend_html
from .view_items import StageView, blend, fit_title, fits_width, heat_lut, lut2, qimage_rgb

__all__ = ["BACKGROUND_MODES", "STAGES", "StageViews"]

#: Stage view names (objectName ``stage-<name>``) and titles (the edge
#: method's; :func:`~smoe_gui.ui.control.lecture_steps.stage_titles` gives each method's).
STAGES: dict[str, str] = STAGE_TITLES

#: What the views show under their overlays.
BACKGROUND_MODES = ("stage", "original", "residual")

#: Length of a reduced segment's stroke in view 3 (screen px): 0.8 of the
#: segments' mean spacing on screen, between these two.
REDUCED_STROKE_PX = 12.0
MIN_REDUCED_STROKE_PX = 5.0

#: Display range of the residual |original - reconstruction|.
RESIDUAL_LEVELS = (0.0, 0.25)


class StageViews(KernelViewMixin, QWidget):
    """The five stage views in a grid (the sixth cell is free for a plot).

    Signals
    -------
    mouse_moved(str, float, float)
        View name and image coordinates under the mouse.
    mouse_clicked(str, float, float)
        View name and image coordinates of a left click.
    pointer_left(str)
        The pointer left view ``name``.
    kernel_options_changed()
        The kernel view's mode, background toggle or territory fill changed
        (territories and gate shares are computed only for the mode shown, so
        the owner recomputes the model's geometry).
    """

    mouse_moved = Signal(str, float, float)
    mouse_clicked = Signal(str, float, float)
    pointer_left = Signal(str)
    kernel_options_changed = Signal()

    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("stage-views")
        self.theme = theme
        self.mode = "stage"
        self.kernel_mode = "ellipses"
        self.show_background = True
        self.territory_fill = False
        self.title_px: int | None = None
        self.legend_views: tuple[str, ...] | None = None
        self.views: dict[str, StageView] = {n: StageView(n, t) for n, t in STAGES.items()}
        self.captions: dict[str, str] = {n: "" for n in STAGES}
        self.titles: dict[str, str] = dict(STAGES)
        #: Each view's title as last set: (text, colour, size, tooltip).
        self._titles_shown: dict[str, tuple[str, str, str, str]] = {}
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        self.kernel_controls = self._make_kernel_controls()
        for i, view in enumerate(self.views.values()):
            self.grid.addWidget(view, i // 3, i % 3)
            view.resized.connect(self._set_titles)  # a title fits its view's width
        # below the views (a cell of its own would change view 4's aspect and
        # break the linked zoom)
        self.grid.addWidget(self.kernel_controls, 2, 0, 1, 3)
        self.linked = True
        self.set_linked(True)

        v = self.views
        for angle in (0, 90, 45, -45):
            v["segments"].add_lines(f"dir{angle}", "pairs")
        v["reduced"].add_lines("cluster", "pairs", width=2.0)
        v["reduced"].add_lines("salient", "pairs", width=2.0)
        v["reduced"].add_points("cluster", size=4)
        v["reduced"].add_points("salient", size=6)
        kv = v["kernels"]
        # everything drawn over the image is clipped to it
        self._clip = QGraphicsRectItem(QRectF(-0.5, -0.5, 1.0, 1.0))
        self._clip.setPen(pg.mkPen(None))
        self._clip.setFlag(QGraphicsRectItem.GraphicsItemFlag.ItemClipsChildrenToShape, True)
        self._clip.setZValue(8)
        kv.addItem(self._clip, ignoreBounds=True)
        kv.add_lines("link", "pairs", z=9)
        for cat in KERNEL_CATEGORIES:
            for level in range(len(SHARE_LEVELS)):
                kv.add_lines(f"{cat}@{level}", "finite")
            kv.add_points(cat, size=centre_size(self.kernel_mode, cat))
        for key, item in kv.lines.items():
            item.setParentItem(self._clip)
            item.setZValue(9 if key == "link" else 10)
        kv.add_lines("selected", "finite", width=2.0, z=25)
        self.territory_fill_item = pg.ImageItem(axisOrder="row-major")
        self.territory_fill_item.setZValue(2)
        self.territory_bounds = pg.ImageItem(axisOrder="row-major")
        self.territory_bounds.setZValue(6)
        kv.addItem(self.territory_fill_item)
        kv.addItem(self.territory_bounds)
        self.outlines: dict[str, pg.ImageItem] = {}
        for name in ("kernels", "reconstruction"):
            item = pg.ImageItem(axisOrder="row-major")
            item.setZValue(7)
            item.setVisible(False)
            v[name].addItem(item)
            self.outlines[name] = item
        self.legend = QLabel()
        self.legend.setObjectName("stage-legend")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)

        self._original: NDArray[np.float32] | None = None
        self._edges: NDArray[np.uint8] | None = None
        self._superpixels: NDArray[np.uint8] | None = None
        self._edge_factor = 0
        self._reduced_src: tuple[NDArray[np.float64], NDArray[np.bool_], float] | None = None
        self._reduced_px = -1.0
        self._exporting = False
        self._reconstruction: NDArray[np.float32] | None = None
        self._residual: NDArray[np.float32] | None = None
        self._highlight: NDArray[np.float32] | None = None
        self._inspected: InspectResult | None = None
        self._geometry: KernelGeometry | None = None
        self._min_axis = -1.0
        for name, view in self.views.items():
            view.scene().sigMouseMoved.connect(lambda pos, n=name: self._on_move(n, pos))
            view.scene().sigMouseClicked.connect(lambda ev, n=name: self._on_click(n, ev))
            view.pointer_left.connect(lambda n=name: self.pointer_left.emit(n))
        self.views["edges"].getViewBox().sigRangeChanged.connect(lambda *_: self._draw_edges())
        self.views["reduced"].getViewBox().sigRangeChanged.connect(lambda *_: self._draw_reduced())
        # a zoom, pan or resize redraws the overlay once, one turn of the event
        # loop later: a layout pass changes the range several times (4 redraws,
        # 8 ms, on the lecture's training step), and the redraw then runs apart
        # from the resizes and repaints
        self._ellipses_later = QTimer(self)
        self._ellipses_later.setSingleShot(True)
        self._ellipses_later.setInterval(0)
        self._ellipses_later.timeout.connect(self._draw_ellipses)
        kv.getViewBox().sigRangeChanged.connect(lambda *_: self._ellipses_later.start())
        self.apply_theme(theme)
        self._apply_kernel_visibility()

    def set_linked(self, linked: bool) -> None:
        """Link every view's zoom and pan to view 1's (True, the default), or
        let each view have its own (views of different sizes side by side,
        as in the presentation layout: each is then fitted on its own)."""
        self.linked = bool(linked)
        first = self.views["edges"].getViewBox()
        for view in list(self.views.values())[1:]:
            vb = view.getViewBox()
            vb.setXLink(first if self.linked else None)
            vb.setYLink(first if self.linked else None)

    def fit_view(self, name: str) -> None:
        """Zoom view ``name`` (and the views linked to it) to the whole image:
        its rectangle, not the items' bounds (a trained kernel's ellipse may
        reach far beyond the image)."""
        vb = self.views[name].getViewBox()
        if self._original is None:
            vb.autoRange(padding=0.01)
            return
        h, w = self._original.shape[:2]
        vb.setRange(QRectF(-0.5, -0.5, float(w), float(h)), padding=0.01)

    # -- colours ----------------------------------------------------------------
    def apply_theme(self, theme: Theme) -> None:
        """Take plot, line and legend colours from ``theme`` (palette-based)."""
        self.theme = theme
        bg, fg = theme.background, theme.foreground
        for view in self.views.values():
            view.setBackground(bg)
            view.hover_text.setColor(fg)
            view.hover_text.fill = pg.mkBrush(bg.red(), bg.green(), bg.blue(), 225)
            for key, item in view.lines.items():
                cat, _, level = key.partition("@")
                if key == "link":
                    pen = pg.mkPen(theme.color("link", 170), width=1.5)
                elif key == "selected":
                    pen = pg.mkPen(theme.color("highlight"), width=2.0)
                elif level:  # faded by blending towards the background: opaque 1-px pens
                    # paint ~5x faster than translucent or wider ones (2,000 ellipses)
                    pen = pg.mkPen(
                        blend(theme.color(cat), bg, SHARE_LEVELS[int(level)][1] / 255.0), width=1
                    )
                else:
                    pen = pg.mkPen(theme.color(cat, 230), width=item._smoe_width)  # type: ignore[attr-defined]
                item.setPen(pen)
            for key, item in view.points.items():
                item.setBrush(pg.mkBrush(theme.color(key)))
                if view.name == "kernels":
                    item.setPen(pg.mkPen(bg, width=1.0))
        self._set_titles()
        heat = heat_lut()
        for name in ("kernels", "reconstruction"):
            self.views[name].mask.setLookupTable(heat)
        hl = theme.color("highlight")
        outline = lut2((0, 0, 0, 0), (hl.red(), hl.green(), hl.blue(), 255))
        for item in self.outlines.values():
            item.setLookupTable(outline)
        bc = theme.foreground
        self.territory_bounds.setLookupTable(
            lut2((0, 0, 0, 0), (bc.red(), bc.green(), bc.blue(), 235))
        )
        self._show_legend()
        self._refresh_backgrounds()

    def set_caption(self, name: str, text: str) -> None:
        """Say in view ``name``'s title which model or result it shows
        (e.g. ``"edge · trained · step 1200"``); ``""`` for none."""
        self.set_captions({name: text})

    def set_captions(self, captions: dict[str, str]) -> None:
        """:meth:`set_caption` for several views at once; only the titles that
        change are set again (a training snapshot changes two of them)."""
        unknown = set(captions) - set(self.views)
        if unknown:
            raise ValueError(f"unknown stage views {sorted(unknown)}")
        self.captions.update(captions)
        self._set_titles(tuple(captions))

    def set_titles(self, titles: dict[str, str]) -> None:
        """Name the views for the method whose result they show
        (:func:`~smoe_gui.ui.control.lecture_steps.stage_titles`)."""
        unknown = set(titles) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stage views {sorted(unknown)}")
        new = {**STAGES, **titles}
        if new != self.titles:
            self.titles = new
            self._set_titles()

    def title_of(self, name: str) -> str:
        """The title view ``name`` shows now (plain text)."""
        caption = self.captions.get(name, "")
        return self.titles[name] + (f"  —  {caption}" if caption else "")

    def set_text_px(self, px: int | None) -> None:
        """View titles in ``px`` pixels (the presentation layout), or the
        usual 10 pt with None."""
        self.title_px = None if px is None else int(px)
        self._set_titles()

    def set_legend_views(self, views: tuple[str, ...] | None) -> None:
        """Legend only for the views in ``views`` (the presentation layout:
        the current step's), or for every view with None."""
        self.legend_views = None if views is None else tuple(views)
        self._show_legend()

    def _set_titles(self, only: tuple[str, ...] | None = None) -> None:
        """Fit each view's title to its width and show it; with ``only``,
        just those views'.  A title whose text, colour and size are those
        shown already is not set again (setting one lays the plot out anew)."""
        fg = self.theme.foreground
        font = QFont(self.font())
        px = getattr(self, "title_px", None)
        if px is None:
            font.setPointSize(10)
        else:
            font.setPixelSize(px)
        size = "10pt" if px is None else f"{px}px"
        metrics = QFontMetrics(font)
        done = self._titles_shown
        for name, view in self.views.items():
            if only is not None and name not in only:
                continue
            full = self.title_of(name)
            shown = fit_title(
                self.titles[name],
                self.captions.get(name, ""),
                partial(fits_width, metrics, max(40, view.width() - 16)),
            )
            tip = full if shown != full else ""
            key = (shown, fg.name(), size, tip)
            if done.get(name) == key:
                continue
            view.getPlotItem().titleLabel.setText(shown, color=fg.name(), size=size)
            view.setToolTip(tip)
            done[name] = key

    def legend_html(self) -> str:
        """Rich text saying what each colour means (view 4's part follows its mode)."""
        return legend_html(
            self.theme,
            self.kernel_mode,
            self.territory_fill,
            getattr(self, "legend_method", None),
            self.legend_views,
        )

    # -- data -------------------------------------------------------------------------
    def set_original(self, image: NDArray[np.float32]) -> None:
        """A new image: clear every stage and fit the views to it."""
        new_size = self._original is None or self._original.shape != image.shape
        self._original = image
        self._edges = None
        self._reduced_src = None
        self._superpixels = None
        self._reconstruction = None
        self._residual = None
        self._geometry = None
        h, w = image.shape[:2]
        self._clip.setRect(QRectF(-0.5, -0.5, float(w), float(h)))
        self.captions = {n: "" for n in STAGES}
        self._set_titles()
        self.clear_inspection()
        for view in self.views.values():
            view.shown_id = -1
            for key in view.lines:
                view.set_lines(key, np.zeros((0, 2)))
            for key in view.points:
                view.set_points(key, np.zeros((0, 2)))
            view.mask.setVisible(False)
        self._apply_kernel_visibility()
        self._refresh_backgrounds()
        if new_size:
            self.fit_view("edges")

    def show_result(self, request_id: int, result: StageResult) -> None:
        """Draw every stage of ``result`` (stale results are dropped by the caller)."""
        init = result.init
        if getattr(self, "legend_method", None) != init.method:
            self.legend_method: str | None = init.method  # the legend lists its entries only
            self._show_legend()
        # the segment methods have no edge stage, the grid no edge pixel: view 1 shows the
        # image dimmed rather than a blank white mask
        self._edges = (
            None
            if init.segment_map is not None or not np.any(init.edges)
            else np.ascontiguousarray(init.edges, dtype=np.uint8)
        )
        self._edge_factor = 0
        v = self.views
        for angle, strokes in result.segment_strokes.items():
            v["segments"].set_lines(f"dir{angle}", strokes)
        red = result.reduced
        self._reduced_src = (init.reduced, init.salient, float(init.params.delta_mu))
        self._reduced_px = -1.0
        self._draw_reduced()
        v["reduced"].set_points("cluster", red.cluster_centres)
        v["reduced"].set_points("salient", red.salient_centres)
        self._superpixels = result.superpixel_bounds
        if self._superpixels is not None:  # S-SMoE / AS-SMoE: the segment map in view 2
            v["segments"].mask.setImage(self._superpixels, levels=(0, 1), autoLevels=False)
        self._set_snapshot(result.snapshot)
        self.clear_inspection()
        for view in v.values():
            view.shown_id = request_id
        self._refresh_backgrounds()

    def show_snapshot(self, request_id: int, snap: SnapshotResult, kernels: bool = True) -> None:
        """Draw a model (training snapshot or loaded model) in views 4 and 5;
        with ``kernels=False`` the kernel overlay keeps its previous drawing."""
        self._set_snapshot(snap, kernels)
        self.views["kernels"].shown_id = request_id
        self.views["reconstruction"].shown_id = request_id
        # view 4 over the (dimmed) original: the same picture; setting it again
        # would convert and paint the full-size image at every live frame
        same = not kernels and self._background_choice("kernels") in ("dimmed", "original")
        self._refresh_backgrounds(
            only=("reconstruction",) if same else ("kernels", "reconstruction")
        )

    def _set_snapshot(self, snap: SnapshotResult, kernels: bool = True) -> None:
        self._reconstruction = snap.reconstruction
        self._residual = snap.residual
        if kernels:
            self.show_kernels(snap.kernels)

    def reconstruction(self) -> NDArray[np.float32] | None:
        """The reconstruction shown in view 5 now, (H, W) float32, or (H, W, 3)
        for a colour model (a preview while training), or None."""
        return self._reconstruction

    def set_mode(self, mode: str) -> None:
        """What the views show under their overlays: stage, original or residual."""
        if mode not in BACKGROUND_MODES:
            raise ValueError(f"unknown view mode {mode!r}; expected one of {BACKGROUND_MODES}")
        self.mode = mode
        self._refresh_backgrounds()

    def background_of(self, name: str) -> str:
        """Which image view ``name`` shows: edges, dimmed, original, residual,
        reconstruction or none."""
        return self._background_choice(name)

    def _background_choice(self, name: str) -> str:
        if self._original is None:
            return "none"
        if self.mode == "residual":
            return "residual" if self._residual is not None else "original"
        if self.mode == "original":
            return "original"
        if name == "edges":
            return "edges" if self._edges is not None else "dimmed"
        if name == "reconstruction":
            return "reconstruction" if self._reconstruction is not None else "dimmed"
        return "dimmed"

    # -- view 3: reduced segments drawn with a visible length ---------------------------
    def _draw_reduced(self) -> None:
        """Each reduced segment as a stroke along its direction, 0.8 of the
        segments' mean spacing on screen long (:data:`MIN_REDUCED_STROKE_PX`
        to :data:`REDUCED_STROKE_PX` screen px) and at least ``2·Δμ`` image
        px (the span of its kernel pair): a stroke ``2·Δμ`` long is a dot at
        the fit-to-view zoom."""
        src = self._reduced_src
        if src is None:
            return
        px, _py = self.views["reduced"].getViewBox().viewPixelSize()
        px = float(px) if np.isfinite(px) and px > 0 else 0.0
        if self._reduced_px > 0 and abs(px - self._reduced_px) <= 0.05 * self._reduced_px:
            return
        self._reduced_px = px
        reduced, salient, delta_mu = src
        length = REDUCED_STROKE_PX
        if self._original is not None and len(reduced) and px > 0:  # shorter where dense
            h, w = self._original.shape[:2]
            spacing = float(np.sqrt(h * w / (px * px) / len(reduced)))
            length = float(np.clip(0.8 * spacing, MIN_REDUCED_STROKE_PX, REDUCED_STROKE_PX))
        half = max(0.5 * length * px, delta_mu, 1.0)
        red = reduced_geometry(reduced, salient, half)
        self.views["reduced"].set_lines("cluster", red.cluster_strokes)
        self.views["reduced"].set_lines("salient", red.salient_strokes)

    # -- view 1: every edge pixel at any zoom ---------------------------------------------
    def edge_pool_factor(self) -> int:
        """By how much the edge mask is max-pooled now: 1 when an image pixel
        covers at least one screen pixel (or while exporting), else the
        number of image pixels per screen pixel, rounded up."""
        if self._exporting:
            return 1
        px, py = self.views["edges"].getViewBox().viewPixelSize()
        scale = max(float(px), float(py))
        if not np.isfinite(scale) or scale <= 1.0:
            return 1
        return int(np.ceil(scale - 1e-6))

    def _edge_items(self) -> list[pg.ImageItem]:
        view = self.views["edges"]
        choice = self._background_choice("edges")
        if self._edges is None:
            return []
        if choice == "edges":
            return [view.base]
        if choice in ("original", "residual"):
            return [view.mask]
        return []

    def _draw_edges(self, force: bool = False) -> None:
        """Draw the edge mask so that no edge pixel is lost: at native
        resolution when zoomed in, max-pooled to the screen when zoomed out
        (nearest sampling never drops a set pixel then)."""
        if self._edges is None:
            return
        factor = self.edge_pool_factor()
        if factor == self._edge_factor and not force:
            return
        self._edge_factor = factor
        mask = max_pool_mask(self._edges, factor)
        h, w = self._edges.shape
        for item in self._edge_items():
            item.setImage(mask, levels=(0, 1), autoLevels=False)
            self._fit_item(
                item,
                rows=mask.shape[0] * factor if factor > 1 else h,
                cols=mask.shape[1] * factor if factor > 1 else w,
            )

    @property
    def superpixel_image(self) -> NDArray[np.uint8] | None:
        """The superpixel boundaries drawn over view 2 now (S-SMoE, AS-SMoE;
        1 on a boundary), or None."""
        mask = self.views["segments"].mask
        return None if self._superpixels is None or not mask.isVisible() else np.asarray(mask.image)

    @property
    def edge_image(self) -> NDArray[np.uint8] | None:
        """The edge mask as drawn in view 1 now (max-pooled when zoomed out)."""
        items = self._edge_items()
        return None if not items else np.asarray(items[0].image)

    def _refresh_backgrounds(self, only: tuple[str, ...] | None = None) -> None:
        t = self.theme
        bg, fg, edge = t.background, t.foreground, t.color("edge-pixel")
        for name, view in self.views.items():
            if only is not None and name not in only:
                continue
            choice = self._background_choice(name)
            base = view.base
            base.setLookupTable(None)
            if choice == "none":
                base.setVisible(False)
                continue
            base.setVisible(True)
            if choice == "edges":
                assert self._edges is not None
                base.setLookupTable(
                    lut2(
                        (bg.red(), bg.green(), bg.blue(), 255),
                        (fg.red(), fg.green(), fg.blue(), 255),
                    )
                )
            elif choice == "reconstruction":
                base.setImage(self._reconstruction, levels=(0.0, 1.0), autoLevels=False)
            elif choice == "residual":
                base.setImage(self._residual, levels=RESIDUAL_LEVELS, autoLevels=False)
            elif choice == "original":
                base.setImage(self._original, levels=(0.0, 1.0), autoLevels=False)
            else:  # dimmed original under the overlays, towards the plot background
                levels = (-0.1, 2.4) if t.dark else (-1.6, 1.0)
                base.setImage(self._original, levels=levels, autoLevels=False)
            if choice != "edges":
                self._fit_item(base)
            if name == "edges":
                show_mask = choice in ("original", "residual") and self._edges is not None
                if show_mask:
                    view.mask.setLookupTable(
                        lut2((0, 0, 0, 0), (edge.red(), edge.green(), edge.blue(), 255))
                    )
                view.mask.setVisible(show_mask)
                self._draw_edges(force=True)
            elif name == "segments":  # the superpixel boundaries over the image
                bounds = self._superpixels
                if bounds is not None:
                    c = t.color("superpixel")
                    view.mask.setLookupTable(
                        lut2((0, 0, 0, 0), (c.red(), c.green(), c.blue(), 255))
                    )
                    self._fit_item(view.mask)
                view.mask.setVisible(bounds is not None)

    # -- export ------------------------------------------------------------------------
    def export_rgb(self, name: str, scale: int = 1) -> NDArray[np.uint8]:
        """View ``name`` rendered at ``scale`` times the image's own resolution,
        ``(scale·H, scale·W, 3)`` uint8: the whole image whatever the zoom,
        every edge pixel, overlays with their screen line widths, never the
        hover label.

        Raises
        ------
        ValueError
            For an unknown view, a scale below 1, or when no image is shown.
        """
        if int(scale) < 1:
            raise ValueError(f"export scale must be at least 1, got {scale!r}")
        if name not in self.views:
            raise ValueError(f"unknown stage view {name!r}")
        if self._original is None:
            raise ValueError("there is no image to export")
        view = self.views[name]
        vb = view.getViewBox()
        h, w = self._original.shape[:2]
        rect = QRectF(-0.5, -0.5, float(w), float(h))
        saved = vb.viewRange()
        hidden = [v for v in self.views.values() if v.hover_text.isVisible()]
        for v in hidden:
            v.hover_text.setVisible(False)
        self._exporting = True
        try:
            vb.setRange(rect, padding=0.0, update=True)
            vb.updateMatrix()
            self._draw_edges()
            source = vb.mapViewToScene(rect).boundingRect()
            image = QImage(w * scale, h * scale, QImage.Format.Format_RGB888)
            image.fill(self.theme.background)
            painter = QPainter(image)
            try:
                view.scene().render(
                    painter,
                    QRectF(0, 0, w * scale, h * scale),
                    source,
                    Qt.AspectRatioMode.IgnoreAspectRatio,
                )
            finally:
                painter.end()
        finally:
            self._exporting = False
            vb.setRange(xRange=saved[0], yRange=saved[1], padding=0.0)
            self._draw_edges()
            for v in hidden:
                v.hover_text.setVisible(True)
        return qimage_rgb(image)

    # -- mouse ----------------------------------------------------------------------------
    def _on_move(self, name: str, scene_pos: object) -> None:
        vb = self.views[name].getViewBox()
        if not vb.sceneBoundingRect().contains(scene_pos):
            self.views[name].hide_hover()
            return
        p = vb.mapSceneToView(scene_pos)
        self.mouse_moved.emit(name, float(p.x()), float(p.y()))

    def _on_click(self, name: str, event: object) -> None:
        if event.button() != Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            return
        vb = self.views[name].getViewBox()
        p = vb.mapSceneToView(event.scenePos())  # type: ignore[attr-defined]
        self.mouse_clicked.emit(name, float(p.x()), float(p.y()))
