"""The stages composed: :func:`initialize` (and :func:`fit`, from training)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from .model import SmoeModel
from .params import Params

__all__ = ["Initialization", "initialize"]


@dataclass(frozen=True, eq=False)
class Initialization:
    """Result of :func:`initialize`: every stage's output.

    Attributes
    ----------
    method : str
        ``"edge"`` or ``"grid"``.
    params : Params
    image : (H, W) float32
    edges : (H, W) bool
        Canny edge mask (all False for the grid method).
    segments : (N, 4) float64
        Raw segments: centre x, centre y (px), θ in degrees (0, 90, 45, -45),
        run length in pixels.  Ordered by direction (0, 90, 45, -45), then by
        start pixel in row-major order.
    scores : (N,) float64
        Importance score of each raw segment (eq. 6-8).
    reduced : (M, 3) float64
        Reduced segments: x, y, θ.  Kernels ``2i`` and ``2i+1`` of ``model``
        belong to ``reduced[i]``.
    salient : (M,) bool
        Which reduced segments were kept as isolated salient segments.
    model : SmoeModel
        Initial model: ``2M`` pair kernels, then ``n_background`` background
        kernels (edge method); or the grid kernels (grid method).
    n_background : int
        Number of background kernels at the end of the model.
    expert_psnr : list of float
        PSNR (dB) of the whole reconstruction after sampling the experts
        (entry 0), then after each refinement iteration.
    timings_ms : dict of str to float
        Wall-clock milliseconds per stage.
    notes : tuple of str
        Messages for the user (e.g. "no edges found: background kernels only").
    """

    method: str
    params: Params
    image: NDArray[np.float32]
    edges: NDArray[np.bool_]
    segments: NDArray[np.float64]
    scores: NDArray[np.float64]
    reduced: NDArray[np.float64]
    salient: NDArray[np.bool_]
    model: SmoeModel
    n_background: int
    expert_psnr: list[float]
    timings_ms: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
