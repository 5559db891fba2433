"""Tile geometry of the tile phase: the tiles, which tile owns a kernel, the
band of context kernels and the band of loss pixels around a tile.

Source: section III-E of the paper (the image is cut into tiles trained one by
one); the context and loss bands are this project's reading, see
``docs/paper-readings.md``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ..params import Params

__all__ = ["context_margin", "fit_tile_size", "loss_band", "tile_index", "tile_windows"]


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
    the tile phase (parrots, 2,000 kernels: 22.96 dB at the start, 21.2 dB at
    the merge; with this band 27.4 dB, see ``docs/paper-readings.md``).
    """
    return max(16, tile_size // 4)


def context_margin(tile_size: int) -> int:
    """Width in pixels of the band of frozen context kernels around a tile:
    twice the :func:`loss_band`, so that every pixel of the loss band is
    rendered with the kernels that govern it in the whole model."""
    return 2 * loss_band(tile_size)


def fit_tile_size(image_shape: tuple[int, int], params: Params) -> int:
    """The tile side used for an image: ``tile_size``, clamped to the image's longer side.

    A tile larger than the image would be one tile holding the whole image, so any image
    that :func:`~smoe_gui.core.methods.pipeline.initialize` accepts is fitted with any
    ``tile_size``; :func:`fit` says so in its ``merge`` event when it clamps.
    """
    return max(1, min(int(params.tile_size), max(int(image_shape[0]), int(image_shape[1]))))
