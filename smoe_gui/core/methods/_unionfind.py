"""The one union-find of the methods (numba): the root of an element, with path halving.

Used by the edge reduction's minimum spanning forest and cluster labels
(:mod:`.edge.reduction`) and by the superpixels' merge of small segments
(:mod:`.segment.superpixels`).  ``parent`` is an int64 array with
``parent[i] == i`` at each root; the caller links roots by its own rule.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = ["find"]


@numba.njit(cache=True, nogil=True)
def find(parent: NDArray[np.int64], i: int) -> int:  # pragma: no cover - compiled
    """The root of ``i`` in the forest ``parent`` (each visited element's parent
    is set to its grandparent on the way: path halving)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i
