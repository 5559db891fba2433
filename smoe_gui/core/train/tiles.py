"""Tile geometry of the tile phase: the tiles, which tile owns a kernel, the
band of loss pixels around a tile, the frozen context kernels that reach it and
the width limit of a tile's kernels.

Source: section III-E of the paper (the image is cut into tiles trained one by
one); the loss band, the context and the width limit are this project's
reading, see ``docs/paper-readings.md`` (section 8c).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ..params import Params

__all__ = [
    "fit_tile_size",
    "loss_band",
    "max_tile_sigma",
    "tile_context",
    "tile_index",
    "tile_windows",
]

#: Extra logit margin (on top of the renderer's own) with which :func:`tile_context` picks
#: its kernels, so that the context stays complete while the tile's own weights sink.
CONTEXT_SLACK = 12.0


def tile_windows(height: int, width: int, tile_size: int) -> list[tuple[int, int, int, int]]:
    """The tiles of an image, row-major.

    Parameters
    ----------
    height, width : int
        Image size in pixels.
    tile_size : int
        Side of a tile in pixels; tiles on the right and bottom border are
        smaller when the size is not a multiple.

    Returns
    -------
    list of (y0, y1, x0, x1)
        Half-open pixel ranges of each tile.
    """
    ny = math.ceil(height / tile_size)
    nx = math.ceil(width / tile_size)
    return [
        (ty * tile_size, min(height, (ty + 1) * tile_size),
         tx * tile_size, min(width, (tx + 1) * tile_size))
        for ty in range(ny)
        for tx in range(nx)
    ]


def tile_index(
    mu: NDArray[np.float64], height: int, width: int, tile_size: int
) -> NDArray[np.intp]:
    """Index (into :func:`tile_windows`) of the tile holding each kernel centre.

    A centre at ``(x, y)`` lies in the pixel ``(round(x), round(y))``; centres
    outside the image count for the nearest border tile.

    Parameters
    ----------
    mu : (K, 2) float64
        Kernel centres (x, y) in pixels.

    Returns
    -------
    (K,) intp
    """
    nx = math.ceil(width / tile_size)
    ny = math.ceil(height / tile_size)
    col = np.clip(np.floor((mu[:, 0] + 0.5) / tile_size), 0, nx - 1).astype(np.intp)
    row = np.clip(np.floor((mu[:, 1] + 0.5) / tile_size), 0, ny - 1).astype(np.intp)
    return row * nx + col


def loss_band(tile_size: int) -> int:
    """Width in pixels of the band around a tile whose pixels join its loss.

    ``max(16, tile_size // 4)`` (32 px for the default 128-px tiles): a tile's
    kernels are charged for what they do to the neighbours' pixels out to this
    distance.  With a softmax gate a kernel that widens or gains weight takes
    over pixels well outside its tile; a band of ``tile_size // 8`` (16 px, the
    first reading) let that go unseen, and the whole-image PSNR fell through
    the tile phase (see ``docs/paper-readings.md``, section 8c).
    """
    return max(16, tile_size // 4)


def max_tile_sigma(tile_size: int) -> float:
    """Widest gate (standard deviation along its longer axis, px) a kernel may
    reach while its tile trains: half the :func:`loss_band` (16 px at 128-px tiles).

    A kernel whose centre lies in the tile then has, one band beyond the tile,
    a logit at least 2 below its peak, and 8 below it at two bands: what it
    does to pixels is seen by its tile's loss.  Without the limit the tile
    phase grew needles (σ of 150-580 px along an edge) that reached across
    tiles trained before, and the merge lost 5 dB (section 8c).  A kernel that
    starts wider keeps its start width as its limit.  Fine-tuning, whose loss
    is the whole image, has no limit.
    """
    return loss_band(tile_size) / 2.0


def tile_context(
    mu: NDArray[np.float64],
    A: NDArray[np.float64],
    log_alpha: NDArray[np.float64],
    others: NDArray[np.bool_],
    own: NDArray[np.intp],
    box: tuple[int, int, int, int],
) -> NDArray[np.intp]:
    """The frozen context of a tile: every other kernel that reaches its loss window.

    The whole current model is culled as the renderer culls it
    (:class:`~smoe_gui.core.rendering.culled.CullLists`, 16x16-px blocks of the
    window) with :data:`CONTEXT_SLACK` logits of slack: a kernel is left out
    only when, in every block of the window, its logit lies more than
    ``ln(K/1e-6) + 12`` below the best kernel's there (the tile's own kernels
    included), so together the left-out kernels weigh < 1e-6 at every pixel
    even after the own kernels' weights fell by ``e^12``.

    Parameters
    ----------
    mu : (K, 2), A : (K, 2, 2), log_alpha : (K,) float64
        Every kernel of the model (model coordinates, px).
    others : (K,) bool
        Candidates (alive and not the tile's).
    own : (n,) intp
        The tile's kernels.
    box : (y0, y1, x0, x1)
        Half-open pixel ranges of the loss window.

    Returns
    -------
    (c,) intp
        Indices of the context kernels, ascending.
    """
    from ..rendering.culled import CullLists

    y0, y1, x0, x1 = box
    chosen = np.asarray(others, dtype=bool).copy()
    chosen[np.asarray(own, dtype=np.intp)] = True
    index = np.flatnonzero(chosen)
    if index.size == 0 or y1 <= y0 or x1 <= x0:
        return np.zeros(0, dtype=np.intp)
    lists = CullLists.build(
        np.ascontiguousarray(mu[index], dtype=np.float64),
        np.ascontiguousarray(A[index], dtype=np.float64),
        np.ascontiguousarray(log_alpha[index], dtype=np.float64),
        (x1 - x0, y1 - y0, float(x0), float(y0), 1.0, 1.0),
        slack=CONTEXT_SLACK,
    )
    used = np.zeros(index.size, dtype=bool)
    used[lists.idx] = True
    return index[used & others[index]]


def fit_tile_size(image_shape: tuple[int, int], params: Params) -> int:
    """The tile side used for an image: ``tile_size``, clamped to the image's longer side.

    A tile larger than the image would be one tile holding the whole image, so any image
    that :func:`~smoe_gui.core.methods.pipeline.initialize` accepts is fitted with any
    ``tile_size``; :func:`fit` says so in its ``merge`` event when it clamps.
    """
    return max(1, min(int(params.tile_size), max(int(image_shape[0]), int(image_shape[1]))))
