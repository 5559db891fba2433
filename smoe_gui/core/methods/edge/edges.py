"""Canny edge detection (paper Sec. III-A) with relative thresholds.

The thresholds ``low`` and ``high`` are fractions of the largest gradient
magnitude of the (blurred) image, so one setting behaves alike on dark and
bright, low- and high-contrast images.

Route: Gaussian blur of the float image (``sigma`` px; 0 = none), 3x3 Sobel
derivatives ``dx, dy`` in float32, then both scaled into int16 so that the
largest gradient magnitude maps to :data:`GRADIENT_SCALE`, and OpenCV's
``Canny(dx, dy, low·S, high·S, L2gradient=True)`` does the non-maximum
suppression and the hysteresis.  Scaling keeps 14 bits of gradient precision
whatever the image's contrast.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["GRADIENT_SCALE", "blur", "canny_edges", "gradients"]

#: The largest gradient magnitude is mapped to this int16 value.  Both
#: components then fit in int16, and OpenCV's squared L2 magnitude
#: (``dx² + dy²`` in int32) cannot overflow.
GRADIENT_SCALE = 16384.0


def blur(image: NDArray[np.float32], sigma: float) -> NDArray[np.float32]:
    """Gaussian blur with standard deviation ``sigma`` (px); ``sigma = 0`` copies.

    The kernel is ``2·ceil(3σ) + 1`` taps wide; borders reflect
    (``BORDER_REFLECT_101``).

    Parameters
    ----------
    image : (H, W) float32
    sigma : float
        Standard deviation in pixels, >= 0.

    Returns
    -------
    (H, W) float32
    """
    img = np.ascontiguousarray(image, dtype=np.float32)
    if sigma <= 0.0:
        return img.copy()
    radius = max(1, int(math.ceil(3.0 * sigma)))
    size = 2 * radius + 1
    out = cv2.GaussianBlur(img, (size, size), sigmaX=sigma, sigmaY=sigma,
                           borderType=cv2.BORDER_REFLECT_101)
    return np.asarray(out, dtype=np.float32)


def gradients(
    image: NDArray[np.float32], sigma: float
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Sobel derivatives of the blurred image.

    Returns
    -------
    dx, dy : (H, W) float32
        Derivative along x (columns) and y (rows), 3x3 Sobel (gray levels per
        pixel, times the Sobel gain 8).
    """
    smooth = blur(image, sigma)
    dx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    dy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    return np.asarray(dx, dtype=np.float32), np.asarray(dy, dtype=np.float32)


def canny_edges(
    image: NDArray[np.float32], sigma: float, low: float, high: float
) -> NDArray[np.bool_]:
    """Canny edge mask with thresholds relative to the largest gradient.

    Parameters
    ----------
    image : (H, W) float32
        Gray image in [0, 1].
    sigma : float
        Gaussian blur standard deviation in pixels (0 disables the blur).
    low, high : float
        Hysteresis thresholds as fractions in [0, 1] of the largest gradient
        magnitude; ``low <= high``.

    Returns
    -------
    (H, W) bool
        True on edge pixels.  A constant image (no gradient) has none.

    Raises
    ------
    ValueError
        For a non-2-D image, a negative ``sigma`` or thresholds outside [0, 1]
        or in the wrong order.
    """
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D (H, W), got shape {img.shape}")
    if not (sigma >= 0.0):
        raise ValueError(f"canny_sigma must be >= 0, got {sigma}")
    if not (0.0 <= low <= 1.0 and 0.0 <= high <= 1.0):
        raise ValueError(f"Canny thresholds must lie in [0, 1], got low={low}, high={high}")
    if low > high:
        raise ValueError(f"canny_low ({low}) must not exceed canny_high ({high})")
    dx, dy = gradients(img.astype(np.float32, copy=False), sigma)
    _, peak, _, _ = cv2.minMaxLoc(cv2.magnitude(dx, dy))
    if not math.isfinite(peak) or peak <= 1e-12:
        return np.zeros(img.shape, dtype=bool)
    factor = GRADIENT_SCALE / peak
    # saturating, rounding conversion to int16 in one pass each
    dx16 = cv2.multiply(dx, factor, dtype=cv2.CV_16S)  # type: ignore[call-overload]
    dy16 = cv2.multiply(dy, factor, dtype=cv2.CV_16S)  # type: ignore[call-overload]
    mask = cv2.Canny(dx16, dy16, low * GRADIENT_SCALE, high * GRADIENT_SCALE, L2gradient=True)
    return np.asarray(mask) > 0
