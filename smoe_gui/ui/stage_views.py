"""The five linked stage views, their legend, and the background toggle.

Views (``objectName``): ``stage-edges``, ``stage-segments``, ``stage-reduced``,
``stage-kernels``, ``stage-reconstruction``.  Each is a pyqtgraph plot whose
items are created once; new results only call ``setData``/``setImage``
(re-plotting every frame would rebuild the items; see docs/gui.md).  Image coordinates: pixel centres at integers, x right,
y down.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from .geometry import KERNEL_CATEGORIES, KernelGeometry
from .jobs import SnapshotResult, StageResult
from .theme import Theme

__all__ = ["BACKGROUND_MODES", "STAGES", "StageView", "StageViews", "widget_rgb"]

#: Stage view names (objectName ``stage-<name>``) and titles.
STAGES: dict[str, str] = {
    "edges": "1  Canny edges",
    "segments": "2  Raw segments",
    "reduced": "3  Reduced segments",
    "kernels": "4  Kernels (μ, Σ)",
    "reconstruction": "5  Reconstruction",
}

#: What the views show under their overlays.
BACKGROUND_MODES = ("stage", "original", "residual")

#: Display range of the residual |original - reconstruction|.
RESIDUAL_LEVELS = (0.0, 0.25)

_EMPTY = np.zeros((0,), dtype=np.float64)


def widget_rgb(widget: QWidget) -> NDArray[np.uint8]:
    """The widget as it is drawn now, ``(H, W, 3)`` uint8 RGB."""
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
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
    """

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
        self.points: dict[str, pg.ScatterPlotItem] = {}
        self.hover_text = pg.TextItem(anchor=(0, 0))
        self.hover_text.setZValue(30)
        self.hover_text.setVisible(False)
        self.addItem(self.hover_text)

    def add_lines(self, key: str, connect: str, width: float = 1.0, z: float = 10) -> pg.PlotCurveItem:
        item = pg.PlotCurveItem(connect=connect)
        item.setZValue(z)
        item._smoe_width = width  # type: ignore[attr-defined]
        self.addItem(item)
        self.lines[key] = item
        return item

    def add_points(self, key: str, size: float = 4.0, z: float = 20) -> pg.ScatterPlotItem:
        item = pg.ScatterPlotItem(size=size, pen=None, pxMode=True)
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
        self.points[key].setData(pos=np.asarray(xy, dtype=np.float64).reshape(-1, 2))

    def line_data(self, key: str) -> NDArray[np.float64]:
        """The (n, 2) points of line item ``key`` as drawn (for tests)."""
        x, y = self.lines[key].getData()
        if x is None:
            return np.zeros((0, 2))
        return np.stack([np.asarray(x), np.asarray(y)], axis=1)

    def point_count(self, key: str) -> int:
        return len(self.points[key].data)


