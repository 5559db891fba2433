"""Image quality metrics for images in [0, 1]."""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["mse", "psnr", "ssim"]


def _pair(a: NDArray[np.generic], b: NDArray[np.generic]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {x.shape} vs {y.shape}")
    return x, y


def mse(a: NDArray[np.generic], b: NDArray[np.generic]) -> float:
    """Mean squared error."""
    x, y = _pair(a, b)
    return float(np.mean((x - y) ** 2))


def psnr(a: NDArray[np.generic], b: NDArray[np.generic]) -> float:
    """Peak signal-to-noise ratio in dB for a data range of 1 (``inf`` if equal)."""
    err = mse(a, b)
    return math.inf if err == 0.0 else 10.0 * math.log10(1.0 / err)


def ssim(a: NDArray[np.generic], b: NDArray[np.generic]) -> float:
    """Structural similarity (Wang et al. 2004): Gaussian window σ = 1.5, 11x11,
    K1 = 0.01, K2 = 0.03, data range 1; the mean of the SSIM map."""
    x, y = _pair(a, b)
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
