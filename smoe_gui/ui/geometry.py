"""Drawing geometry for the stage views, as plain numpy arrays (no Qt).

These turn stage results into polylines that pyqtgraph draws in one call each
(segment strokes come from :func:`smoe_gui.core.drawing.segment_strokes`,
re-exported here).  They run in worker threads (see :mod:`smoe_gui.ui.jobs`), never in a paint
handler.  Coordinates are image coordinates: x = column, y = row (px).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ..core.drawing import segment_strokes
from ..core.model import SmoeModel, ellipse_axes

__all__ = [
    "KernelGeometry",
    "ReducedGeometry",
    "ellipse_polylines",
    "kernel_geometry",
    "reduced_geometry",
    "segment_strokes",
]

F64 = NDArray[np.float64]


_ELLIPSE_POINTS = 24


def _empty() -> F64:
    return np.zeros((0, 2), dtype=np.float64)


@dataclass(frozen=True)
class ReducedGeometry:
    """Reduced segments drawn as short strokes plus centre markers.

    Attributes
    ----------
    cluster_strokes, salient_strokes : (2n, 2) float64
        Stroke end points (pairs) of the clustered and of the salient segments.
    cluster_centres, salient_centres : (n, 2) float64
        Their centres.
    """

    cluster_strokes: F64 = field(default_factory=_empty)
    salient_strokes: F64 = field(default_factory=_empty)
    cluster_centres: F64 = field(default_factory=_empty)
    salient_centres: F64 = field(default_factory=_empty)


def reduced_geometry(reduced: F64, salient: NDArray[np.bool_], half_length: float) -> ReducedGeometry:
    """Strokes for the reduced segments ``(M, 3)`` = x, y, θ with ``salient (M,)``.

    Each stroke has half-length ``half_length`` px along the segment direction.
    """
    red = np.asarray(reduced, dtype=np.float64).reshape(-1, 3)
    sal = np.asarray(salient, dtype=bool).reshape(-1)
    if len(sal) != len(red):
        sal = np.zeros(len(red), dtype=bool)
    theta = np.radians(red[:, 2])
    # θ is measured with y pointing down: 45° is the step (1, 1).
    t = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    a = red[:, :2] - half_length * t
    b = red[:, :2] + half_length * t
    strokes = np.stack([a, b], axis=1)
    return ReducedGeometry(
        cluster_strokes=strokes[~sal].reshape(-1, 2),
        salient_strokes=strokes[sal].reshape(-1, 2),
        cluster_centres=red[~sal, :2].copy(),
        salient_centres=red[sal, :2].copy(),
    )


def ellipse_polylines(model: SmoeModel, index: NDArray[np.intp] | None = None) -> F64:
    """1-σ ellipses of the selected kernels as one polyline with NaN breaks.

    Returns
    -------
    (n·(P+2), 2) float64
        ``P + 1`` points per closed ellipse followed by a NaN row (use
        ``connect="finite"``).  Infinite axes are clipped to the image diagonal.
    """
    idx = np.arange(model.n_kernels) if index is None else np.asarray(index, dtype=np.intp)
    if len(idx) == 0:
        return _empty()
    axes = ellipse_axes(model)[idx]
    limit = float(np.hypot(model.width, model.height))
    major = np.minimum(np.nan_to_num(axes[:, 0], posinf=limit), limit)
    minor = np.minimum(np.nan_to_num(axes[:, 1], posinf=limit), limit)
    phi = np.radians(axes[:, 2])
    t = np.linspace(0.0, 2.0 * np.pi, _ELLIPSE_POINTS + 1)
    ct, st = np.cos(t)[None, :], np.sin(t)[None, :]
    cp, sp = np.cos(phi)[:, None], np.sin(phi)[:, None]
    ex = major[:, None] * ct * cp - minor[:, None] * st * sp
    ey = major[:, None] * ct * sp + minor[:, None] * st * cp
    mu = model.mu[idx]
    pts = np.empty((len(idx), _ELLIPSE_POINTS + 2, 2), dtype=np.float64)
    pts[:, :-1, 0] = mu[:, 0:1] + ex
    pts[:, :-1, 1] = mu[:, 1:2] + ey
    pts[:, -1, :] = np.nan
    return pts.reshape(-1, 2)


#: Kernel categories, in drawing order.
KERNEL_CATEGORIES = ("pair", "background", "grid", "trained")


@dataclass(frozen=True)
class KernelGeometry:
    """Kernel centres and ellipses by category, and the pair links.

    Attributes
    ----------
    centres : dict category -> (n, 2) float64
    ellipses : dict category -> (n·(P+2), 2) float64 (NaN-separated polylines)
    pair_links : (2p, 2) float64
        Segment end points joining the two kernels of each pair (``connect="pairs"``).
    n_kernels : int
    """

    centres: dict[str, F64]
    ellipses: dict[str, F64]
    pair_links: F64
    n_kernels: int


def kernel_geometry(
    model: SmoeModel, method: str | None, n_pairs: int = 0, n_background: int = 0
) -> KernelGeometry:
    """Geometry of a model's kernels.

    Parameters
    ----------
    model : SmoeModel
    method : str or None (one of smoe_gui.core.params.METHODS)
        The initialisation that made the model; None for a trained or loaded
        model (all kernels are drawn as "trained").
    n_pairs : int
        Number of pairs (edge method): kernels ``2i, 2i+1`` form pair ``i``.
    n_background : int
        Number of background kernels at the end of the model (edge method).
    """
    k = model.n_kernels
    groups: dict[str, NDArray[np.intp]] = {c: np.zeros(0, dtype=np.intp) for c in KERNEL_CATEGORIES}
    links = _empty()
    if method == "grid":
        groups["grid"] = np.arange(k)
    elif method == "edge" and 2 * n_pairs + n_background == k:
        groups["pair"] = np.arange(2 * n_pairs)
        groups["background"] = np.arange(2 * n_pairs, k)
        links = model.mu[: 2 * n_pairs].copy()
    else:
        groups["trained"] = np.arange(k)
    return KernelGeometry(
        centres={c: model.mu[i].copy() for c, i in groups.items()},
        ellipses={c: ellipse_polylines(model, i) for c, i in groups.items()},
        pair_links=links,
        n_kernels=k,
    )
