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

The scan is vectorised: along each line of a direction, run starts (pixel on,
predecessor off) and run ends (pixel on, successor off) alternate, so sorting
both by (line, position) pairs them one to one.
"""

from __future__ import annotations

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


def _runs(edges: NDArray[np.bool_], dx: int, dy: int) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
    """Start pixels (row-major order) and lengths of the maximal runs of one step.

    Returns
    -------
    ys, xs : (R,) intp
        Start pixel of each run, in row-major order.
    lengths : (R,) intp
        Number of pixels in each run (>= 1).
    """
    h, w = edges.shape
    padded = np.zeros((h + 2, w + 2), dtype=bool)
    padded[1:-1, 1:-1] = edges
    pred = padded[1 - dy : h + 1 - dy, 1 - dx : w + 1 - dx]
    succ = padded[1 + dy : h + 1 + dy, 1 + dx : w + 1 + dx]
    sy, sx = np.nonzero(edges & ~pred)  # row-major order
    ey, ex = np.nonzero(edges & ~succ)
    if sy.size == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty, empty
    # line id and position along the line for this step
    if dy == 0:  # horizontal: line = row, position = column
        s_line, s_pos, e_line, e_pos = sy, sx, ey, ex
    elif dx == 0:  # vertical: line = column, position = row
        s_line, s_pos, e_line, e_pos = sx, sy, ex, ey
    elif dy == 1:  # (1, 1): x - y constant, position = x
        s_line, s_pos, e_line, e_pos = sx - sy, sx, ex - ey, ex
    else:  # (1, -1): x + y constant, position = x
        s_line, s_pos, e_line, e_pos = sx + sy, sx, ex + ey, ex
    s_order = np.lexsort((s_pos, s_line))
    e_order = np.lexsort((e_pos, e_line))
    end_pos = np.empty_like(s_pos)
    end_pos[s_order] = e_pos[e_order]
    lengths = (end_pos - s_pos + 1).astype(np.intp)
    return sy.astype(np.intp), sx.astype(np.intp), lengths


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
    mask = mask.astype(bool, copy=False)
    parts = []
    for theta, dx, dy in DIRECTIONS:
        ys, xs, lengths = _runs(mask, dx, dy)
        keep = lengths >= min_length
        ys, xs, lengths = ys[keep], xs[keep], lengths[keep]
        half = (lengths - 1).astype(np.float64) / 2.0
        part = np.empty((lengths.size, 4), dtype=np.float64)
        part[:, 0] = xs + dx * half
        part[:, 1] = ys + dy * half
        part[:, 2] = theta
        part[:, 3] = lengths
        parts.append(part)
    return np.concatenate(parts, axis=0)
