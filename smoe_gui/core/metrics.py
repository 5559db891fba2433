"""Image quality metrics for images in [0, 1], gray ``(H, W)`` or colour ``(H, W, C)``.

One PSNR definition everywhere: ``10·log10(peak² / MSE)`` with the MSE averaged
over all pixels *and* channels (so an RGB image's PSNR is that of its pooled
error, not a mean of per-channel PSNRs), unclipped, ``inf`` for an exact
reconstruction.  SSIM of a colour image is the mean of the per-channel SSIMs.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["mse", "psnr", "psnr_from_mse", "ssim"]


def _pair(a: NDArray[np.generic], b: NDArray[np.generic]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {x.shape} vs {y.shape}")
    return x, y


def mse(a: NDArray[np.generic], b: NDArray[np.generic]) -> float:
    """Mean squared error over all pixels and channels."""
    x, y = _pair(a, b)
    return float(np.mean((x - y) ** 2))


def psnr_from_mse(mse: float, peak: float = 1.0) -> float:
    """PSNR in dB from a mean squared error: ``10·log10(peak² / mse)``.

    ``inf`` for ``mse == 0``, ``nan`` for a NaN error, ``-inf`` for an
    infinite one.  Never clipped.
    """
    if math.isnan(mse):
        return math.nan
    if mse == 0.0:
        return math.inf
    if math.isinf(mse):
        return -math.inf
    return 10.0 * math.log10(peak * peak / mse)


def psnr(a: NDArray[np.generic], b: NDArray[np.generic]) -> float:
    """Peak signal-to-noise ratio in dB for a data range of 1 (``inf`` if equal);
    for colour images the MSE is averaged over all channels."""
    return psnr_from_mse(mse(a, b))


def ssim(a: NDArray[np.generic], b: NDArray[np.generic]) -> float:
    """Structural similarity (Wang et al. 2004): Gaussian window σ = 1.5, 11x11,
    K1 = 0.01, K2 = 0.03, data range 1; the mean of the SSIM map.  For colour
    images ``(H, W, C)``: the mean over the channels of each channel's SSIM."""
    x, y = _pair(a, b)
    if x.ndim == 3:
        return float(np.mean([_ssim_gray(x[:, :, c], y[:, :, c]) for c in range(x.shape[2])]))
    return _ssim_gray(x, y)


def _ssim_gray(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    c1, c2 = 0.01**2, 0.03**2

    def blur(img: NDArray[np.float64]) -> NDArray[np.float64]:
        blurred = cv2.GaussianBlur(img, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)
        return np.asarray(blurred, dtype=np.float64)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))
