"""The drawing items of the stage views: one stage view (a pyqtgraph plot),
round markers of constant screen size, colour lookup tables, title fitting and
widget grabs.

Image coordinates: pixel centres at integers, x right, y down.  Used by
:mod:`smoe_gui.ui.views.stage_views` (the five views) and
:mod:`smoe_gui.ui.views.kernel_view` (view 4's overlays).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
import pyqtgraph.functions as fn
from numpy.typing import NDArray
from pyqtgraph.Qt.internals import PrimitiveArray
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QImage, QPainter, QPixmap, QResizeEvent
from PySide6.QtWidgets import QWidget

__all__ = [
    "HEAT_MAP",
    "MarkerItem",
    "StageView",
    "blend",
    "fit_title",
    "fixed_si_prefix",
    "fits_width",
    "heat_lut",
    "lut2",
    "qimage_rgb",
    "widget_rgb",
]

_EMPTY = np.zeros((0,), dtype=np.float64)


def widget_rgb(widget: QWidget) -> NDArray[np.uint8]:
    """The widget as it is drawn now, ``(H, W, 3)`` uint8 RGB."""
    return qimage_rgb(widget.grab().toImage())


def qimage_rgb(image: QImage) -> NDArray[np.uint8]:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h = image.width(), image.height()
    buf = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    rows = buf.reshape(h, image.bytesPerLine())[:, : w * 3]
    return rows.reshape(h, w, 3).copy()


def lut2(c0: tuple[int, int, int, int], c1: tuple[int, int, int, int]) -> NDArray[np.uint8]:
    """2-entry RGBA lookup table for a 0/1 image."""
    return np.array([c0, c1], dtype=np.uint8)


def blend(color: QColor, background: QColor, alpha: float) -> QColor:
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
        self._drawn = self._xy
        self._outlined = True

    @property
    def data(self) -> NDArray[np.float64]:
        """(n, 2) positions drawn."""
        return self._xy

    @property
    def drawn(self) -> NDArray[np.float64]:
        """(m, 2) positions painted: :attr:`data`, or the subset of :meth:`set_shown`."""
        return self._drawn

    def set_shown(self, index: NDArray[np.intp] | None) -> None:
        """Paint only ``data[index]`` (thinning where kernels are denser than
        the markers, :mod:`smoe_gui.ui.control.density`); None paints all."""
        self._drawn = self._xy if index is None else self._xy[np.asarray(index, dtype=np.intp)]
        self.update()

    def set_outlined(self, outlined: bool) -> None:
        """Whether the markers carry their outline (small markers do not)."""
        if bool(outlined) != self._outlined:
            self._outlined = bool(outlined)
            self.update()

    def getData(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # noqa: N802 (pyqtgraph style)
        return self._xy[:, 0], self._xy[:, 1]

    def setData(self, pos: NDArray[np.float64]) -> None:  # noqa: N802
        xy = np.ascontiguousarray(np.asarray(pos, dtype=np.float64).reshape(-1, 2))
        self.prepareGeometryChange()
        self._xy = xy
        self._drawn = xy
        self._poly = fn.create_qpolygonf(len(xy))
        if len(xy):
            fn.ndarray_from_qpolygonf(self._poly)[:] = xy
            lo, hi = xy.min(axis=0), xy.max(axis=0)
            self._bounds = QRectF(
                float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])
            )
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
        outline = self._outline if self._outlined else None
        key = (self._size, self._color.rgba(), None if outline is None else outline.rgba(), dpr)
        if self._sprite_key != key:
            side = int(np.ceil((self._size + 2.0) * dpr)) + 2
            pix = QPixmap(side, side)
            pix.fill(Qt.GlobalColor.transparent)
            p = QPainter(pix)
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setPen(Qt.PenStyle.NoPen)
            c = side / 2.0
            if outline is not None:
                r = (self._size / 2.0 + 1.0) * dpr
                p.setBrush(outline)
                p.drawEllipse(QRectF(c - r, c - r, 2 * r, 2 * r))
            r = self._size / 2.0 * dpr
            p.setBrush(self._color)
            p.drawEllipse(QRectF(c - r, c - r, 2 * r, 2 * r))
            p.end()
            self._sprite_pix = pix
            self._sprite_key = key
        return self._sprite_pix

    def paint(
        self, painter: QPainter, _option: object = None, widget: QWidget | None = None
    ) -> None:
        if not len(self._drawn):
            return
        dpr = float(widget.devicePixelRatioF()) if widget is not None else 1.0
        sprite = self._sprite(dpr)
        pts = fn.transformCoordinates(painter.transform(), self._drawn.T)
        pts = fn.clip_array(pts, -(2.0**30), 2.0**30)
        painter.resetTransform()
        self._frags.resize(pts.shape[1])
        frags = self._frags.ndarray()
        frags[:, 0:2] = pts.T
        frags[:, 2:6] = [0.0, 0.0, float(sprite.width()), float(sprite.height())]
        frags[:, 6:10] = [1.0 / dpr, 1.0 / dpr, 0.0, 1.0]
        painter.drawPixmapFragments(*self._frags.drawargs(), sprite)  # type: ignore[call-arg]


def fits_width(metrics: QFontMetrics, room: int, text: str) -> bool:
    return metrics.horizontalAdvance(text) <= room


def fit_title(title: str, caption: str, fits: Callable[[str], bool]) -> str:
    """The title of a view as ``"title  —  caption"``, shortened until ``fits`` it.

    The caption's parts (``" · "``-separated: the method, the model's state,
    more, the kernel count, e.g. ``"edge · trained · 128 steps · K=1373"``) go
    in this order: the middle ones, then the kernel count, then the state; a
    caption ``"method: what"`` (a stage the method does not have, e.g.
    ``"as-smoe: none"``) loses its ``"method: "`` next; then the bare title,
    elided at the end with "…".
    """
    parts = [p for p in caption.split(" · ") if p] if caption else []
    candidates = [parts] if parts else []
    if len(parts) > 3:
        candidates.append(parts[:2] + parts[-1:])
    if len(parts) > 2:
        candidates.append(parts[:2])
    if len(parts) > 1:
        candidates.append(parts[:1])
    if parts and ": " in parts[0]:
        candidates.append([parts[0].split(": ", 1)[1]])
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


def fixed_si_prefix(plot: pg.PlotWidget, axes: tuple[str, ...] = ("left", "bottom", "right", "top")
                    ) -> None:
    """Turn off pyqtgraph's automatic SI prefix on ``axes`` of ``plot`` (pixel
    coordinates, dB, counts: never scaled).  With it on, every range change
    re-renders the axis label as HTML (``QGraphicsTextItem.setHtml``): 70 times,
    5 ms, in one layout pass of the lecture's training step."""
    for name in axes:
        plot.getAxis(name).enableAutoSIPrefix(False)


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
        fixed_si_prefix(self)
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

    def add_lines(
        self, key: str, connect: str, width: float = 1.0, z: float = 10
    ) -> pg.PlotCurveItem:
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
