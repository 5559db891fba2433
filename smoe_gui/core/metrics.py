"""Image quality metrics for images in [0, 1]."""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PSNR_PLOT_MAX_DB",
    "format_psnr",
    "mse",
    "psnr",
    "psnr_from_mse",
    "psnr_json",
    "ssim",
]

#: Plot axes clip PSNR at this value (an exact reconstruction's PSNR is infinite).
PSNR_PLOT_MAX_DB = 100.0


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


def psnr_from_mse(mse: float, peak: float = 1.0) -> float:
    """PSNR in dB from a mean squared error: ``10 log10(peak² / mse)``.

    ``math.inf`` for ``mse == 0`` (an exact reconstruction: the one documented value,
    "inf"), NaN for a NaN or infinite ``mse``.
    """
    if not math.isfinite(mse):
        return math.nan
    return math.inf if mse <= 0.0 else 10.0 * math.log10(peak * peak / mse)


def psnr_json(value: float) -> float | str | None:
    """A PSNR for JSON: the number, ``"inf"`` for an exact reconstruction (``float("inf")``
    parses it back), None for NaN."""
    if math.isnan(value):
        return None
    return "inf" if math.isinf(value) and value > 0 else float(value)


def format_psnr(value: float) -> str:
    """A PSNR for people: ``"31.42 dB"``, ``"inf dB"`` for an exact reconstruction."""
    return "inf dB" if math.isinf(value) and value > 0 else f"{value:.2f} dB"


def psnr(a: NDArray[np.generic], b: NDArray[np.generic]) -> float:
    """Peak signal-to-noise ratio in dB for a data range of 1 (``inf`` if equal)."""
    return psnr_from_mse(mse(a, b))


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