class StageViews(QWidget):
    """The five stage views in a grid (the sixth cell is free for a plot).

    Signals
    -------
    mouse_moved(str, float, float)
        View name and image coordinates under the mouse.
    mouse_clicked(str, float, float)
        View name and image coordinates of a left click.
    """

    mouse_moved = Signal(str, float, float)
    mouse_clicked = Signal(str, float, float)

    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("stage-views")
        self.theme = theme
        self.mode = "stage"
        self.views: dict[str, StageView] = {n: StageView(n, t) for n, t in STAGES.items()}
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        for i, view in enumerate(self.views.values()):
            self.grid.addWidget(view, i // 3, i % 3)
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
        v["kernels"].add_lines("link", "pairs", z=9)
        for cat in KERNEL_CATEGORIES:
            v["kernels"].add_lines(cat, "finite")
            v["kernels"].add_points(cat, size=3)
        self.legend = QLabel()
        self.legend.setObjectName("stage-legend")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)

        self._original: NDArray[np.float32] | None = None
        self._edges: NDArray[np.uint8] | None = None
        self._reconstruction: NDArray[np.float32] | None = None
        self._residual: NDArray[np.float32] | None = None
        self._highlight: NDArray[np.float32] | None = None
        for name, view in self.views.items():
            view.scene().sigMouseMoved.connect(lambda pos, n=name: self._on_move(n, pos))
            view.scene().sigMouseClicked.connect(lambda ev, n=name: self._on_click(n, ev))
        self.apply_theme(theme)

    # -- colours ----------------------------------------------------------------
    def apply_theme(self, theme: Theme) -> None:
        """Take plot, line and legend colours from ``theme`` (palette-based)."""
        self.theme = theme
        bg, fg = theme.background, theme.foreground
        for view in self.views.values():
            view.setBackground(bg)
            view.getPlotItem().titleLabel.setText(
                STAGES[view.name], color=fg.name()
            )
            view.hover_text.setColor(fg)
            view.hover_text.fill = pg.mkBrush(bg.red(), bg.green(), bg.blue(), 215)
            for key, item in view.lines.items():
                color_key = "link" if key == "link" else key
                alpha = 140 if key == "link" else 230
                item.setPen(pg.mkPen(theme.color(color_key, alpha), width=item._smoe_width))  # type: ignore[attr-defined]
            for key, item in view.points.items():
                item.setBrush(pg.mkBrush(theme.color(key)))
        hl = theme.color("highlight")
        for name in ("kernels", "reconstruction"):
            self.views[name].mask.setLookupTable(_ramp_lut((hl.red(), hl.green(), hl.blue())))
        self.legend.setText(self.legend_html())
        self._refresh_backgrounds()

    def legend_html(self) -> str:
        """Rich text saying what each colour means."""
        t = self.theme

        def sw(key: str, text: str, shape: str = "■") -> str:
            return f"<span style='color:{t.hex(key)}'>{shape}</span>&nbsp;{text}"

        parts = [
            "<b>segments</b> " + " ".join(
                sw(f"dir{a}", f"θ={a}°", "━") for a in (0, 90, 45, -45)
            ),
            "<b>reduced</b> " + sw("cluster", "cluster (DBSCAN)", "━") + " " + sw("salient", "salient", "━"),
            "<b>kernels</b> " + " ".join(
                [
                    sw("pair", "edge pair (linked)", "◯"),
                    sw("background", "background", "◯"),
                    sw("grid", "grid", "◯"),
                    sw("trained", "trained / loaded", "◯"),
                ]
            ),
            "<b>weight map</b> " + sw("highlight", "w<sub>i</sub> of the clicked kernel"),
            "<b>edges view</b> " + sw("edge", "edge pixel over original/residual"),
        ]
        return " &nbsp;│&nbsp; ".join(parts)

    # -- data -------------------------------------------------------------------------
    def set_original(self, image: NDArray[np.float32]) -> None:
        """A new image: clear every stage and fit the views to it."""
        new_size = self._original is None or self._original.shape != image.shape
        self._original = image
        self._edges = None
        self._reconstruction = None
        self._residual = None
        self._highlight = None
        for view in self.views.values():
            view.shown_id = -1
            for key in view.lines:
                view.set_lines(key, np.zeros((0, 2)))
            for key in view.points:
                view.set_points(key, np.zeros((0, 2)))
            view.mask.setVisible(False)
            view.hover_text.setVisible(False)
        self._refresh_backgrounds()
        if new_size:
            self.views["edges"].getViewBox().autoRange(padding=0.01)

    def show_result(self, request_id: int, result: StageResult) -> None:
        """Draw every stage of ``result`` (stale results are dropped by the caller)."""
        init = result.init
        self._edges = np.ascontiguousarray(init.edges, dtype=np.uint8)
        v = self.views
        for angle, strokes in result.segment_strokes.items():
            v["segments"].set_lines(f"dir{angle}", strokes)
        red = result.reduced
        v["reduced"].set_lines("cluster", red.cluster_strokes)
        v["reduced"].set_lines("salient", red.salient_strokes)
        v["reduced"].set_points("cluster", red.cluster_centres)
        v["reduced"].set_points("salient", red.salient_centres)
        self._set_snapshot(result.snapshot)
        self._highlight = None
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
        view = self.views["kernels"]
        for cat in KERNEL_CATEGORIES:
            view.set_lines(cat, geo.ellipses[cat])
            view.set_points(cat, geo.centres[cat])
        view.set_lines("link", geo.pair_links)

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

    def reconstruction(self) -> NDArray[np.float32] | None:
        """The reconstruction shown in view 5 now, (H, W) float32 (a preview
        while training), or None."""
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

    def _fit_item(self, item: pg.ImageItem) -> None:
        """Stretch ``item`` over the whole image (previews have fewer pixels)."""
        if self._original is None or item.image is None:
            return
        h, w = self._original.shape
        item.setRect(QRectF(-0.5, -0.5, float(w), float(h)))

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
                base.setImage(self._edges, levels=(0, 1), autoLevels=False)
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
            self._fit_item(base)
            if name == "edges":
                show_mask = choice in ("original", "residual") and self._edges is not None
                if show_mask:
                    view.mask.setImage(self._edges, levels=(0, 1), autoLevels=False)
                    self._fit_item(view.mask)
                    view.mask.setLookupTable(_lut((0, 0, 0, 0), (edge.red(), edge.green(), edge.blue(), 255)))
                view.mask.setVisible(show_mask)

    # -- mouse ----------------------------------------------------------------------------
    def _on_move(self, name: str, scene_pos: object) -> None:
        vb = self.views[name].getViewBox()
        if not vb.sceneBoundingRect().contains(scene_pos):
            return
        p = vb.mapSceneToView(scene_pos)
        self.mouse_moved.emit(name, float(p.x()), float(p.y()))

    def _on_click(self, name: str, event: object) -> None:
        if event.button() != Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            return
        vb = self.views[name].getViewBox()
        p = vb.mapSceneToView(event.scenePos())  # type: ignore[attr-defined]
        self.mouse_clicked.emit(name, float(p.x()), float(p.y()))
