"""The kernel panel: the numbers of the inspected kernel and the colour bar of
its weight-map overlay.  Draws what an :class:`~smoe_gui.ui.control.jobs.InspectResult`
holds; computes nothing."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ..control.geometry import KERNEL_CATEGORY_LABELS
from ..control.jobs import InspectResult
from .view_items import heat_lut

__all__ = ["KernelPanel", "kernel_kind_text", "kernel_text"]


def kernel_kind_text(kind: str, short: bool = False) -> str:
    """``"edge pair, initial"``, ``"segment (S-SMoE, AS-SMoE), initial"``,
    ``"trained / loaded"``: what a kernel of category ``kind`` is; ``short``:
    the category's name alone (``"segment, initial"``, for the hover label)."""
    label = KERNEL_CATEGORY_LABELS.get(kind, kind)
    if short:
        label = label.split(" (")[0]
    return label if kind == "trained" else f"{label}, initial"


def kernel_text(result: InspectResult, partner: int | None, n_kernels: int, image_area: float,
                kind: str = "trained") -> str:
    """The panel's text (plain, three lines).

    Parameters
    ----------
    result : InspectResult
    partner : int or None
        The other kernel of its edge pair (None: no pair, or not known).
    n_kernels : int
        Kernels of the model (the share is also given relative to an even split).
    image_area : float
        Pixels of the image.
    kind : str
        What the kernel is (:data:`~smoe_gui.ui.control.geometry.KERNEL_CATEGORIES`,
        :meth:`smoe_gui.ui.control.session.Session.kernel_kind`).
    """
    info = result.info
    s = info.sigma
    if partner is not None:
        pair = f" · pair partner: kernel {partner}"
    elif kind == "trained":
        pair = " · pair partner: none (or renumbered by training)"
    else:
        pair = ""  # an initial kernel of a kind that has no pairs
    even = result.share * n_kernels
    return "\n".join([
        f"kernel {info.index} of {n_kernels} ({kernel_kind_text(kind)}){pair} · "
        f"μ = ({info.x:.2f}, {info.y:.2f}) px · α = {info.alpha:.4g} · {info.m_text(4)}",
        f"1-σ axes {info.major:.2f} × {info.minor:.2f} px at {info.angle_deg:.1f}° · "
        f"Σ = [[{s[0, 0]:.4g}, {s[0, 1]:.4g}], [{s[1, 0]:.4g}, {s[1, 1]:.4g}]] 1/px²",
        f"gate share {100 * result.share:.3f} % of the image ({even:.2f} × an even split) · "
        f"territory {result.area:.0f} px ({100 * result.area / max(image_area, 1.0):.2f} %)",
    ])


class KernelPanel(QWidget):
    """Numbers of the inspected kernel, and the heat colour bar of ``w_i``.

    Always shown (three lines), so that inspecting a kernel never changes the
    views' size; without one it says how to inspect.  ``objectName``:
    ``kernel-panel``.
    """

    #: What the panel says while no kernel is inspected.
    PLACEHOLDER = ("Inspect: hover over a kernel in view 4 or 5 for its numbers; click it for its "
                   "weight map w_i (heat), its ellipse and territory outlined, and here:\n"
                   "μ, Σ axes and angle, α, m, its pair partner, its gate share and its "
                   "territory's area.  Click away to clear.\n")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("kernel-panel")
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        self.text = QLabel("")
        self.text.setObjectName("kernel-panel-text")
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setWordWrap(True)  # its width never sets the window's minimum (1280x720 screens)
        row.addWidget(self.text, 1)
        bar_box = QVBoxLayout()
        bar_box.setSpacing(0)
        title = QLabel("w<sub>i</sub> (heat over views 4-5)")
        title.setTextFormat(Qt.TextFormat.RichText)
        bar_box.addWidget(title)
        self.colour_bar = QLabel()
        self.colour_bar.setObjectName("kernel-colour-bar")
        lut = heat_lut()
        strip = np.ascontiguousarray(np.repeat(lut[None, :, :3], 14, axis=0))
        image = QImage(
            strip.data,
            strip.shape[1],
            strip.shape[0],
            strip.strides[0],
            QImage.Format.Format_RGB888,
        )
        self.colour_bar.setPixmap(QPixmap.fromImage(image.copy()).scaled(200, 14))
        bar_box.addWidget(self.colour_bar)
        ticks = QHBoxLayout()
        ticks.addWidget(QLabel("0"))
        ticks.addStretch(1)
        ticks.addWidget(QLabel("0.5"))
        ticks.addStretch(1)
        ticks.addWidget(QLabel("1"))
        bar_box.addLayout(ticks)
        row.addLayout(bar_box)
        self.inspecting = False
        self.compact = False
        self.show_result(None)

    def set_compact(self, compact: bool) -> None:
        """Show the panel only while a kernel is inspected (the presentation
        layout: the placeholder's three lines go to the views), or always."""
        self.compact = bool(compact)
        self.setVisible(self.inspecting or not self.compact)

    def show_result(
        self,
        result: InspectResult | None,
        partner: int | None = None,
        n_kernels: int = 1,
        image_area: float = 1.0,
        kind: str = "trained",
    ) -> None:
        """Show ``result`` (None: the placeholder; ``kind``: what the kernel is)."""
        self.inspecting = result is not None
        self.colour_bar.setEnabled(self.inspecting)
        self.setVisible(self.inspecting or not self.compact)
        if result is None:
            self.text.setText(self.PLACEHOLDER)
            return
        self.text.setText(kernel_text(result, partner, n_kernels, image_area, kind))
