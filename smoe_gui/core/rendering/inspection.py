"""Looking at single kernels of a model: the nearest kernel to a point, its
numbers, and its gating weight map ``w_i`` over the image.

Qt-free; the desktop application's Inspect tool calls these (the weight map
from a worker thread).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..model import SmoeModel, ellipse_axes

__all__ = ["KernelInfo", "gate_weight_map", "kernel_info", "nearest_kernel"]


@dataclass(frozen=True)
class KernelInfo:
    """The numbers of one kernel.

    Attributes
    ----------
    index : int
        Kernel index in the model.
    x, y : float
        Centre μ in pixels (x = column, y = row).
    major, minor : float
        Semi-axes of the kernel's 1-σ ellipse in pixels.
    angle_deg : float
        Angle of the major axis in degrees from +x (image coordinates, y down).
    alpha : float
        Kernel weight α.
    expert : float
        Expert value m (gray level); for a colour model (experts (K, 3)) the
        BT.601 luma of its three values.
    expert_rgb : tuple of float, or None
        A colour model's expert values (m_R, m_G, m_B); None for a gray model.
    sigma : (2, 2) float64
        ``Σ = A Aᵀ`` (1/px²).
    """

    index: int
    x: float
    y: float
    major: float
    minor: float
    angle_deg: float
    alpha: float
    expert: float
    sigma: NDArray[np.float64]
    expert_rgb: tuple[float, ...] | None = None

    def m_text(self, digits: int = 3) -> str:
        """The expert as text: ``m = 0.412`` or, in colour, ``m = (0.41, 0.32, 0.20) RGB``."""
        if self.expert_rgb is None:
            return f"m = {self.expert:.{digits}f}"
        return "m = (" + ", ".join(f"{v:.{digits}f}" for v in self.expert_rgb) + ") RGB"

    def short_text(self) -> str:
        """Three short lines (for a tooltip next to the kernel)."""
        return (
            f"kernel {self.index}: μ = ({self.x:.1f}, {self.y:.1f})\n"
            f"Σ axes {self.major:.2f} × {self.minor:.2f} px, {self.angle_deg:.0f}°\n"
            f"α = {self.alpha:.3g}, {self.m_text(3)}"
        )

    def text(self) -> str:
        """Multi-line human-readable description."""
        s = self.sigma
        return (
            f"kernel {self.index}\n"
            f"μ = ({self.x:.2f}, {self.y:.2f}) px\n"
            f"Σ axes {self.major:.2f} × {self.minor:.2f} px at {self.angle_deg:.1f}°\n"
            f"Σ = [[{s[0, 0]:.4g}, {s[0, 1]:.4g}], [{s[1, 0]:.4g}, {s[1, 1]:.4g}]] 1/px²\n"
            f"α = {self.alpha:.4g}, {self.m_text(4)}"
        )


def nearest_kernel(
    model: SmoeModel, x: float, y: float, max_distance: float | None = None
) -> int | None:
    """Index of the kernel whose centre is nearest to ``(x, y)``.

    Parameters
    ----------
    model : SmoeModel
    x, y : float
        Position in pixels.
    max_distance : float, optional
        Return None when the nearest centre is farther than this (px).

    Returns
    -------
    int or None
    """
    d2 = (model.mu[:, 0] - float(x)) ** 2 + (model.mu[:, 1] - float(y)) ** 2
    k = int(np.argmin(d2))
    if max_distance is not None and d2[k] > float(max_distance) ** 2:
        return None
    return k


def kernel_info(model: SmoeModel, index: int) -> KernelInfo:
    """The numbers of kernel ``index``.

    Raises
    ------
    ValueError
        If ``index`` is not a kernel of the model.
    """
    k = int(index)
    if not 0 <= k < model.n_kernels:
        raise ValueError(f"kernel {index} does not exist; the model has {model.n_kernels} kernels")
    sub = model.subset(np.array([k]))
    major, minor, angle = ellipse_axes(sub)[0]
    values = np.asarray(model.m[k], dtype=np.float64).reshape(-1)
    rgb: tuple[float, ...] | None = None
    if values.size == 1:
        expert = float(values[0])
    else:  # colour: BT.601 luma of (R, G, B), as core.image.luma weighs the channels
        rgb = tuple(float(v) for v in values)
        expert = float(values[:3] @ np.array([0.299, 0.587, 0.114]))
    return KernelInfo(
        index=k,
        x=float(model.mu[k, 0]),
        y=float(model.mu[k, 1]),
        major=float(major),
        minor=float(minor),
        angle_deg=float(angle),
        alpha=float(np.exp(model.log_alpha[k])),
        expert=expert,
        sigma=sub.quadratic_form()[0],
        expert_rgb=rgb,
    )


def gate_weight_map(model: SmoeModel, index: int) -> NDArray[np.float32]:
    """The gating weight ``w_i(x) = K_i(x) / Σ_j K_j(x)`` of kernel ``index`` at
    every pixel of the model's image.

    Evaluated with the fast renderer's culled per-block lists
    (:func:`smoe_gui.core.rendering.territories.kernel_weight_map`): only the blocks
    whose list holds the kernel are computed; elsewhere its weight is below
    ``1e-6 / K`` and the map holds 0 (the error is below ``1e-6`` everywhere).

    Parameters
    ----------
    model : SmoeModel
    index : int
        The kernel, ``0 <= index < model.n_kernels``.

    Returns
    -------
    (H, W) float32 in [0, 1]

    Raises
    ------
    ValueError
        If ``index`` is not a kernel of the model.
    """
    from .territories import kernel_weight_map

    return kernel_weight_map(model, index)
