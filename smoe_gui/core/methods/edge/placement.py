"""Kernel placement (paper Sec. III-C), background kernels and the grid baseline.

Edge kernel pairs
-----------------
Reduced segment ``i`` with centre ``c`` and unit run direction ``t`` (θ = 0°:
``(1, 0)``, 90°: ``(0, 1)``, 45°: ``(1, 1)/√2``, -45°: ``(1, -1)/√2``; ``x`` =
column, ``y`` = row) gets two kernels on either side of the edge, along the
normal ``n = (-t_y, t_x)``:

* kernel ``2i``     at ``c + (Δμ/2)·n``,
* kernel ``2i + 1`` at ``c - (Δμ/2)·n``,

both with ``A = I/(√2·Δμ)`` (so ``Σ = A Aᵀ = I/(2Δμ²)`` and the gate falls off
as ``exp(-‖x - μ‖²/(2Δμ²))``, a Gaussian of standard deviation Δμ) and
``log α = 0``.

Steering from the segments (the paper's future work, Sec. V; an extension):
with ``segment_steering = e > 1`` each kernel of a pair is stretched along its
segment, ``A = R·diag(1/(√2·e·Δμ), 1/(√2·Δμ))`` with ``R = [t, n]``, so its
standard deviation is ``e·Δμ`` along ``t`` and Δμ across it; ``e = 1`` is the
paper's isotropic Σ exactly.

Background kernels
------------------
Edges leave smooth regions without kernels.  The image is covered by a grid of
cell centres with spacing close to ``s = background_spacing``
(``round(W/s)`` columns by ``round(H/s)`` rows, at least one each); a cell
centre whose nearest edge kernel is farther than ``s`` gets an isotropic
background kernel of standard deviation ``s/2`` (``A = I/(√2·s/2)``): the 1-σ
circles of neighbouring background kernels touch and the 2-σ disc covers the
whole cell.  Being wider than the edge kernels, they win the gate only away
from the edges.

Grid baseline
-------------
``K`` kernels on a regular grid: ``r = max(1, round(sqrt(K·H/W)))`` rows
(at most ``K``), row ``j`` holding ``floor((j+1)K/r) - floor(jK/r)`` kernels
spread evenly across it (so every row holds ``floor(K/r)`` or ``ceil(K/r)``
and the total is exactly ``K``), at cell centres; isotropic with standard
deviation half the mean spacing ``d = sqrt(W·H/K)``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from .segments import unit_directions

__all__ = [
    "GateArrays",
    "background_kernels",
    "edge_kernel_pairs",
    "grid_kernels",
    "isotropic_A",
]

F64 = NDArray[np.float64]
GateArrays = tuple[F64, F64, F64]
"""The gate parameters of ``K`` placed kernels, no experts yet:
``(mu (K, 2), A (K, 2, 2), log_alpha (K,))``."""


def isotropic_A(count: int, sigma: float) -> F64:
    """``count`` copies of ``A = I/(√2·σ)``: an isotropic gate of standard deviation σ px.

    Returns
    -------
    (count, 2, 2) float64
    """
    if not (sigma > 0.0):
        raise ValueError(f"kernel width must be positive, got {sigma}")
    a = np.zeros((count, 2, 2), dtype=np.float64)
    value = 1.0 / (math.sqrt(2.0) * sigma)
    a[:, 0, 0] = value
    a[:, 1, 1] = value
    return a


def edge_kernel_pairs(reduced: F64, delta_mu: float, steering: float = 1.0) -> GateArrays:
    """Two kernels across each reduced segment.

    Parameters
    ----------
    reduced : (M, 3) float64
        ``x, y, θ`` (px, px, degrees in {0, 90, 45, -45}).
    delta_mu : float
        Δμ: distance between the two kernels of a pair (px), also their
        standard deviation (across the segment).
    steering : float
        ``segment_steering`` e >= 1: standard deviation ``e·Δμ`` along the segment.

    Returns
    -------
    mu : (2M, 2) float64
        Kernel ``2i`` at ``c + (Δμ/2)·n``, kernel ``2i+1`` at ``c - (Δμ/2)·n``.
    A : (2M, 2, 2) float64
        ``I/(√2·Δμ)``; steered (module doc) when ``steering > 1``.
    log_alpha : (2M,) float64
        Zeros.
    """
    red = np.asarray(reduced, dtype=np.float64).reshape(-1, 3)
    if not (delta_mu > 0.0):
        raise ValueError(f"delta_mu must be positive, got {delta_mu}")
    m = red.shape[0]
    t = unit_directions(red[:, 2])
    normal = np.stack([-t[:, 1], t[:, 0]], axis=1)
    offset = (delta_mu / 2.0) * normal
    mu = np.empty((2 * m, 2), dtype=np.float64)
    mu[0::2] = red[:, :2] + offset
    mu[1::2] = red[:, :2] - offset
    if not (steering >= 1.0):
        raise ValueError(f"segment steering must be at least 1, got {steering}")
    if steering == 1.0:
        return mu, isotropic_A(2 * m, delta_mu), np.zeros(2 * m, dtype=np.float64)
    tt = np.repeat(t, 2, axis=0)  # (2M, 2): both kernels of a pair share the direction
    nn = np.repeat(normal, 2, axis=0)
    a = np.empty((2 * m, 2, 2), dtype=np.float64)
    a[:, :, 0] = tt / (math.sqrt(2.0) * steering * delta_mu)  # column 0: along the segment
    a[:, :, 1] = nn / (math.sqrt(2.0) * delta_mu)  # column 1: across it
    return mu, a, np.zeros(2 * m, dtype=np.float64)


def _cell_centres(length: int, count: int) -> F64:
    """Centres of ``count`` equal cells covering ``0..length-1`` (pixel-centre coordinates)."""
    return (np.arange(count, dtype=np.float64) + 0.5) * (length / count) - 0.5


def background_kernels(
    occupied: F64, height: int, width: int, spacing: float
) -> GateArrays:
    """Background kernels where no kernel in ``occupied`` lies within ``spacing``.

    Parameters
    ----------
    occupied : (K, 2) float64
        Centres of the kernels already placed (may be empty).
    height, width : int
        Image size (px).
    spacing : float
        Grid spacing and trigger distance ``s`` (px).

    Returns
    -------
    mu : (B, 2), A : (B, 2, 2), log_alpha : (B,)
        Cell centres in row-major order; standard deviation ``s/2``.
    """
    if not (spacing > 0.0):
        raise ValueError(f"background spacing must be positive, got {spacing}")
    nx = max(1, int(round(width / spacing)))
    ny = max(1, int(round(height / spacing)))
    gx, gy = np.meshgrid(_cell_centres(width, nx), _cell_centres(height, ny))
    cells = np.stack([gx.ravel(), gy.ravel()], axis=1)
    occ = np.asarray(occupied, dtype=np.float64).reshape(-1, 2)
    if occ.shape[0]:
        dist, _ = cKDTree(occ).query(cells, k=1, distance_upper_bound=spacing)
        cells = cells[~(dist <= spacing)]
    b = cells.shape[0]
    return (
        np.ascontiguousarray(cells),
        isotropic_A(b, spacing / 2.0),
        np.zeros(b, dtype=np.float64),
    )


def grid_kernels(count: int, height: int, width: int) -> GateArrays:
    """Exactly ``count`` kernels on a regular grid (rule in the module doc).

    Returns
    -------
    mu : (count, 2), A : (count, 2, 2), log_alpha : (count,)
    """
    if count < 1:
        raise ValueError(f"the grid needs at least one kernel, got {count}")
    rows = min(count, max(1, int(round(math.sqrt(count * height / width)))))
    ys = _cell_centres(height, rows)
    parts = []
    for j in range(rows):
        in_row = (j + 1) * count // rows - j * count // rows
        xs = _cell_centres(width, in_row)
        parts.append(np.stack([xs, np.full(in_row, ys[j])], axis=1))
    mu = np.concatenate(parts, axis=0)
    sigma = 0.5 * math.sqrt(width * height / count)
    return mu, isotropic_A(count, sigma), np.zeros(count, dtype=np.float64)
