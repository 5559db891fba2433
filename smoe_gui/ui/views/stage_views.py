"""The five linked stage views, their legend, the kernel view's modes and the
inspection overlays.

Views (``objectName``): ``stage-edges``, ``stage-segments``, ``stage-reduced``,
``stage-kernels``, ``stage-reconstruction``.  Each is a pyqtgraph plot whose
items are created once; new results only call ``setData``/``setImage``
(re-plotting every frame would rebuild the items; see docs/gui.md).  Image coordinates: pixel centres at integers, x right,
y down.

View 4 has three modes (:data:`~smoe_gui.ui.control.geometry.KERNEL_MODES`): centres
and pair links (markers of constant screen size), 1-σ ellipses (clipped to the
image, at least :data:`MIN_ELLIPSE_PX` screen pixels, faded by each kernel's
gate share) and gate territories (the kernel of largest gate weight per pixel:
boundaries over the image, optionally filled with each territory's expert
value).  Background kernels can be hidden.  The hover label follows the pointer
and is never part of an export (:meth:`StageViews.export_rgb`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pyqtgraph as pg
import pyqtgraph.functions as fn
from numpy.typing import NDArray
from pyqtgraph.Qt.internals import PrimitiveArray
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGraphicsRectItem,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QWidget,
)

from ..control.geometry import (
    KERNEL_CATEGORIES,
    KERNEL_CATEGORY_LABELS,
    KERNEL_MODES,
    SHARE_LEVELS,
    KernelGeometry,
    ellipse_polylines_of,
    max_pool_mask,
)
from ..control.jobs import InspectResult, SnapshotResult, StageResult
from ..control.lecture_steps import STAGE_TITLES
from ..theme import Theme

__all__ = [
    "BACKGROUND_MODES",
    "KERNEL_MODE_TITLES",
    "MIN_ELLIPSE_PX",
    "STAGES",
    "StageView",
    "StageViews",
    "widget_rgb",
]

#: Stage view names (objectName ``stage-<name>``) and titles (the edge
#: method's; :func:`~smoe_gui.ui.control.lecture_steps.stage_titles` gives each method's).
STAGES: dict[str, str] = STAGE_TITLES

#: Titles of the kernel view's modes (the mode selector's entries).
KERNEL_MODE_TITLES: dict[str, str] = {
    "centres": "centres and pair links",
    "ellipses": "1-σ ellipses (faded by gate share)",
    "territories": "gate territories (argmax w_i)",
}

#: What the views show under their overlays.
BACKGROUND_MODES = ("stage", "original", "residual")

#: Display range of the residual |original - reconstruction|.
RESIDUAL_LEVELS = (0.0, 0.25)

#: Smallest semi-axis of a drawn ellipse, in screen pixels.
MIN_ELLIPSE_PX = 2.5

#: Marker sizes (screen pixels) of kernel centres per mode.
_CENTRE_SIZE = {"centres": 5.0, "ellipses": 4.0, "territories": 4.0}


def _centre_size(mode: str, category: str) -> float:
    """Marker diameter (screen px): background and grid kernels smaller, so
    that the edge pairs stand out."""
    size = _CENTRE_SIZE[mode]
    return size - 1.5 if category in ("background", "grid") else size

_EMPTY = np.zeros((0,), dtype=np.float64)


def widget_rgb(widget: QWidget) -> NDArray[np.uint8]:
    """The widget as it is drawn now, ``(H, W, 3)`` uint8 RGB."""
    return _qimage_rgb(widget.grab().toImage())


def _qimage_rgb(image: QImage) -> NDArray[np.uint8]:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h = image.width(), image.height()
    buf = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    rows = buf.reshape(h, image.bytesPerLine())[:, : w * 3]
    return rows.reshape(h, w, 3).copy()


def _lut(c0: tuple[int, int, int, int], c1: tuple[int, int, int, int]) -> NDArray[np.uint8]:
    """2-entry RGBA lookup table for a 0/1 image."""
    return np.array([c0, c1], dtype=np.uint8)


def _ramp_lut(color: tuple[int, int, int]) -> NDArray[np.uint8]:
    """256-entry lookup table from transparent to opaque ``color``."""
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[:, :3] = color
    lut[:, 3] = np.linspace(0, 230, 256).astype(np.uint8)
    return lut


def _blend(color: QColor, background: QColor, alpha: float) -> QColor:
    """``color`` at opacity ``alpha`` over ``background``, as an opaque colour."""
    return QColor(
        round(alpha * color.red() + (1 - alpha) * background.red()),
        round(alpha * color.green() + (1 - alpha) * background.green()),
        round(alpha * color.blue() + (1 - alpha) * background.blue()),
    )


#: Colour map of the weight-map heat overlay and its colour bar.
HEAT_MAP = "inferno"


def heat_lut() -> NDArray[np.uint8]:
    """256-entry RGBA heat lookup table (``inferno``), transparent at 0."""
    cmap = pg.colormap.get(HEAT_MAP)
    lut = np.asarray(cmap.getLookupTable(0.0, 1.0, 256, alpha=True), dtype=np.uint8).copy()
    lut[:, 3] = np.clip(np.linspace(0.0, 1.0, 256) ** 0.5 * 235, 0, 255).astype(np.uint8)
    lut[0, 3] = 0
    return lut


class MarkerItem(pg.GraphicsObject):
    """Round markers of constant screen size at many positions: one sprite
    (the disc with an outline in the background colour) drawn at every
    position with a single ``QPainter.drawPixmapFragments``, as
    ``pg.ScatterPlotItem`` draws its atlas.  For 2,000 kernel centres the
    scatter item spent ~25 ms of the GUI thread per ``setData`` (it keys every
    spot in Python) and wide-pen ``drawPoints`` ~23 ms per paint; this costs
    about a millisecond for both.  Uses pyqtgraph's ``PrimitiveArray`` (an
    internal helper of the pinned pyqtgraph, also used by its scatter item).

    Parameters
    ----------
    size : float
        Diameter in screen pixels.
    """

    def __init__(self, size: float = 4.0) -> None:
        super().__init__()
        self._xy = np.zeros((0, 2), dtype=np.float64)
        self._poly = fn.create_qpolygonf(0)
        self._size = float(size)
        self._color = QColor(255, 255, 255)
        self._outline: QColor | None = None
        self._bounds = QRectF()
        self._frags = PrimitiveArray(QPainter.PixmapFragment, 10)
        self._sprite_key: tuple[object, ...] | None = None
        self._sprite_pix = QPixmap()

    @property
    def data(self) -> NDArray[np.float64]:
        """(n, 2) positions drawn."""
        return self._xy

    def getData(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # noqa: N802 (pyqtgraph style)
        return self._xy[:, 0], self._xy[:, 1]

    def setData(self, pos: NDArray[np.float64]) -> None:  # noqa: N802
        xy = np.ascontiguousarray(np.asarray(pos, dtype=np.float64).reshape(-1, 2))
        self.prepareGeometryChange()
        self._xy = xy
        self._poly = fn.create_qpolygonf(len(xy))
        if len(xy):
            fn.ndarray_from_qpolygonf(self._poly)[:] = xy
            lo, hi = xy.min(axis=0), xy.max(axis=0)
            self._bounds = QRectF(float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))
        else:
            self._bounds = QRectF()
        self.update()

    def setSize(self, size: float) -> None:  # noqa: N802
        self._size = float(size)
        self.update()

    def setBrush(self, brush: object) -> None:  # noqa: N802
        self._color = QColor(pg.mkBrush(brush).color())
        self.update()

    def setPen(self, pen: object) -> None:  # noqa: N802
        self._outline = None if pen is None else QColor(pg.mkPen(pen).color())
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        # markers reach a few screen pixels beyond the centres
        px = self.pixelLength(pg.Point(1, 0)) or 0.0
        pad = (self._size + 2) * float(px)
        return self._bounds.adjusted(-pad, -pad, pad, pad)

    def _sprite(self, dpr: float) -> QPixmap:
        key = (self._size, self._color.rgba(), None if self._outline is None else self._outline.rgba(), dpr)
        if self._sprite_key != key:
            side = int(np.ceil((self._size + 2.0) * dpr)) + 2
            pix = QPixmap(side, side)
            pix.fill(Qt.GlobalColor.transparent)
            p = QPainter(pix)
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setPen(Qt.PenStyle.NoPen)
            c = side / 2.0
            if self._outline is not None:
                r = (self._size / 2.0 + 1.0) * dpr
                p.setBrush(self._outline)
                p.drawEllipse(QRectF(c - r, c - r, 2 * r, 2 * r))
            r = self._size / 2.0 * dpr
            p.setBrush(self._color)
            p.drawEllipse(QRectF(c - r, c - r, 2 * r, 2 * r))
            p.end()
            self._sprite_pix = pix
            self._sprite_key = key
        return self._sprite_pix

    def paint(self, painter: QPainter, _option: object = None, widget: QWidget | None = None) -> None:
        if not len(self._xy):
            return
        dpr = float(widget.devicePixelRatioF()) if widget is not None else 1.0
        sprite = self._sprite(dpr)
        pts = fn.transformCoordinates(painter.transform(), self._xy.T)
        pts = fn.clip_array(pts, -(2.0**30), 2.0**30)
        painter.resetTransform()
        self._frags.resize(pts.shape[1])
        frags = self._frags.ndarray()
        frags[:, 0:2] = pts.T
        frags[:, 2:6] = [0.0, 0.0, float(sprite.width()), float(sprite.height())]
        frags[:, 6:10] = [1.0 / dpr, 1.0 / dpr, 0.0, 1.0]
        painter.drawPixmapFragments(*self._frags.drawargs(), sprite)  # type: ignore[call-arg]


def _fits_width(metrics: QFontMetrics, room: int, text: str) -> bool:
    return metrics.horizontalAdvance(text) <= room


def fit_title(title: str, caption: str, fits: Callable[[str], bool]) -> str:
    """The title of a view as ``"title  —  caption"``, shortened until ``fits`` it.

    The caption's parts (``" · "``-separated: the method, the model's state,
    more, the kernel count, e.g. ``"edge · trained · 128 steps · K=1373"``) go
    in this order: the middle ones, then the kernel count, then the state; then
    the bare title, elided at the end with "…".
    """
    parts = [p for p in caption.split(" · ") if p] if caption else []
    candidates = [parts] if parts else []
    if len(parts) > 3:
        candidates.append(parts[:2] + parts[-1:])
    if len(parts) > 2:
        candidates.append(parts[:2])
    if len(parts) > 1:
        candidates.append(parts[:1])
    for cand in candidates:
        text = f"{title}  —  {' · '.join(cand)}"
        if fits(text):
            return text
    if fits(title):
        return title
    short = title
    while len(short) > 1 and not fits(short + "…"):
        short = short[:-1]
    return short.rstrip() + "…"


class StageView(pg.PlotWidget):
    """One stage: a base image, an optional mask overlay, lines and points.

    Attributes
    ----------
    name : str
    base : pg.ImageItem
        The stage image, the original or the residual.
    mask : pg.ImageItem
        Edge pixels (edges view) or a kernel's weight map (Inspect).
    lines : dict key -> pg.PlotCurveItem
    points : dict key -> pg.ScatterPlotItem
    shown_id : int
        Request id of the result drawn now (-1: none yet).
    hover_text : pg.TextItem
        The label that follows the pointer (hidden when it leaves the view).

    Signals
    -------
    pointer_left()
        The pointer left the view.
    """

    pointer_left = Signal()
    resized = Signal()

    def __init__(self, name: str, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.name = name
        self.setObjectName(f"stage-{name}")
        self.setTitle(title)
        self.shown_id = -1
        plot = self.getPlotItem()
        plot.hideAxis("left")
        plot.hideAxis("bottom")
        plot.setMenuEnabled(False)
        plot.hideButtons()
        vb = self.getViewBox()
        vb.setAspectLocked(True)
        vb.invertY(True)
        self.base = pg.ImageItem(axisOrder="row-major")
        self.mask = pg.ImageItem(axisOrder="row-major")
        self.mask.setZValue(5)
        self.mask.setVisible(False)
        self.addItem(self.base)
        self.addItem(self.mask)
        self.lines: dict[str, pg.PlotCurveItem] = {}
        self.points: dict[str, MarkerItem] = {}
        self.hover_text = pg.TextItem(anchor=(0, 0))
        self.hover_text.setZValue(30)
        self.hover_text.setVisible(False)
        self.addItem(self.hover_text)

    def resizeEvent(self, ev: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(ev)
        self.resized.emit()

    def add_lines(self, key: str, connect: str, width: float = 1.0, z: float = 10) -> pg.PlotCurveItem:
        item = pg.PlotCurveItem(connect=connect)
        item.setZValue(z)
        item._smoe_width = width  # type: ignore[attr-defined]
        self.addItem(item)
        self.lines[key] = item
        return item

    def add_points(self, key: str, size: float = 4.0, z: float = 20) -> MarkerItem:
        item = MarkerItem(size)
        item.setZValue(z)
        self.addItem(item)
        self.points[key] = item
        return item

    def set_lines(self, key: str, xy: NDArray[np.float64]) -> None:
        item = self.lines[key]
        if len(xy) == 0:
            item.setData(_EMPTY, _EMPTY)
        else:
            item.setData(xy[:, 0], xy[:, 1])

    def set_points(self, key: str, xy: NDArray[np.float64]) -> None:
        self.points[key].setData(np.asarray(xy, dtype=np.float64).reshape(-1, 2))

    def line_data(self, key: str) -> NDArray[np.float64]:
        """The (n, 2) points of line item ``key`` as drawn (for tests); for a
        kernel category, its ellipses of every gate-share class together."""
        if key not in self.lines:
            keys = [k for k in self.lines if k.partition("@")[0] == key]
            if not keys:
                raise KeyError(key)
            return np.concatenate([self.line_data(k) for k in keys])
        x, y = self.lines[key].getData()
        if x is None:
            return np.zeros((0, 2))
        return np.stack([np.asarray(x), np.asarray(y)], axis=1)

    def point_count(self, key: str) -> int:
        return len(self.points[key].data)

    def leaveEvent(self, event: object) -> None:  # noqa: N802 (Qt override)
        self.hover_text.setVisible(False)
        self.pointer_left.emit()
        super().leaveEvent(event)  # type: ignore[arg-type]

    def show_hover(self, x: float, y: float, text: str) -> None:
        """Show ``text`` next to the pointer at image position ``(x, y)``: to
        its lower right, or on the side where it fits inside the view."""
        vb = self.getViewBox()
        (x0, x1), (y0, y1) = vb.viewRange()
        self.hover_text.setText(text)
        px, py = vb.viewPixelSize()
        rect = self.hover_text.textItem.boundingRect()
        # the text item's rectangle plus the label's frame and padding
        w, h = (rect.width() + 24) * px, (rect.height() + 8) * abs(py)
        gap_x, gap_y = 14 * px, 14 * abs(py)
        left = x + gap_x + w > x1 and x - gap_x - w >= x0
        up = y + gap_y + h > y1 and y - gap_y - h >= y0
        lx = x - gap_x - w if left else min(x + gap_x, max(x0, x1 - w))
        ly = y - gap_y - h if up else min(y + gap_y, max(y0, y1 - h))
        self.hover_text.setAnchor((0.0, 0.0))
        self.hover_text.setPos(lx, ly)
        self.hover_text.setVisible(True)

    def hide_hover(self) -> None:
        self.hover_text.setVisible(False)


class StageViews(QWidget):
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
        self.views: dict[str, StageView] = {n: StageView(n, t) for n, t in STAGES.items()}
        self.captions: dict[str, str] = {n: "" for n in STAGES}
        self.titles: dict[str, str] = dict(STAGES)
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
        first = self.views["edges"].getViewBox()
        for view in list(self.views.values())[1:]:
            view.getViewBox().setXLink(first)
            view.getViewBox().setYLink(first)

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
            kv.add_points(cat, size=_centre_size(self.kernel_mode, cat))
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
        kv.getViewBox().sigRangeChanged.connect(lambda *_: self._draw_ellipses())
        self.apply_theme(theme)
        self._apply_kernel_visibility()

    # -- kernel view controls ----------------------------------------------------
    def _make_kernel_controls(self) -> QWidget:
        bar = QWidget()
        bar.setObjectName("kernel-controls")
        row = QHBoxLayout(bar)
        row.setContentsMargins(4, 0, 4, 0)
        row.addWidget(QLabel("View 4:"))
        self.kernel_mode_box = QComboBox()
        self.kernel_mode_box.setObjectName("kernel-mode")
        for mode in KERNEL_MODES:
            self.kernel_mode_box.addItem(KERNEL_MODE_TITLES[mode], mode)
        self.kernel_mode_box.setCurrentIndex(KERNEL_MODES.index("ellipses"))
        self.kernel_mode_box.setToolTip(
            "What view 4 draws: kernel centres and the links of edge pairs; 1-σ ellipses "
            "(faded by each kernel's gate share); or the gate territories, the kernel of "
            "largest gate weight at each pixel (what the model actually does)"
        )
        self.background_box = QCheckBox("background kernels")
        self.background_box.setObjectName("kernel-background")
        self.background_box.setChecked(True)
        self.background_box.setToolTip("Show the background (and grid) kernels' markers and ellipses")
        self.fill_box = QCheckBox("fill with expert")
        self.fill_box.setObjectName("territory-fill")
        self.fill_box.setToolTip("Fill each gate territory with its kernel's expert value m")
        self.fill_box.setEnabled(False)
        row.addWidget(self.kernel_mode_box)
        row.addWidget(self.background_box)
        row.addWidget(self.fill_box)
        row.addStretch(1)
        self.kernel_mode_box.currentIndexChanged.connect(
            lambda i: self.set_kernel_mode(str(self.kernel_mode_box.itemData(i)))
        )
        self.background_box.toggled.connect(self.set_show_background)
        self.fill_box.toggled.connect(self.set_territory_fill)
        return bar

    def set_kernel_mode(self, mode: str) -> None:
        """Draw view 4 as ``mode`` (one of :data:`KERNEL_MODES`)."""
        if mode not in KERNEL_MODES:
            raise ValueError(f"unknown kernel view mode {mode!r}; expected one of {KERNEL_MODES}")
        if mode == self.kernel_mode:
            return
        self.kernel_mode = mode
        i = KERNEL_MODES.index(mode)
        if self.kernel_mode_box.currentIndex() != i:
            self.kernel_mode_box.blockSignals(True)
            self.kernel_mode_box.setCurrentIndex(i)
            self.kernel_mode_box.blockSignals(False)
        self.fill_box.setEnabled(mode == "territories")
        for cat in KERNEL_CATEGORIES:
            self.views["kernels"].points[cat].setSize(_centre_size(mode, cat))
        self._min_axis = -1.0
        self._apply_kernel_visibility()
        self._draw_ellipses()
        self.legend.setText(self.legend_html())
        self.kernel_options_changed.emit()

    def set_show_background(self, show: bool) -> None:
        """Show or hide the background and grid kernels in view 4."""
        self.show_background = bool(show)
        if self.background_box.isChecked() != self.show_background:
            self.background_box.setChecked(self.show_background)
        self._apply_kernel_visibility()
        self.kernel_options_changed.emit()

    def set_territory_fill(self, fill: bool) -> None:
        """Fill the gate territories with their expert values (territory mode)."""
        self.territory_fill = bool(fill)
        if self.fill_box.isChecked() != self.territory_fill:
            self.fill_box.setChecked(self.territory_fill)
        self._apply_kernel_visibility()
        self.legend.setText(self.legend_html())

    def _category_visible(self, cat: str) -> bool:
        return self.show_background or cat not in ("background", "grid")

    def _apply_kernel_visibility(self) -> None:
        kv = self.views["kernels"]
        ellipses = self.kernel_mode == "ellipses"
        for cat in KERNEL_CATEGORIES:
            shown = self._category_visible(cat)
            kv.points[cat].setVisible(shown)
            for level in range(len(SHARE_LEVELS)):
                kv.lines[f"{cat}@{level}"].setVisible(shown and ellipses)
        kv.lines["link"].setVisible(self.kernel_mode != "territories")
        terr = self.kernel_mode == "territories"
        geo = self._geometry
        has = geo is not None and geo.territories is not None
        self.territory_bounds.setVisible(terr and has)
        self.territory_fill_item.setVisible(terr and has and self.territory_fill)

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
                    pen = pg.mkPen(_blend(theme.color(cat), bg, SHARE_LEVELS[int(level)][1] / 255.0), width=1)
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
        outline = _lut((0, 0, 0, 0), (hl.red(), hl.green(), hl.blue(), 255))
        for item in self.outlines.values():
            item.setLookupTable(outline)
        bc = theme.foreground
        self.territory_bounds.setLookupTable(_lut((0, 0, 0, 0), (bc.red(), bc.green(), bc.blue(), 235)))
        self.legend.setText(self.legend_html())
        self._refresh_backgrounds()

    def set_caption(self, name: str, text: str) -> None:
        """Say in view ``name``'s title which model or result it shows
        (e.g. ``"edge · trained · step 1200"``); ``""`` for none."""
        if name not in self.views:
            raise ValueError(f"unknown stage view {name!r}")
        self.captions[name] = text
        self._set_titles()

    def set_titles(self, titles: dict[str, str]) -> None:
        """Name the views for the method whose result they show
        (:func:`~smoe_gui.ui.control.lecture_steps.stage_titles`)."""
        unknown = set(titles) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stage views {sorted(unknown)}")
        self.titles = {**STAGES, **titles}
        self._set_titles()

    def title_of(self, name: str) -> str:
        """The title view ``name`` shows now (plain text)."""
        caption = self.captions.get(name, "")
        return self.titles[name] + (f"  —  {caption}" if caption else "")

    def _set_titles(self) -> None:
        fg = self.theme.foreground
        font = QFont(self.font())
        font.setPointSize(10)
        metrics = QFontMetrics(font)
        for name, view in self.views.items():
            full = self.title_of(name)
            shown = fit_title(self.titles[name], self.captions.get(name, ""),
                              partial(_fits_width, metrics, max(40, view.width() - 16)))
            view.getPlotItem().titleLabel.setText(shown, color=fg.name(), size="10pt")
            view.setToolTip(full if shown != full else "")


    def legend_html(self) -> str:
        """Rich text saying what each colour means (view 4's part follows its mode)."""
        t = self.theme

        def sw(key: str, text: str, shape: str = "■", alpha: int = 255) -> str:
            c = t.color(key, alpha)
            return (f"<span style='color:rgba({c.red()},{c.green()},{c.blue()},{alpha})'>{shape}"
                    f"</span>&nbsp;{text}")

        def kinds(shape: str) -> str:
            # what each kernel is: the kinds of an initial model, then trained
            initial = [sw(c, KERNEL_CATEGORY_LABELS[c], shape) for c in KERNEL_CATEGORIES if c != "trained"]
            return ("<i>initial:</i> " + " ".join(initial) + " · "
                    + sw("trained", KERNEL_CATEGORY_LABELS["trained"], shape))

        if self.kernel_mode == "centres":
            kern = "<b>kernels: centres</b> " + kinds("●") + " " + sw("link", "pair link", "━")
        elif self.kernel_mode == "ellipses":
            lim = [f"{a:g}" for a, _ in SHARE_LEVELS[:-1]]
            fg = t.foreground
            fade = " ".join(  # the opacity classes, in the neutral text colour (every kind fades alike)
                f"<span style='color:rgba({fg.red()},{fg.green()},{fg.blue()},{alpha})'>◯</span>&nbsp;{text}"
                for text, alpha in zip(
                    [f"&lt;{lim[0]}", f"&lt;{lim[1]}", f"&lt;{lim[2]}", f"≥{lim[2]}"],
                    [a for _, a in SHARE_LEVELS], strict=True,
                )
            )
            kern = ("<b>kernels: 1-σ ellipses</b> " + kinds("◯")
                    + " &nbsp;<i>opacity: gate share × K</i> " + fade)
        else:
            fill = "filled with the expert value m; " if self.territory_fill else ""
            kern = (f"<b>kernels: gate territories</b> centres {kinds('●')} "
                    f"<span style='color:{t.foreground.name()}'>━</span>&nbsp;boundary "
                    f"({fill}each region: the kernel of largest gate weight w<sub>i</sub>)")
        parts = [
            "<b>segments</b> " + " ".join(
                sw(f"dir{a}", f"θ={a}°", "━") for a in (0, 90, 45, -45)
            ) + " " + sw("superpixel", "superpixel boundary (S-SMoE, AS-SMoE)", "━"),
            "<b>reduced</b> " + sw("cluster", "cluster (DBSCAN)", "━") + " " + sw("salient", "salient", "━"),
            kern,
            "<b>inspect</b> w<sub>i</sub> of the clicked kernel (heat, 0…1) "
            + sw("highlight", "its ellipse and territory", "━"),
            "<b>edges view</b> " + sw("edge", "edge pixel over original/residual"),
        ]
        return " &nbsp;│&nbsp; ".join(parts)

    # -- data -------------------------------------------------------------------------
    def set_original(self, image: NDArray[np.float32]) -> None:
        """A new image: clear every stage and fit the views to it."""
        new_size = self._original is None or self._original.shape != image.shape
        self._original = image
        self._edges = None
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
            self.views["edges"].getViewBox().autoRange(padding=0.01)

    def show_result(self, request_id: int, result: StageResult) -> None:
        """Draw every stage of ``result`` (stale results are dropped by the caller)."""
        init = result.init
        # the segment methods have no edge stage: view 1 shows the image dimmed
        self._edges = None if init.segment_map is not None else np.ascontiguousarray(init.edges, dtype=np.uint8)
        self._edge_factor = 0
        v = self.views
        for angle, strokes in result.segment_strokes.items():
            v["segments"].set_lines(f"dir{angle}", strokes)
        red = result.reduced
        v["reduced"].set_lines("cluster", red.cluster_strokes)
        v["reduced"].set_lines("salient", red.salient_strokes)
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
        self._refresh_backgrounds(only=("kernels", "reconstruction"))

    def _set_snapshot(self, snap: SnapshotResult, kernels: bool = True) -> None:
        self._reconstruction = snap.reconstruction
        self._residual = snap.residual
        if kernels:
            self.show_kernels(snap.kernels)

    def show_kernels(self, geo: KernelGeometry) -> None:
        """Draw ``geo`` in view 4 (its mode decides what is drawn)."""
        self._geometry = geo
        view = self.views["kernels"]
        for cat in KERNEL_CATEGORIES:
            view.set_points(cat, geo.centres[cat])
        view.set_lines("link", geo.pair_links)
        terr = geo.territories
        if terr is not None:
            self.territory_bounds.setImage(terr.boundaries, levels=(0, 1), autoLevels=False)
            self.territory_fill_item.setImage(terr.fill, levels=(0.0, 1.0), autoLevels=False)
            self._fit_item(self.territory_bounds)
            self._fit_item(self.territory_fill_item)
        self._min_axis = -1.0
        self._draw_ellipses()
        self._apply_kernel_visibility()

    @property
    def geometry_shown(self) -> KernelGeometry | None:
        """The kernel geometry view 4 draws now."""
        return self._geometry

    def _draw_ellipses(self) -> None:
        """(Re)build the ellipse polylines for the current zoom: a semi-axis is
        at least :data:`MIN_ELLIPSE_PX` screen pixels.  Cheap (numpy, no
        model evaluation); skipped while the zoom has not changed."""
        geo = self._geometry
        view = self.views["kernels"]
        if geo is None or self.kernel_mode != "ellipses":
            if self._min_axis != 0.0:
                for cat in KERNEL_CATEGORIES:
                    for level in range(len(SHARE_LEVELS)):
                        view.set_lines(f"{cat}@{level}", np.zeros((0, 2)))
                self._min_axis = 0.0
            return
        px, _py = view.getViewBox().viewPixelSize()
        min_axis = MIN_ELLIPSE_PX * float(px) if np.isfinite(px) and px > 0 else 0.0
        if self._min_axis > 0 and abs(min_axis - self._min_axis) <= 0.05 * self._min_axis:
            return
        self._min_axis = min_axis
        for cat in KERNEL_CATEGORIES:
            mu = geo.centres[cat]
            axes = geo.axes.get(cat)
            if axes is None:  # geometry made without axes: draw its polylines as they are
                view.set_lines(f"{cat}@{len(SHARE_LEVELS) - 1}", geo.ellipses[cat])
                continue
            classes = geo.share_classes(cat)
            for level in range(len(SHARE_LEVELS)):
                if classes is None:
                    sel = slice(None) if level == len(SHARE_LEVELS) - 1 else slice(0, 0)
                    pts = ellipse_polylines_of(mu[sel], axes[sel], min_axis, float(px))
                else:
                    pick = classes == level
                    pts = ellipse_polylines_of(mu[pick], axes[pick], min_axis, float(px))
                view.set_lines(f"{cat}@{level}", pts)

    def kernel_line_data(self, category: str) -> NDArray[np.float64]:
        """The ellipse points drawn for ``category`` (all opacity classes)."""
        view = self.views["kernels"]
        parts = [view.line_data(f"{category}@{lv}") for lv in range(len(SHARE_LEVELS))]
        return np.concatenate(parts) if parts else np.zeros((0, 2))

    # -- inspection ---------------------------------------------------------------
    def set_highlight(self, weight_map: NDArray[np.float32] | None) -> None:
        """Show (or hide, with None) a kernel's weight map over views 4 and 5."""
        self._highlight = weight_map
        for name in ("kernels", "reconstruction"):
            mask = self.views[name].mask
            if weight_map is None:
                mask.setVisible(False)
            else:
                mask.setImage(weight_map, levels=(0.0, 1.0), autoLevels=False)
                self._fit_item(mask)
                mask.setVisible(True)

    def show_inspection(self, result: InspectResult | None) -> None:
        """Show a kernel looked at closely: its weight map as a heat overlay,
        its ellipse and its territory outlined (views 4 and 5); None clears."""
        self._inspected = result
        if result is None:
            self.set_highlight(None)
            self.views["kernels"].set_lines("selected", np.zeros((0, 2)))
            for item in self.outlines.values():
                item.setVisible(False)
            return
        self.set_highlight(result.weight_map)
        info = result.info
        axes = np.array([[info.major, info.minor, info.angle_deg]])
        if self._original is not None:
            limit = float(np.hypot(*self._original.shape[:2]))
            axes[:, :2] = np.minimum(axes[:, :2], limit)
        self.views["kernels"].set_lines(
            "selected", ellipse_polylines_of(np.array([[info.x, info.y]]), axes, self._min_axis_now())
        )
        for item in self.outlines.values():
            item.setImage(result.outline, levels=(0, 1), autoLevels=False)
            self._fit_item(item)
            item.setVisible(True)

    def _min_axis_now(self) -> float:
        px, _py = self.views["kernels"].getViewBox().viewPixelSize()
        return MIN_ELLIPSE_PX * float(px) if np.isfinite(px) and px > 0 else 0.0

    @property
    def inspected(self) -> InspectResult | None:
        """The kernel inspection shown now (None: none)."""
        return self._inspected

    def clear_inspection(self) -> None:
        """Hide every hover label and the inspected kernel (a new image, new
        parameters, a new run: what they said no longer holds)."""
        for view in self.views.values():
            view.hide_hover()
        self.show_inspection(None)

    def reconstruction(self) -> NDArray[np.float32] | None:
        """The reconstruction shown in view 5 now, (H, W) float32, or (H, W, 3)
        for a colour model (a preview while training), or None."""
        return self._reconstruction

    @property
    def highlight(self) -> NDArray[np.float32] | None:
        return self._highlight

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

    def _fit_item(self, item: pg.ImageItem, rows: int | None = None, cols: int | None = None) -> None:
        """Stretch ``item`` over the whole image (previews have fewer pixels);
        ``rows x cols`` image pixels when given (a max-pooled mask's padded size)."""
        if self._original is None or item.image is None:
            return
        h, w = self._original.shape[:2]
        h = h if rows is None else rows
        w = w if cols is None else cols
        item.setRect(QRectF(-0.5, -0.5, float(w), float(h)))

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
            self._fit_item(item, rows=mask.shape[0] * factor if factor > 1 else h,
                           cols=mask.shape[1] * factor if factor > 1 else w)

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
        bg, fg, edge = t.background, t.foreground, t.color("edge")
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
                base.setLookupTable(_lut(
                    (bg.red(), bg.green(), bg.blue(), 255), (fg.red(), fg.green(), fg.blue(), 255)
                ))
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
                    view.mask.setLookupTable(_lut((0, 0, 0, 0), (edge.red(), edge.green(), edge.blue(), 255)))
                view.mask.setVisible(show_mask)
                self._draw_edges(force=True)
            elif name == "segments":  # the superpixel boundaries over the image
                bounds = self._superpixels
                if bounds is not None:
                    c = t.color("superpixel")
                    view.mask.setLookupTable(_lut((0, 0, 0, 0), (c.red(), c.green(), c.blue(), 255)))
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
                view.scene().render(painter, QRectF(0, 0, w * scale, h * scale), source,
                                    Qt.AspectRatioMode.IgnoreAspectRatio)
            finally:
                painter.end()
        finally:
            self._exporting = False
            vb.setRange(xRange=saved[0], yRange=saved[1], padding=0.0)
            self._draw_edges()
            for v in hidden:
                v.hover_text.setVisible(True)
        return _qimage_rgb(image)

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

