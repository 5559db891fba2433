"""Training plots: the PSNR curve (``psnr-plot``), the kernel count
(``kernel-plot``) and the expert-initialisation PSNR per iteration
(``expert-plot``, the paper's Fig. 3).

Curves are created once per label and updated with ``setData``, at most
:data:`PLOT_REFRESH_MS` apart while training streams batches in: a repaint of
a plot costs a few milliseconds of the GUI thread (and of the GIL the training
thread needs), and the eye gains nothing from more than a few per second.

The grid is a :class:`pyqtgraph.GridItem` behind the curves rather than the
axes' ``showGrid``: the axes' grid lines are replayed from a picture that
spans the whole plot on every repaint, ~7 ms per plot offscreen, against
~0.5 ms for the grid item.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import QTimer
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QWidget

from ...core import registry
from ...core.metrics import PSNR_PLOT_MAX_DB
from ...core.params import METHODS
from ...core.train.runs import FitHistory
from ..control.jobs import ProgressBatch
from ..theme import Theme
from .view_items import fixed_si_prefix

__all__ = [
    "PHASE_ROWS",
    "PLOT_REFRESH_MS",
    "ExpertPlot",
    "IntegerAxis",
    "LegibleAxis",
    "TrainingPlots",
    "add_grid",
    "curve_labels",
    "curve_name",
]

#: Shortest time between two redraws of the training curves while batches arrive.
PLOT_REFRESH_MS = 250


def add_grid(plot: pg.PlotWidget) -> pg.GridItem:
    """A light grid behind the curves of ``plot`` (its pen is set by the theme)."""
    grid = pg.GridItem(textPen=None)
    grid.setTickSpacing(
        x=[None, None], y=[None, None]
    )  # the two coarsest levels, like the axes' ticks
    grid.setZValue(-100)
    plot.addItem(grid, ignoreBounds=True)
    return grid


#: Closest two tick labels of a vertical axis may be, in text heights.
MIN_TICK_ROWS = 1.3


class LegibleAxis(pg.AxisItem):
    """A vertical axis whose tick labels never print on top of each other.

    pyqtgraph draws every label of the coarsest tick level, however close: a
    plot 40 px high (the PSNR plot at 1280x720, before training) showed 0, 0.2,
    ..., 1.0 in one smudge.  A level whose ticks lie closer than
    :data:`MIN_TICK_ROWS` text heights keeps every k-th tick, k the least of 2,
    5, 10, 20, 50, ... that spaces them enough (a round step stays round).
    Horizontal axes are left as pyqtgraph makes them.
    """

    def min_gap_px(self) -> float:
        """The least distance in pixels between two labelled ticks."""
        font = self.style.get("tickFont") or self.font()
        return MIN_TICK_ROWS * QFontMetricsF(font).height()

    def tickValues(
        self, minVal: float, maxVal: float, size: float
    ) -> list[tuple[float, list[float]]]:  # noqa: N802,N803
        levels = super().tickValues(minVal, maxVal, size)
        span = float(maxVal) - float(minVal)
        if self.orientation not in ("left", "right") or span <= 0 or size <= 0:
            return levels
        return thin_levels(levels, span, float(size), self.min_gap_px())


def thin_levels(
    levels: list[tuple[float, list[float]]], span: float, size_px: float, gap_px: float
) -> list[tuple[float, list[float]]]:
    """Tick levels ``[(spacing, values), ...]`` of an axis ``size_px`` long showing
    ``span`` data units, each thinned so that its ticks lie ``gap_px`` or more apart
    (:class:`LegibleAxis`); the finer levels that would then repeat or crowd are dropped."""
    out: list[tuple[float, list[float]]] = []
    for spacing, values in levels:
        step = float(spacing)
        if step <= 0 or not values:
            continue
        need = gap_px * span / (step * size_px)  # the least factor that spaces them enough
        k = next((m * 10**e for e in range(16) for m in (1, 2, 5) if m * 10**e >= need), 1)
        if out and (k > 1 or step * k >= out[-1][0]):
            continue  # a finer level too dense to label: its ticks would crowd the coarse ones
        wide = step * k
        kept = [v for v in values if abs(v / wide - round(v / wide)) < 1e-6]
        out.append((wide, kept or list(values)[::k]))
    return out


class IntegerAxis(LegibleAxis):
    """An axis whose ticks are whole numbers only (a kernel count)."""

    def tickValues(
        self, minVal: float, maxVal: float, size: float
    ) -> list[tuple[float, list[float]]]:  # noqa: N802,N803
        levels = super().tickValues(minVal, maxVal, size)
        out = []
        for spacing, values in levels:
            if spacing < 1.0:
                continue
            ints = sorted({float(round(v)) for v in values if abs(v - round(v)) < 1e-9})
            if ints:
                out.append((spacing, ints))
        if not out:
            lo, hi = int(np.ceil(minVal)), int(np.floor(maxVal))
            out = [(1.0, [float(v) for v in range(lo, hi + 1)][:10])]
        return out


#: Text row of each phase's label along its dashed line, from the top of the
#: plot: one row each, so that labels of phases that start at (almost) the
#: same step (merge and finetune are one step apart) never print on top of
#: each other, whatever the plot's height (:func:`phase_label_positions`).  A plot
#: too low for three rows (the PSNR plot at 1280x720) puts all three in the top
#: row instead, merge's text to the left of its line and finetune's to the right.
PHASE_ROWS = {"tiles": 0, "merge": 1, "finetune": 2}


def phase_label_positions(height_px: float, row_px: float, top_px: float = 3.0) -> dict[str, float]:
    """Where each phase label's centre goes along its line (0 = bottom, 1 =
    top) in a plot ``height_px`` high with text rows ``row_px`` high: row
    ``PHASE_ROWS[phase]`` below ``top_px``, every label inside the plot (rows
    squeezed to fit a plot lower than three of them)."""
    h = max(float(height_px), 1.0)
    row = max(min(float(row_px), (h - 2.0 * top_px) / len(PHASE_ROWS)), 1.0)
    return {
        phase: float(np.clip(1.0 - (top_px + (r + 0.5) * row) / h, 0.0, 1.0))
        for phase, r in PHASE_ROWS.items()
    }

def curve_labels() -> tuple[str, ...]:
    """Curve labels: a normal run, and one run per method in a Compare."""
    return ("train", *METHODS)


def curve_name(label: str) -> str:
    """The legend text of run ``label`` (a method's ``curve_name``)."""
    if label == "train":
        return "training"
    if label in METHODS:
        return str(getattr(registry.get(label), "curve_name", "") or f"{label} init")
    return f"{label} init"


class TrainingPlots:
    """The PSNR plot and the kernel-count plot beside it.

    Attributes
    ----------
    psnr_plot, kernel_plot : pg.PlotWidget
    data : dict label -> FitHistory
        Every event of each run (the one history type of the CLI and the experiments).
    x_axis : str
        ``"steps"`` or ``"seconds"``.
    show_tile_psnr : bool
        Whether each tile's own PSNR is drawn (thin, faded) besides the
        whole-image curve during ``tiles``.

    The main curve is the whole-image PSNR (``FitHistory.whole_image()``):
    during ``tiles`` the measurements of the tiles trained so far with the
    initial model elsewhere, then every step.  With several runs (Compare)
    their names are written in the title, in their colours, outside the data.
    """

    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        self.x_axis = "steps"
        self.show_tile_psnr = False
        self.theme = theme
        self.labels_shown: tuple[str, ...] = ("train",)
        self.psnr_plot = pg.PlotWidget(parent=parent, axisItems={"left": LegibleAxis("left")})
        self.psnr_plot.setObjectName("psnr-plot")
        self.kernel_plot = pg.PlotWidget(parent=parent, axisItems={"left": IntegerAxis("left")})
        self.kernel_plot.setObjectName("kernel-plot")
        self.psnr_plot.setLabel("left", "PSNR", units="dB")
        self.kernel_plot.setLabel("left", "kernels")
        for plot in (self.psnr_plot, self.kernel_plot):  # the time axis keeps its prefix
            fixed_si_prefix(plot, ("left", "right", "top"))
        self.curve_labels = curve_labels()
        self.data: dict[str, FitHistory] = {label: FitHistory() for label in self.curve_labels}
        self.psnr_curves: dict[str, pg.PlotDataItem] = {}
        self.tile_curves: dict[str, pg.PlotDataItem] = {}
        self.kernel_curves: dict[str, pg.PlotDataItem] = {}
        for label in self.curve_labels:
            self.psnr_curves[label] = self.psnr_plot.plot(name=curve_name(label))
            self.tile_curves[label] = self.psnr_plot.plot()
            self.tile_curves[label].setZValue(-1)
            self.tile_curves[label].setVisible(False)
            self.kernel_curves[label] = self.kernel_plot.plot()
        self.phase_lines: dict[str, pg.InfiniteLine] = {}
        for phase in ("tiles", "merge", "finetune"):
            line = pg.InfiniteLine(
                angle=90,
                movable=False,
                label=phase,
                labelOpts={"position": 0.9, "anchors": [(0, 0.5), (0, 0.5)]},
            )
            line.setVisible(False)
            self.psnr_plot.addItem(line, ignoreBounds=True)
            self.phase_lines[phase] = line
        self.psnr_plot.getViewBox().sigResized.connect(self._place_phase_labels)
        for plot in (self.psnr_plot, self.kernel_plot):  # room for the top tick's text
            plot.getPlotItem().setContentsMargins(0, 6, 6, 0)
        self.psnr_plot.setXLink(self.kernel_plot)
        self.grids = [add_grid(self.psnr_plot), add_grid(self.kernel_plot)]
        self._dirty: set[str] = set()
        self._refresh = QTimer(self.psnr_plot)
        self._refresh.setSingleShot(True)
        self._refresh.setInterval(PLOT_REFRESH_MS)
        self._refresh.timeout.connect(self.flush)
        self.apply_theme(theme)
        self._update_axis_labels()
        self.show_labels(("train",))

    def _place_phase_labels(self, *_args: object) -> None:
        line = next(iter(self.phase_lines.values()))
        row = line.label.textItem.boundingRect().height()  # the text and its margins
        height = self.psnr_plot.getViewBox().height()
        one_row = height < len(PHASE_ROWS) * row + 6.0  # 1280x720: about 45 px, 3 rows do not fit
        if one_row:  # one row at the top: merge's text left of its line, finetune's right of its
            top = float(np.clip(1.0 - (3.0 + 0.5 * row) / max(height, 1.0), 0.0, 1.0))
            positions = dict.fromkeys(PHASE_ROWS, top)
        else:
            positions = phase_label_positions(height, row)
        for phase, pos in positions.items():
            label = self.phase_lines[phase].label
            side = (1, 0.5) if one_row and phase == "merge" else (0, 0.5)
            label.anchors = [side, side]
            label.setPosition(pos)
            label.updatePosition()

    def apply_theme(self, theme: Theme) -> None:
        for plot in (self.psnr_plot, self.kernel_plot):
            plot.setBackground(theme.background)
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                axis.setPen(theme.foreground)
                axis.setTextPen(theme.foreground)
        for grid in self.grids:
            grid.setPen(pg.mkPen(theme.grid))
        for label in self.curve_labels:
            pen = pg.mkPen(theme.color(f"curve-{label}"), width=2)
            self.psnr_curves[label].setPen(pen)
            self.kernel_curves[label].setPen(pen)
            self.tile_curves[label].setPen(pg.mkPen(theme.color(f"curve-{label}", 90), width=1))
        for line in self.phase_lines.values():
            c = theme.grid
            line.setPen(pg.mkPen(c, style=pg.QtCore.Qt.PenStyle.DashLine))
            line.label.setColor(theme.foreground)
        self.theme = theme
        self._set_title()

    def show_labels(self, labels: tuple[str, ...]) -> None:
        """Show only the curves of ``labels``; with several, the title names
        them in their colours (a legend outside the data)."""
        self.labels_shown = tuple(labels)
        for label in self.curve_labels:
            visible = label in labels
            self.psnr_curves[label].setVisible(visible)
            self.tile_curves[label].setVisible(visible and self.show_tile_psnr)
            self.kernel_curves[label].setVisible(visible)
        self._set_title()

    def set_show_tile_psnr(self, show: bool) -> None:
        """Also draw, thin and faded, each tile's own PSNR during ``tiles``."""
        self.show_tile_psnr = bool(show)
        self.show_labels(self.labels_shown)

    def legend_text(self) -> str:
        """What the title says about the curves (plain text)."""
        parts = ["whole-image PSNR"]
        if len(self.labels_shown) > 1:
            parts.append(" vs ".join(curve_name(label) for label in self.labels_shown))
        if self.show_tile_psnr:
            parts.append("faded: the current tile's PSNR")
        return " · ".join(parts)

    def _set_title(self) -> None:
        fg = self.theme.foreground.name()
        html = f"<span style='color:{fg}'>whole-image PSNR</span>"
        if len(self.labels_shown) > 1:
            html += " &nbsp;" + " ".join(
                f"<span style='color:{self.theme.hex(f'curve-{label}')}'>━ "
                f"{curve_name(label)}</span>"
                for label in self.labels_shown
            )
        if self.show_tile_psnr:
            html += f" &nbsp;<span style='color:{fg}'>(faded: the current tile's PSNR)</span>"
        self.psnr_plot.getPlotItem().setTitle(html, size="9pt")

    def clear(self, labels: tuple[str, ...]) -> None:
        """Forget the data of ``labels`` (a new run)."""
        for label in labels:
            self._dirty.discard(label)
            self.data[label] = FitHistory()
            self.psnr_curves[label].setData([], [])
            self.tile_curves[label].setData([], [])
            self.kernel_curves[label].setData([], [])
        for line in self.phase_lines.values():
            line.setVisible(False)

    def append(self, batch: ProgressBatch) -> None:
        """Add a batch of fit events to its run's curves; they are drawn within
        :data:`PLOT_REFRESH_MS` (or at once by :meth:`flush`)."""
        self.data[batch.label].extend(batch.history)
        self._dirty.add(batch.label)
        if not self._refresh.isActive():
            self._refresh.start()

    def flush(self) -> None:
        """Draw every run whose curves have new points."""
        self._refresh.stop()
        for label in sorted(self._dirty):
            self._redraw(label)
        if self._dirty:
            # the new ranges now, not while painting: a range changed during a
            # paint (pyqtgraph's auto-range, the linked x axis) schedules another,
            # and each batch of points was painted three times
            for plot in (self.kernel_plot, self.psnr_plot):
                plot.getViewBox().prepareForPaint()
        self._dirty.clear()

    def set_x_axis(self, axis: str) -> None:
        """Plot against ``"steps"`` or ``"seconds"``."""
        if axis not in ("steps", "seconds"):
            raise ValueError(f"x axis must be 'steps' or 'seconds', got {axis!r}")
        self.x_axis = axis
        self._update_axis_labels()
        for label in self.curve_labels:
            self._redraw(label)

    def _update_axis_labels(self) -> None:
        text, units = ("step", None) if self.x_axis == "steps" else ("time", "s")
        self.psnr_plot.setLabel("bottom", text, units=units)
        self.kernel_plot.setLabel("bottom", text, units=units)

    def _redraw(self, label: str) -> None:
        history = self.data[label]
        arrays = history.arrays()
        xkey = "step" if self.x_axis == "steps" else "elapsed_s"
        x = arrays[xkey].astype(np.float64)
        # the whole image's PSNR (an exact reconstruction's inf at the axis' ceiling)
        whole = history.whole_image().arrays()
        self.psnr_curves[label].setData(
            whole[xkey].astype(np.float64),
            np.minimum(whole["psnr_db"], PSNR_PLOT_MAX_DB),
            connect="finite",
        )
        tiles = arrays["phase"] == "tiles"
        if tiles.any():
            self.tile_curves[label].setData(
                x[tiles], np.minimum(arrays["psnr_db"][tiles], PSNR_PLOT_MAX_DB), connect="finite"
            )
        else:
            self.tile_curves[label].setData([], [])
        k = arrays["n_kernels"].astype(np.float64)
        self.kernel_curves[label].setData(x, k)
        if len(k):  # a constant count gets a range of whole numbers around it
            lo, hi = float(np.min(k)), float(np.max(k))
            if hi - lo < 4:
                self.kernel_plot.setYRange(lo - 2, hi + 2, padding=0)
            else:
                self.kernel_plot.enableAutoRange(axis="y")
        starts = self.data[label].phase_starts()
        for phase, line in self.phase_lines.items():
            if phase in starts:
                step, seconds = starts[phase]
                line.setValue(step if self.x_axis == "steps" else seconds)
                line.setVisible(True)

    def csv_text(self) -> str:
        """Every run's points as CSV: a ``run`` column, then
        :data:`smoe_gui.core.train.runs.HISTORY_COLUMNS`."""
        parts = [
            self.data[label].csv_text(label) for label in self.curve_labels if len(self.data[label])
        ]
        if not parts:
            return FitHistory().csv_text("train")
        return parts[0] + "".join(p.split("\n", 1)[1] for p in parts[1:])


class ExpertPlot(pg.PlotWidget):
    """PSNR of the initial reconstruction per expert-refinement iteration (Fig. 3)."""

    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        axes = {"left": LegibleAxis("left"), "bottom": IntegerAxis("bottom")}  # whole iterations
        super().__init__(parent=parent, axisItems=axes)
        self.setObjectName("expert-plot")
        self.setTitle("Expert initialisation (Fig. 3)")
        self.setLabel("left", "PSNR", units="dB")
        self.setLabel("bottom", "iteration (0 = sampled)")
        fixed_si_prefix(self)
        self.curve = self.plot(symbol="o", symbolSize=5)
        self.grid = add_grid(self)
        self.apply_theme(theme)

    def apply_theme(self, theme: Theme) -> None:
        self.setBackground(theme.background)
        for name in ("left", "bottom"):
            self.getAxis(name).setPen(theme.foreground)
            self.getAxis(name).setTextPen(theme.foreground)
        self.getPlotItem().titleLabel.setText(
            "Expert initialisation (Fig. 3)", color=theme.foreground.name()
        )
        color = theme.color(f"curve-{METHODS[0]}")  # the default method's expert stage
        self.curve.setPen(pg.mkPen(color, width=2))
        self.curve.setSymbolBrush(pg.mkBrush(color))
        self.curve.setSymbolPen(None)
        self.grid.setPen(pg.mkPen(theme.grid))

    def set_history(self, psnr_db: list[float]) -> None:
        """Show ``psnr_db[i]`` after iteration ``i`` (0: sampled experts)."""
        y = np.minimum(
            np.asarray(psnr_db, dtype=np.float64), PSNR_PLOT_MAX_DB
        )  # inf: at the ceiling
        self.curve.setData(np.arange(len(y), dtype=np.float64), y, connect="finite")

    def history(self) -> NDArray[np.float64]:
        _x, y = self.curve.getData()
        return np.zeros(0) if y is None else np.asarray(y)
