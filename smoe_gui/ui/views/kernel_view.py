"""View 4's overlays and the kernel inspection, as a mixin of
:class:`~smoe_gui.ui.views.stage_views.StageViews`.

View 4 has three modes (:data:`~smoe_gui.ui.control.geometry.KERNEL_MODES`):
centres and pair links, 1-σ ellipses (clipped to the image, at least
:data:`MIN_ELLIPSE_PX` screen pixels, faded by each kernel's gate share) and
gate territories (the kernel of largest gate weight per pixel: boundaries over
the image, optionally filled with each territory's expert value).  Background
kernels can be hidden.  An inspected kernel shows its weight map as a heat
overlay over views 4 and 5, its ellipse and its territory outlined.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import QRectF, SignalInstance
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QWidget

from ..control.density import MIN_ELLIPSE_PX as DENSITY_MIN_ELLIPSE_PX
from ..control.density import DensityLevel, density_level, thin_index
from ..control.geometry import (
    KERNEL_CATEGORIES,
    KERNEL_MODES,
    SHARE_LEVELS,
    KernelGeometry,
    ellipse_polylines_of,
    max_pool_mask,
    minor_categories,
)
from ..control.jobs import InspectResult
from ..theme import Theme
from .legend import legend_html
from .view_items import StageView

__all__ = ["KERNEL_MODE_TITLES", "MIN_ELLIPSE_PX", "KernelViewMixin", "centre_size"]

#: Titles of the kernel view's modes (the mode selector's entries).
KERNEL_MODE_TITLES: dict[str, str] = {
    "centres": "centres and pair links",
    "ellipses": "1-σ ellipses (faded by gate share)",
    "territories": "gate territories (argmax w_i)",
}

#: Smallest semi-axis of a drawn ellipse, in screen pixels, at the full
#: marker size (smaller where the kernels are dense, ui/control/density.py).
MIN_ELLIPSE_PX = DENSITY_MIN_ELLIPSE_PX

#: Marker sizes (screen pixels) of kernel centres per mode.
_CENTRE_SIZE = {"centres": 5.0, "ellipses": 4.0, "territories": 4.0}


def centre_size(mode: str, category: str) -> float:
    """Marker diameter (screen px): background and grid kernels smaller, so
    that the edge pairs stand out."""
    size = _CENTRE_SIZE[mode]
    return size - 1.5 if category in minor_categories() else size


class KernelViewMixin:
    """View 4's mode, background toggle, territory fill, ellipses and the
    inspected kernel; mixed into ``StageViews``, which creates the items
    named below."""

    views: dict[str, StageView]
    kernel_mode: str
    show_background: bool
    territory_fill: bool
    territory_bounds: pg.ImageItem
    territory_fill_item: pg.ImageItem
    outlines: dict[str, pg.ImageItem]
    legend: QLabel
    theme: Theme
    kernel_options_changed: SignalInstance
    _geometry: KernelGeometry | None
    _inspected: InspectResult | None
    _highlight: NDArray[np.float32] | None
    _original: NDArray[np.float32] | None
    _min_axis: float
    _drawn_px: float = 0.0
    _bounds_factor: int = 0
    #: How the overlay is drawn at the current zoom (None before the first drawing).
    density: DensityLevel | None = None

    def _fit_item(
        self, item: pg.ImageItem, rows: int | None = None, cols: int | None = None
    ) -> None:
        """Stretch ``item`` over the whole image (previews have fewer pixels);
        ``rows x cols`` image pixels when given (a max-pooled mask's padded size)."""
        if self._original is None or item.image is None:
            return
        h, w = self._original.shape[:2]
        h = h if rows is None else rows
        w = w if cols is None else cols
        item.setRect(QRectF(-0.5, -0.5, float(w), float(h)))

    def _show_legend(self) -> None:
        method = getattr(self, "legend_method", None)  # whose result is shown (None: all)
        views = getattr(self, "legend_views", None)  # the views shown (None: all)
        self.legend.setText(
            legend_html(self.theme, self.kernel_mode, self.territory_fill, method, views)
        )

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
        self.background_box.setToolTip(
            "Show the background (and grid) kernels' markers and ellipses"
        )
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
            self.views["kernels"].points[cat].setSize(centre_size(mode, cat))
        self._min_axis = -1.0
        self._apply_kernel_visibility()
        self._draw_ellipses()
        self._show_legend()
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
        self._show_legend()

    def _category_visible(self, cat: str) -> bool:
        return self.show_background or cat not in minor_categories()

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

    def show_kernels(self, geo: KernelGeometry) -> None:
        """Draw ``geo`` in view 4 (its mode decides what is drawn)."""
        self._geometry = geo
        view = self.views["kernels"]
        for cat in KERNEL_CATEGORIES:
            view.set_points(cat, geo.centres[cat])
        view.set_lines("link", geo.pair_links)
        terr = geo.territories
        if terr is not None:
            self._bounds_factor = 0
            self._draw_territory_bounds()
            self.territory_fill_item.setImage(terr.fill, levels=(0.0, 1.0), autoLevels=False)
            self._fit_item(self.territory_fill_item)
        self._min_axis = -1.0
        self._draw_ellipses()
        self._apply_kernel_visibility()

    @property
    def geometry_shown(self) -> KernelGeometry | None:
        """The kernel geometry view 4 draws now."""
        return self._geometry

    def _draw_ellipses(self) -> None:
        """(Re)draw the overlay for the current zoom and kernel density
        (:func:`~smoe_gui.ui.control.density.density_level`): marker sizes,
        the kernels drawn (thinned where they are denser than the markers),
        their ellipses (a semi-axis at least the level's screen minimum) and
        the territory boundaries' opacity.  Cheap (numpy, no model
        evaluation); skipped while the zoom has not changed by 5 %."""
        geo = self._geometry
        view = self.views["kernels"]
        px, _py = view.getViewBox().viewPixelSize()
        px = float(px)
        if geo is None or self._original is None or not np.isfinite(px) or px <= 0:
            if self._min_axis != 0.0:
                self._clear_ellipses()
                self._min_axis = 0.0
            return
        if self._min_axis > 0 and abs(px - self._drawn_px) <= 0.05 * self._drawn_px:
            return
        self._drawn_px = px
        h, w = self._original.shape[:2]
        largest = _CENTRE_SIZE[self.kernel_mode]
        level = density_level(geo.n_kernels, (h, w), px, largest)
        self.density = level
        shown = [c for c in KERNEL_CATEGORIES if self._category_visible(c)]
        keep = thin_index(
            {c: geo.centres[c] for c in shown},
            {c: geo.index[c] for c in shown if c in geo.index},
            level.cell,
        )
        minor = minor_categories()  # kinds that tile the image: smaller markers
        for cat in KERNEL_CATEGORIES:
            item = view.points[cat]
            small = cat in minor
            item.setSize(level.marker_px * (0.7 if small else 1.0))
            item.set_outlined(level.outline)
            item.set_shown(keep.get(cat))
        pairs = keep.get("pair")
        if pairs is not None and len(geo.pair_links):
            links = np.unique(pairs // 2)
            ends = np.stack([2 * links, 2 * links + 1], axis=1).reshape(-1)
            view.set_lines("link", geo.pair_links[ends[ends < len(geo.pair_links)]])
        else:
            view.set_lines("link", geo.pair_links)
        self.territory_bounds.setOpacity(level.boundary_alpha)
        self._draw_territory_bounds()
        if self.kernel_mode != "ellipses":
            self._clear_ellipses()
            self._min_axis = level.ellipse_min_px * px
            return
        min_axis = level.ellipse_min_px * px
        self._min_axis = min_axis
        for cat in KERNEL_CATEGORIES:
            mu = geo.centres[cat]
            axes = geo.axes.get(cat)
            if axes is None:  # geometry made without axes: draw its polylines as they are
                view.set_lines(f"{cat}@{len(SHARE_LEVELS) - 1}", geo.ellipses[cat])
                continue
            sel = keep.get(cat, np.arange(len(mu)))
            classes = geo.share_classes(cat)
            for lv in range(len(SHARE_LEVELS)):
                if classes is None:
                    pick = sel if lv == len(SHARE_LEVELS) - 1 else sel[:0]
                else:
                    pick = sel[classes[sel] == lv]
                pts = ellipse_polylines_of(mu[pick], axes[pick], min_axis, px)
                view.set_lines(f"{cat}@{lv}", pts)

    def _draw_territory_bounds(self) -> None:
        """The territory boundaries max-pooled to the screen when a boundary
        pixel is smaller than a screen pixel (nearest sampling would drop most
        of the 1-px lines, as in view 1)."""
        geo = self._geometry
        terr = None if geo is None else geo.territories
        if terr is None or self._original is None:
            return
        px, _py = self.views["kernels"].getViewBox().viewPixelSize()
        bounds = terr.boundaries
        h, w = self._original.shape[:2]
        per_pixel = w / max(bounds.shape[1], 1)  # image px per boundary pixel
        ratio = float(px) / per_pixel if np.isfinite(px) and px > 0 else 1.0
        factor = max(1, int(np.floor(ratio + 1e-6)))
        if factor == self._bounds_factor:
            return
        self._bounds_factor = factor
        pooled = max_pool_mask(bounds, factor)
        self.territory_bounds.setImage(pooled, levels=(0, 1), autoLevels=False)
        bh, bw = bounds.shape
        scale_y, scale_x = h / bh, w / bw
        rows, cols = pooled.shape[0] * factor, pooled.shape[1] * factor
        self.territory_bounds.setRect(
            QRectF(-0.5, -0.5, float(cols * scale_x), float(rows * scale_y))
        )

    def _clear_ellipses(self) -> None:
        view = self.views["kernels"]
        for cat in KERNEL_CATEGORIES:
            for level in range(len(SHARE_LEVELS)):
                view.set_lines(f"{cat}@{level}", np.zeros((0, 2)))

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
            "selected",
            ellipse_polylines_of(np.array([[info.x, info.y]]), axes, self._min_axis_now()),
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

    @property
    def highlight(self) -> NDArray[np.float32] | None:
        return self._highlight
