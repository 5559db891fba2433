"""Expert initialisation and refinement (paper eq. 10-12)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .metrics import psnr
from .model import SmoeModel, dense_logits, dense_render

__all__ = ["initialize_experts", "sample_bilinear"]


def sample_bilinear(image: NDArray[np.float32], points: NDArray[np.float64]) -> NDArray[np.float64]:
    """Bilinear samples of ``image`` (H, W) at ``points`` (K, 2) = (x, y) px,
    clamped to the image; returns (K,) float64."""
    h, w = image.shape
    x = np.clip(points[:, 0], 0.0, w - 1.0)
    y = np.clip(points[:, 1], 0.0, h - 1.0)
    x0 = np.minimum(np.floor(x).astype(np.intp), w - 2 if w > 1 else 0)
    y0 = np.minimum(np.floor(y).astype(np.intp), h - 2 if h > 1 else 0)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = x - x0
    fy = y - y0
    img = image.astype(np.float64)
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def initialize_experts(
    image: NDArray[np.float32],
    mu: NDArray[np.float64],
    A: NDArray[np.float64],
    log_alpha: NDArray[np.float64],
    eta: float,
    iters: int,
) -> tuple[NDArray[np.float64], list[float]]:
    """Sample the image at the centres, then refine ``iters`` times.

    The update is ``m ← m + η (L[μ] - L̂[μ])`` (the convergent sign; the paper's
    eq. 12 prints the opposite), where ``L[μ]`` are bilinear samples of the
    image and ``L̂[μ]`` the current reconstruction at the centres.

    Returns
    -------
    m : (K,) float64
        Experts.
    psnr_db : list of float
        PSNR of the whole reconstruction after sampling, then after each
        iteration (length ``iters + 1``).
    """
    h, w = image.shape
    target = sample_bilinear(image, mu)
    m = target.copy()
    model = SmoeModel(mu, A, m, log_alpha, h, w)
    logits = dense_logits(model, mu)
    logits -= logits.max(axis=1, keepdims=True)
    gate = np.exp(logits)
    gate /= gate.sum(axis=1, keepdims=True)  # (K, K): weights at the centres
    history = [psnr(dense_render(model.replace(m=m)), image)]
    for _ in range(iters):
        m = m + eta * (target - gate @ m)
        history.append(psnr(dense_render(model.replace(m=m)), image))
    return m, history
