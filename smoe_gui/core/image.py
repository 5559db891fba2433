"""Image loading: any common file to a float32 gray image in [0, 1].

8- and 16-bit, gray, gray+alpha, RGB, RGBA and palette images are accepted.
Colour goes to gray with ITU-R BT.601 luma (``0.299 R + 0.587 G + 0.114 B``,
as OpenCV's ``cvtColor(..., COLOR_RGB2GRAY)``); alpha is dropped.  Values are
divided by the largest value of the bit depth (255 or 65535).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_SIDE",
    "MIN_SIDE",
    "check_image",
    "check_max_size",
    "downscale_to",
    "is_image_file",
    "load_image",
    "to_gray",
]

#: Smallest accepted side in pixels: below this there are no meaningful edges.
MIN_SIDE = 8
#: Largest accepted side in pixels unless a downscale is asked for.
MAX_SIDE = 4096

#: File name suffixes (lower case, with the dot) of the image files that
#: :func:`load_image` reads (through Pillow); the one list that folder scans,
#: file dialogs and experiments use.
IMAGE_SUFFIXES: tuple[str, ...] = (
    ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".pgm", ".ppm", ".pnm",
)

F32 = NDArray[np.float32]


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a file whose suffix is in :data:`IMAGE_SUFFIXES`."""
    p = Path(path)
    return p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()


def check_max_size(value: object) -> int | None:
    """Validate a ``--max-size`` (longest side after downscaling, in pixels).

    Parameters
    ----------
    value : int, str or None
        None means no downscaling; a string is parsed as a whole number.

    Returns
    -------
    int or None

    Raises
    ------
    ValueError
        One line, when it is not a whole number of at least :data:`MIN_SIDE`.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"--max-size must be a whole number of pixels, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"--max-size must be a whole number of pixels, got {value!r}") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, (int, np.integer)):
        raise ValueError(f"--max-size must be a whole number of pixels, got {value!r}")
    if int(value) < MIN_SIDE:
        raise ValueError(f"--max-size must be at least {MIN_SIDE}, got {int(value)}")
    return int(value)


def to_gray(pixels: NDArray[np.generic], scale: float) -> F32:
    """Gray float32 image in [0, 1] from a (H, W), (H, W, 2|3|4) array of RGB(A) values.

    Parameters
    ----------
    pixels : array
        Raw values; colour channels in RGB order.
    scale : float
        Largest value of the bit depth (255.0, 65535.0, or 1.0 for float input).
    """
    arr = np.asarray(pixels).astype(np.float32) / np.float32(scale)
    if arr.ndim == 3:
        if arr.shape[2] in (1, 2):  # gray or gray + alpha
            arr = arr[:, :, 0]
        elif arr.shape[2] in (3, 4):
            arr = np.asarray(
                cv2.cvtColor(np.ascontiguousarray(arr[:, :, :3]), cv2.COLOR_RGB2GRAY), np.float32
            )
        else:
            raise ValueError(f"unsupported number of channels: {arr.shape[2]}")
    if arr.ndim != 2:
        raise ValueError(f"unsupported image shape {arr.shape}")
    return np.ascontiguousarray(np.clip(arr, 0.0, 1.0), dtype=np.float32)


def downscale_to(image: F32, max_side: int) -> F32:
    """Downscale (area interpolation) so that the longer side is at most ``max_side``."""
    h, w = image.shape
    factor = max_side / max(h, w)
    if factor >= 1.0:
        return image
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.float32)


def check_image(image: NDArray[np.generic], max_side: int = MAX_SIDE) -> F32:
    """Validate an in-memory image and return it as C-contiguous float32.

    Raises
    ------
    ValueError
        If it is not 2-D, is smaller than :data:`MIN_SIDE` or larger than
        ``max_side`` on a side, or holds NaN/inf or values outside [0, 1].
    """
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise ValueError(f"image must be 2-D (H, W) gray, got shape {arr.shape}")
    h, w = arr.shape
    if min(h, w) < MIN_SIDE:
        raise ValueError(
            f"image is {w}x{h} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed"
        )
    if max(h, w) > max_side:
        raise ValueError(
            f"image is {w}x{h} pixels, larger than {max_side} on a side; "
            f"ask for a downscale (CLI: --max-size {max_side})"
        )
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"image must be numeric, got dtype {arr.dtype}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(out)):
        raise ValueError("image contains NaN or infinite values")
    if out.min() < 0.0 or out.max() > 1.0:
        raise ValueError(
            f"image values must lie in [0, 1], got [{out.min():g}, {out.max():g}]"
        )
    return out


def load_image(path: str | os.PathLike[str], max_size: int | None = None) -> F32:
    """Load an image file as a gray float32 array in [0, 1].

    Parameters
    ----------
    path : path-like
        Any format Pillow reads (PNG, JPEG, TIFF, BMP, WebP, ...).
    max_size : int, optional
        If given, an image whose longer side exceeds it is downscaled to it
        (area interpolation).  Without it, an image larger than
        :data:`MAX_SIDE` on a side is refused.

    Returns
    -------
    (H, W) float32

    Raises
    ------
    ValueError
        With a one-line message for a missing, empty, truncated, non-image,
        too small or too large file.
    """
    from PIL import Image, UnidentifiedImageError

    max_size = check_max_size(max_size)
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{p}: no such file")
    if p.is_dir():
        raise ValueError(f"{p}: is a folder, not an image file")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ValueError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if size == 0:
        raise ValueError(f"{p}: file is empty")
    Image.MAX_IMAGE_PIXELS = None  # our own size check below gives the message
    try:
        with Image.open(p) as opened:
            opened.load()
            mode = opened.mode
            img: Image.Image = opened
            if mode == "P" or mode == "PA":
                img = opened.convert("RGBA")
                mode = "RGBA"
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "1", "La", "RGBa", "RGBX"):
                img = opened.convert("RGB")
                mode = "RGB"
            pixels = np.asarray(img)
    except UnidentifiedImageError:
        raise ValueError(f"{p}: not an image file (format not recognised)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{p}: cannot decode image, file damaged or truncated ({msg})") from None
    except MemoryError:
        raise ValueError(f"{p}: image too large to load") from None

    if pixels.dtype == np.uint8 or mode in ("L", "LA", "RGB", "RGBA"):
        scale = 255.0
    elif pixels.dtype in (np.uint16, np.int32) or mode.startswith("I"):
        scale = 65535.0
    elif np.issubdtype(pixels.dtype, np.floating):
        scale = 1.0
    else:
        scale = float(np.iinfo(pixels.dtype).max) if np.issubdtype(pixels.dtype, np.integer) else 1.0
    if pixels.dtype == np.bool_:
        pixels = pixels.astype(np.uint8)
        scale = 1.0
    gray = to_gray(pixels, scale)
    if max_size is not None:
        gray = downscale_to(gray, max_size)
        limit = max(max_size, MAX_SIDE)
    else:
        limit = MAX_SIDE
    try:
        return check_image(gray, max_side=limit)
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from None
