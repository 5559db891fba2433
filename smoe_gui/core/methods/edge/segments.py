"""The 4-direction run scan of the edge mask (paper eq. 4, Sec. III-A).

For each of the four steps ``(dx, dy) = (1, 0), (0, 1), (1, 1), (1, -1)``,
labelled ``θ = 0°, 90°, 45°, -45°`` (``x`` = column, ``y`` = row, so ``+y``
points down), a *run* is a maximal chain of edge pixels ``p, p + s, p + 2s,
...``.  It starts at an edge pixel whose predecessor ``p - s`` is off or
outside the image.  Runs of at least :data:`MIN_LENGTH` pixels become
segments, described by the mean of their pixel coordinates, their direction and
their length.

Every edge pixel takes part in the scan of all four directions, so a pixel can
belong to up to four segments (one per direction).

The scan is one compiled pass per direction (numba): each run start is walked
to its end, so the work is proportional to the number of edge pixels.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = ["DIRECTIONS", "MIN_LENGTH", "STEPS", "scan_segments", "unit_directions"]

#: Directions in scan order: (θ in degrees, step dx, step dy).
DIRECTIONS: tuple[tuple[float, int, int], ...] = (
    (0.0, 1, 0),
    (90.0, 0, 1),
    (45.0, 1, 1),
    (-45.0, 1, -1),
)
#: Steps ``(dx, dy)`` in scan order.
STEPS: tuple[tuple[int, int], ...] = tuple((dx, dy) for _, dx, dy in DIRECTIONS)
#: Shortest run (pixels) that counts as a segment.
MIN_LENGTH = 2

_SQRT_HALF = float(np.sqrt(0.5))
#: Unit run directions ``t = (t_x, t_y)`` for θ = 0, 90, 45, -45.
_UNIT = np.array(
    [[1.0, 0.0], [0.0, 1.0], [_SQRT_HALF, _SQRT_HALF], [_SQRT_HALF, -_SQRT_HALF]]
)


def direction_index(theta: NDArray[np.float64]) -> NDArray[np.intp]:
    """Index 0..3 (order 0°, 90°, 45°, -45°) of each angle in ``theta`` (degrees).

    Raises
    ------
    ValueError
        If an angle is not one of the four scan directions.
    """
    theta = np.asarray(theta, dtype=np.float64)
    index = np.full(theta.shape, -1, dtype=np.intp)
    for i, (angle, _, _) in enumerate(DIRECTIONS):
        index[theta == angle] = i
    if np.any(index < 0):
        bad = theta[index < 0][0]
        raise ValueError(f"segment direction {bad:g}° is not one of 0, 90, 45, -45")
    return index


def unit_directions(theta: NDArray[np.float64]) -> NDArray[np.float64]:
    """Unit run directions ``t`` (N, 2) = (t_x, t_y) for angles θ (N,) in degrees.

    ``θ = 45°`` gives ``(1, 1)/√2`` (down-right in image coordinates),
    ``θ = -45°`` gives ``(1, -1)/√2`` (up-right).
    """
    return _UNIT[direction_index(theta)]


@numba.njit(cache=True, nogil=True)
def _scan_kernel(
    mask: NDArray[np.uint8], min_length: int
) -> NDArray[np.float64]:  # pragma: no cover - compiled
    h, w = mask.shape
    n_on = 0
    for y in range(h):
        for x in range(w):
            if mask[y, x]:
                n_on += 1
    steps_x = (1, 0, 1, 1)
    steps_y = (0, 1, 1, -1)
    angles = (0.0, 90.0, 45.0, -45.0)
    out = np.empty((4 * n_on, 4), dtype=np.float64)
    k = 0
    for d in range(4):
        dx = steps_x[d]
        dy = steps_y[d]
        for y in range(h):
            for x in range(w):
                if not mask[y, x]:
                    continue
                px = x - dx
                py = y - dy
                if 0 <= px < w and 0 <= py < h and mask[py, px]:
                    continue  # not a run start
                length = 0
                cx = x
                cy = y
                while 0 <= cx < w and 0 <= cy < h and mask[cy, cx]:
                    length += 1
                    cx += dx
                    cy += dy
                if length >= min_length:
                    half = (length - 1) / 2.0
                    out[k, 0] = x + dx * half
                    out[k, 1] = y + dy * half
                    out[k, 2] = angles[d]
                    out[k, 3] = length
                    k += 1
    return out[:k].copy()


def scan_segments(edges: NDArray[np.bool_], min_length: int = MIN_LENGTH) -> NDArray[np.float64]:
    """All segments of an edge mask.

    Parameters
    ----------
    edges : (H, W) bool
        Edge mask.
    min_length : int
        Shortest run kept, in pixels (default 2).

    Returns
    -------
    (N, 4) float64
        Columns: centre x, centre y (px; the mean of the run's pixel
        coordinates), θ in degrees (0, 90, 45 or -45), run length in pixels.
        Ordered by direction (0°, 90°, 45°, -45°), then by start pixel in
        row-major order.
    """
    mask = np.asarray(edges)
    if mask.ndim != 2:
        raise ValueError(f"edge mask must be 2-D (H, W), got shape {mask.shape}")
    if min_length < 1:
        raise ValueError(f"min_length must be at least 1, got {min_length}")
    u8 = np.ascontiguousarray(mask, dtype=bool).view(np.uint8)
    return _scan_kernel(u8, int(min_length))
