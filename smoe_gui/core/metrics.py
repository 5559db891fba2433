"""Image quality metrics for images in [0, 1], gray ``(H, W)`` or colour
``(H, W, C)``, and the one PSNR formula.

PSNR (peak signal-to-noise ratio) is ``10 log10(peak² / MSE)`` dB with
``peak = 1`` for images in [0, 1] and the MSE averaged over all pixels *and*
channels (an RGB image's PSNR is that of its pooled error, not a mean of
per-channel PSNRs), never clipped; SSIM of a colour image is the mean of the
per-channel SSIMs; :func:`psnr_from_mse` is its only
implementation.  An exact reconstruction (MSE 0) has an infinite PSNR, and
that is one documented value everywhere: ``math.inf`` in Python, the string
``"inf"`` in JSON (``float("inf")`` parses it; see :func:`psnr_json`), ``inf``
in CSV, ``"inf dB"`` on screen (:func:`format_psnr`); plot axes clip at
:data:`PSNR_PLOT_MAX_DB`.
"""

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

#: Largest PSNR (dB) a plot axis shows; an infinite PSNR is drawn at this value.
PSNR_PLOT_MAX_DB = 100.0


def psnr_from_mse(mse: float, peak: float = 1.0) -> float:
    """PSNR in dB from a mean squared error: ``10 log10(peak² / mse)``.

    Parameters
    ----------
    mse : float
        Mean squared error (units of the image values squared).
    peak : float
        Largest possible value (1 for images in [0, 1]).

    Returns
    -------
    float
        ``math.inf`` for ``mse <= 0`` (an exact reconstruction); NaN for a
        non-finite ``mse`` (a diverged step).
    """
    mse = float(mse)
    if not math.isfinite(mse):
        return math.nan
    if mse <= 0.0:
        return math.inf
    return 10.0 * math.log10(float(peak) ** 2 / mse)


def psnr_json(value: float | None) -> float | str | None:
    """A PSNR as a JSON value: a finite float as is, ``inf`` as the string
    ``"inf"`` (JSON has no infinity; ``float("inf")`` reads it back), NaN and
    None as None (null: no value)."""
    if value is None:
        return None
    v = float(value)
    if math.isnan(v):
        return None
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def format_psnr(value: float | None, digits: int = 2) -> str:
    """A PSNR for people: ``"31.42 dB"``, ``"inf dB"`` for an exact
    reconstruction, ``"n/a"`` for NaN or None."""
    if value is None or math.isnan(float(value)):
        return "n/a"
    v = float(value)
    if math.isinf(v):
        return "inf dB" if v > 0 else "-inf dB"
    return f"{v:.{digits}f} dB"


def _pair(
    a: NDArray[np.generic], b: NDArray[np.generic]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {x.shape} vs {y.shape}")
    return x, y


def mse(a: NDArray[np.generic], b: NDArray[np.generic]) -> float:
    """Mean squared error over all pixels and channels."""
    x, y = _pair(a, b)
    return float(np.mean((x - y) ** 2))


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
