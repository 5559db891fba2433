"""Rendering a model to an image."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from .model import SmoeModel, dense_render

if TYPE_CHECKING:
    import torch

__all__ = ["SmoeRenderer", "dense_image_torch", "output_grid", "render"]


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


def dense_image_torch(
    mu: "torch.Tensor",
    A: "torch.Tensor",
    m: "torch.Tensor",
    log_alpha: "torch.Tensor",
    xs: "torch.Tensor",
    ys: "torch.Tensor",
) -> "torch.Tensor":
    """Dense evaluation in eager PyTorch: every kernel at every pixel.

    This is how published SMoE code evaluates the model; it is the peer that the
    fast path is measured against, and the reference for gradients.

    Parameters
    ----------
    mu : (K, 2), A : (K, 2, 2), m : (K,), log_alpha : (K,) tensors
    xs : (W,) tensor, ys : (H,) tensor
        Pixel-centre coordinates.

    Returns
    -------
    (H, W) tensor, differentiable in all four parameters.
    """
    import torch

    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)  # (P, 2)
    d = points[:, None, :] - mu[None, :, :]  # (P, K, 2)
    proj = torch.einsum("pki,kij->pkj", d, A)
    logits = log_alpha[None, :] - (proj * proj).sum(-1)
    w = torch.softmax(logits, dim=1)
    return (w @ m).reshape(ys.shape[0], xs.shape[0])


class SmoeRenderer:
    """Differentiable renderer of a fixed pixel window ``height x width`` whose
    top-left pixel centre sits at ``(x0, y0)`` in model coordinates.

    ``renderer(mu, A, m, log_alpha)`` returns the ``(height, width)`` image as a
    torch tensor that back-propagates into all four parameters.
    """

    def __init__(
        self, height: int, width: int, x0: float = 0.0, y0: float = 0.0, device: str = "cpu"
    ) -> None:
        import torch

        self.height = int(height)
        self.width = int(width)
        self.device = torch.device(device)
        self.xs = torch.arange(self.width, dtype=torch.float32, device=self.device) + float(x0)
        self.ys = torch.arange(self.height, dtype=torch.float32, device=self.device) + float(y0)

    def __call__(
        self,
        mu: "torch.Tensor",
        A: "torch.Tensor",
        m: "torch.Tensor",
        log_alpha: "torch.Tensor",
    ) -> "torch.Tensor":
        return dense_image_torch(mu, A, m, log_alpha, self.xs, self.ys)
