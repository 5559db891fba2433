"""Rendering a model to an image."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .model import SmoeModel, dense_render

__all__ = ["output_grid", "render"]


def output_grid(
    model: SmoeModel,
    scale: float | None = None,
    height: int | None = None,
    width: int | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Model coordinates of the pixel centres of an output image.

    The output covers the same area as the model's image: output pixel ``j`` of
    ``W'`` maps to ``x = (j + 0.5)·W/W' - 0.5`` (likewise for rows), so
    ``scale=1`` gives the pixel centres ``0..W-1``.

    Returns
    -------
    xs : (W',) float64
    ys : (H',) float64
    """
    if scale is not None and (height is not None or width is not None):
        raise ValueError("give either a scale or an explicit size, not both")
    if scale is not None:
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a positive number, got {scale}")
        height = max(1, round(model.height * scale))
        width = max(1, round(model.width * scale))
    height = model.height if height is None else int(height)
    width = model.width if width is None else int(width)
    if height < 1 or width < 1 or height > 16384 or width > 16384:
        raise ValueError(f"output size {width}x{height} must be between 1x1 and 16384x16384")
    xs = (np.arange(width, dtype=np.float64) + 0.5) * (model.width / width) - 0.5
    ys = (np.arange(height, dtype=np.float64) + 0.5) * (model.height / height) - 0.5
    return xs, ys


def render(
    model: SmoeModel,
    scale: float | None = None,
    height: int | None = None,
    width: int | None = None,
) -> NDArray[np.float32]:
    """Render ``model`` to a float32 image (default: its own size).

    Parameters
    ----------
    model : SmoeModel
    scale : float, optional
        Output size relative to the model's image.
    height, width : int, optional
        Explicit output size (either may be given; the other keeps the model's).

    Returns
    -------
    (H', W') float32
    """
    xs, ys = output_grid(model, scale, height, width)
    return dense_render(model, xs, ys).astype(np.float32)
