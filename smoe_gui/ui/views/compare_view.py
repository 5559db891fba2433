"""The reconstructions of a Compare (the two methods' trained models)
side by side, with linked zoom; each view says which run it shows."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QHBoxLayout, QWidget

from ...core.metrics import format_psnr
from ...core.train.runs import FitResult
from ..theme import Theme

__all__ = ["CompareWindow", "run_title"]


def run_title(label: str, result: FitResult) -> str:
    """``"edge · trained · 31.20 dB · 1843 kernels · 2400 steps"``."""
    steps = int(result.history.arrays()["step"][-1]) if len(result.history) else 0
    return (f"{label} · trained · {format_psnr(result.psnr_db)} · "
            f"{result.model.n_kernels} kernels · {steps} steps")


class CompareWindow(QWidget):
    """One linked view per run (``objectName`` ``compare-<label>``), in a
    window of its own (``compare-window``).

    Parameters
    ----------
    image : (H, W) or (H, W, 3) float32
        The image (its size places the reconstructions).
    results : dict label -> FitResult
        The finished runs, in display order.
    """

    def __init__(self, image: NDArray[np.float32], results: dict[str, FitResult], theme: Theme,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName("compare-window")
        self.setWindowTitle("smoe-gui — Compare: reconstructions side by side")
        row = QHBoxLayout(self)
        row.setContentsMargins(2, 2, 2, 2)
        h, w = image.shape[:2]
        self.views: dict[str, pg.PlotWidget] = {}
        first: pg.ViewBox | None = None
        for label, result in results.items():
            view = pg.PlotWidget()
            view.setObjectName(f"compare-{label}")
            view.setBackground(theme.background)
            plot = view.getPlotItem()
            plot.hideAxis("left")
            plot.hideAxis("bottom")
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.setTitle(run_title(label, result), color=theme.foreground.name())
            vb = view.getViewBox()
            vb.setAspectLocked(True)
            vb.invertY(True)
            item = pg.ImageItem(axisOrder="row-major")
            recon = np.ascontiguousarray(np.clip(result.reconstruction, 0.0, 1.0), dtype=np.float32)
            item.setImage(recon, levels=(0.0, 1.0), autoLevels=False)
            item.setRect(QRectF(-0.5, -0.5, float(w), float(h)))
            view.addItem(item)
            if first is None:
                first = vb
                vb.autoRange(padding=0.01)
            else:
                vb.setXLink(first)
                vb.setYLink(first)
            row.addWidget(view)
            self.views[label] = view
        self.resize(min(1600, 40 + 520 * len(results)), 460)

    def title_of(self, label: str) -> str:
        """The title of run ``label``'s view (plain text)."""
        return str(self.views[label].getPlotItem().titleLabel.text)
