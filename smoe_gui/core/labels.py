"""Primitives over label maps: the one home of label boundaries.

A label map is an ``(H, W)`` integer array that gives each pixel a region:
superpixels (S-SMoE, AS-SMoE), gate territories (the kernel of largest gate
weight at each pixel).  Every view, stage PNG and export that outlines regions
calls :func:`label_boundaries`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["label_boundaries"]


def label_boundaries(labels: NDArray[np.integer]) -> NDArray[np.bool_]:
    """Pixels whose right or lower 4-neighbour carries another label.

    Parameters
    ----------
    labels : (H, W) int array
        A label map (superpixels, gate territories).

    Returns
    -------
    (H, W) bool
        True on a one-pixel line between every two regions (the pixel on the
        left of, or above, the change).

    Raises
    ------
    ValueError
        Unless ``labels`` is 2-D.
    """
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ValueError(f"a label map must be (H, W), got shape {lab.shape}")
    out = np.zeros(lab.shape, dtype=bool)
    out[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    out[:-1, :] |= lab[:-1, :] != lab[1:, :]
    return out
