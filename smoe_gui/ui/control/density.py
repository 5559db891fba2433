"""How view 4 draws kernels legibly at any density (Qt-free rules).

A marker of constant screen size covers the image once the kernels are
denser than the markers (1,373 kernels on a 130 px high view, or 29,257 on a
4096x4096 image at any fit-to-view zoom), so the overlay follows the view's
scale and the kernel density:

* **marker size**: ``MARKER_K · sqrt(a)`` screen pixels, ``a`` the screen
  area per kernel (the image's area on screen over K), between
  :data:`MIN_MARKER_PX` and the mode's largest size; a disc of that diameter
  covers ``π/4 · MARKER_K² ≈ 16 %`` of its share of the image.
* **thinning**: where kernels are closer than a marker, one kernel per cell
  of :data:`CELL_MARKERS` marker diameters (at least :data:`MIN_CELL_PX`) is
  drawn (:func:`thin_index`: the edge pairs and segment kernels before
  background and grid kernels, then a fixed
  per-kernel hash, so the same kernels stay drawn from one redraw and one
  training snapshot to the next); zooming in draws more of them.
* **outlines** only on markers large enough to carry one
  (:data:`OUTLINE_MIN_PX`); the smallest ellipse shrinks with the markers
  (:data:`MIN_ELLIPSE_PX` at their full size).
* **territory boundaries** drawn more transparent as territories get
  smaller on screen (:attr:`DensityLevel.boundary_alpha`), so that dense
  boundaries never hide the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CELL_MARKERS",
    "MARKER_K",
    "MIN_CELL_PX",
    "MIN_ELLIPSE_PX",
    "MIN_MARKER_PX",
    "OUTLINE_MIN_PX",
    "DensityLevel",
    "density_level",
    "marker_coverage",
    "thin_index",
]

#: Marker diameter per square root of the screen area per kernel.
MARKER_K = 0.45

#: Smallest ellipse semi-axis (screen px) at the full marker size; it shrinks
#: with the markers.
MIN_ELLIPSE_PX = 2.5

#: Smallest marker diameter (screen px).
MIN_MARKER_PX = 1.5

#: Markers narrower than this (screen px) have no outline.
OUTLINE_MIN_PX = 3.0

#: Thinning cell: :data:`CELL_MARKERS` marker diameters, at least
#: :data:`MIN_CELL_PX` screen px (where kernels are denser than the screen's
#: pixels, a few pixels per drawn kernel keep the image visible between them).
CELL_MARKERS = 1.25
MIN_CELL_PX = 3.0

#: Kernel categories drawn before the others when thinning.
_FIRST = ("pair", "segment")


@dataclass(frozen=True)
class DensityLevel:
    """How the kernels are drawn at one zoom.

    Attributes
    ----------
    marker_px : float
        Marker diameter (screen px).
    cell : float
        Thinning cell side in image px (one kernel drawn per cell); 0: none.
    outline : bool
        Whether markers have an outline.
    ellipse_min_px : float
        Smallest ellipse semi-axis (screen px).
    boundary_alpha : float
        Opacity of the territory boundaries, 0…1.
    spacing_px : float
        Mean kernel spacing on screen, ``sqrt(a)`` (px).
    """

    marker_px: float
    cell: float
    outline: bool
    ellipse_min_px: float
    boundary_alpha: float
    spacing_px: float


def density_level(
    n_kernels: int, image_hw: tuple[int, int], pixel: float, largest_px: float
) -> DensityLevel:
    """The :class:`DensityLevel` of ``n_kernels`` kernels on an image of
    ``image_hw = (height, width)`` px shown at ``pixel`` image px per screen
    pixel, markers at most ``largest_px`` screen px across.

    Raises
    ------
    ValueError
        For a non-positive or non-finite ``pixel``.
    """
    if not np.isfinite(pixel) or pixel <= 0:
        raise ValueError(f"pixel size must be positive and finite, got {pixel!r}")
    k = max(int(n_kernels), 1)
    h, w = image_hw
    area = float(h) * float(w) / (pixel * pixel)  # screen px²
    spacing = float(np.sqrt(area / k))
    marker = float(np.clip(MARKER_K * spacing, MIN_MARKER_PX, max(largest_px, MIN_MARKER_PX)))
    return DensityLevel(
        marker_px=marker,
        cell=max(CELL_MARKERS * marker, MIN_CELL_PX) * pixel,
        outline=marker >= OUTLINE_MIN_PX,
        ellipse_min_px=MIN_ELLIPSE_PX * marker / max(largest_px, MIN_MARKER_PX),
        boundary_alpha=float(np.clip((spacing - 1.5) / 5.0, 0.15, 0.92)),
        spacing_px=spacing,
    )


def _hash_rank(index: NDArray[np.intp]) -> NDArray[np.uint64]:
    # Knuth's multiplicative hash: a fixed pseudo-random order of kernel indices
    return (np.asarray(index, dtype=np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)


def thin_index(
    centres: dict[str, NDArray[np.float64]],
    index: dict[str, NDArray[np.intp]],
    cell: float,
) -> dict[str, NDArray[np.intp]]:
    """Which kernels of each category to draw: one per ``cell x cell`` image
    px square (all of them with ``cell <= 0``).

    Parameters
    ----------
    centres : dict category -> (n, 2) float64
        Kernel centres (x, y) in image px of the categories drawn.
    index : dict category -> (n,) intp
        Their kernel indices (the per-kernel order of the thinning).
    cell : float

    Returns
    -------
    dict category -> (m,) intp
        Positions into each category's ``centres`` (sorted), ``m <= n``.
    """
    cats = list(centres)
    if cell <= 0 or not cats:
        return {c: np.arange(len(centres[c])) for c in cats}
    mu = np.concatenate([np.asarray(centres[c], dtype=np.float64).reshape(-1, 2) for c in cats])
    if len(mu) == 0:
        return {c: np.zeros(0, dtype=np.intp) for c in cats}
    owner = np.concatenate([np.full(len(centres[c]), i) for i, c in enumerate(cats)])
    pos = np.concatenate([np.arange(len(centres[c])) for c in cats])
    kernel = np.concatenate(
        [np.asarray(index.get(c, np.arange(len(centres[c]))), dtype=np.intp) for c in cats]
    )
    later = np.array([0 if c in _FIRST else 1 for c in cats], dtype=np.uint64)[owner]
    rank = later * np.uint64(2**32) + _hash_rank(kernel)
    cells = np.floor(mu / float(cell)).astype(np.int64)
    order = np.lexsort((rank, cells[:, 1], cells[:, 0]))
    c_sorted = cells[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = np.any(c_sorted[1:] != c_sorted[:-1], axis=1)
    keep = order[first]
    return {c: np.sort(pos[keep[owner[keep] == i]]) for i, c in enumerate(cats)}


def marker_coverage(n_markers: int, marker_px: float, image_screen_px: float) -> float:
    """Upper bound of the fraction of the image's screen area (px²) that
    ``n_markers`` discs of ``marker_px`` diameter cover (overlaps counted twice)."""
    if image_screen_px <= 0:
        return 0.0
    return float(n_markers * np.pi / 4.0 * marker_px**2 / image_screen_px)
