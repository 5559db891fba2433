"""Image loading: any common file to a float32 image in [0, 1], gray by default.

1-, 8-, 16- and 32-bit integer and float files, gray, gray+alpha, RGB, RGBA,
palette and CMYK images are accepted (docs/inputs.md lists every rule).  Colour
goes to gray with ITU-R BT.601 luma (``0.299 R + 0.587 G + 0.114 B``, as
OpenCV's ``cvtColor(..., COLOR_RGB2GRAY)``) unless ``channels="rgb"`` asks
to keep the colour as an ``(H, W, 3)`` array (a gray file gives three equal
channels); alpha is ignored.  8- and 16-bit
values are divided by the largest value of the bit depth (255 or 65535); 32-bit
integer and float data (outside [0, 1]) is mapped by its own range, with a
message.  EXIF orientation is applied; the declared size is checked from the
header before decoding.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from numpy.typing import NDArray

from ..limits import check_input_file

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "CHANNELS",
    "IMAGE_SUFFIXES",
    "MAX_IMAGE_BYTES",
    "MAX_PIXELS",
    "MAX_PNG_CHUNK_BYTES",
    "MAX_SIDE",
    "MIN_SIDE",
    "InputWarning",
    "LoadedImage",
    "as_channels",
    "check_image",
    "check_max_size",
    "downscale_to",
    "image_channels",
    "is_image_file",
    "load_image",
    "luma",
    "read_image",
    "to_gray",
    "to_rgb",
]

#: Accepted values of the ``channels`` parameter: gray (H, W) or colour (H, W, 3).
CHANNELS: tuple[str, ...] = ("gray", "rgb")

#: Smallest accepted side in pixels: below this there are no meaningful edges.
MIN_SIDE = 8
#: Largest accepted side in pixels unless a downscale is asked for.
MAX_SIDE = 4096
#: Most pixels a file may declare to be decoded at all (with or without a downscale);
#: checked from the header, so a decompression bomb is refused before decoding.
MAX_PIXELS = 100_000_000

#: Largest image file in bytes: 2 GiB (an uncompressed 100-megapixel RGBA float file is 1.6 GB).
MAX_IMAGE_BYTES = 2 << 30
#: Largest PNG ancillary chunk (an ICC profile, a text chunk) decompressed, in bytes: 16 MiB.
#: Pillow's default (1 MiB) refuses valid files with large ICC profiles, which OpenCV reads;
#: the profile is not used (docs/inputs.md), only bounded.
MAX_PNG_CHUNK_BYTES = 16 << 20
#: Largest total of decompressed PNG text chunks in bytes: 64 MiB.
MAX_PNG_TEXT_BYTES = 64 << 20

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
        raise ValueError(f"the maximum size must be a whole number of pixels, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(
                f"the maximum size must be a whole number of pixels, got {value!r}"
            ) from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, (int, np.integer)):
        raise ValueError(f"the maximum size must be a whole number of pixels, got {value!r}")
    if int(value) < MIN_SIDE:
        raise ValueError(f"the maximum size must be at least {MIN_SIDE}, got {int(value)}")
    return int(value)


def _chunk_rows(width: int, channels: int) -> int:
    """Rows per chunk so that one float32 chunk stays near 16 MB."""
    return max(1, (4 << 20) // max(1, width * channels))


def to_gray(pixels: NDArray[np.generic], scale: float) -> F32:
    """Gray float32 image in [0, 1] from a (H, W), (H, W, 2|3|4) array of RGB(A) values.

    Converted in bands of rows, so that no float copy of the whole colour image is made
    (a large image needs little more than its decoded bytes and the float32 result).

    Parameters
    ----------
    pixels : array
        Raw values; colour channels in RGB order, alpha (last channel of 2 or 4) ignored.
        Values must already lie in ``[0, scale]``; the final clip to [0, 1] only absorbs
        the rounding of the luma weights.
    scale : float
        Largest value of the bit depth (255.0, 65535.0, or 1.0 for data already in [0, 1]).

    Raises
    ------
    ValueError
        For a shape that is not (H, W) or (H, W, 1-4).
    """
    arr = np.asarray(pixels)
    if arr.ndim == 3 and arr.shape[2] in (1, 2):  # gray or gray + alpha
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] not in (3, 4):
        raise ValueError(f"unsupported number of channels: {arr.shape[2]}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"unsupported image shape {arr.shape}")
    h, w = arr.shape[:2]
    out = np.empty((h, w), np.float32)
    inv = np.float32(1.0 / scale)
    step = _chunk_rows(w, 3 if arr.ndim == 3 else 1)
    for y0 in range(0, h, step):
        band = arr[y0 : y0 + step].astype(np.float32)
        band *= inv
        if band.ndim == 3:
            colour = np.ascontiguousarray(band[:, :, :3])
            band = np.asarray(cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY), np.float32)
        np.clip(band, 0.0, 1.0, out=out[y0 : y0 + step])
    return out


def to_rgb(pixels: NDArray[np.generic], scale: float) -> F32:
    """RGB float32 image ``(H, W, 3)`` in [0, 1] from a (H, W), (H, W, 1|2|3|4) array.

    Gray (and gray + alpha) input gives three equal channels; alpha is ignored.
    Values must already lie in ``[0, scale]`` (see :func:`to_gray`).

    Raises
    ------
    ValueError
        For a shape that is not (H, W) or (H, W, 1-4).
    """
    arr = np.asarray(pixels)
    if arr.ndim == 3 and arr.shape[2] in (1, 2):
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] not in (3, 4) or arr.ndim not in (2, 3):
        raise ValueError(f"unsupported image shape {arr.shape}")
    h, w = arr.shape[:2]
    out = np.empty((h, w, 3), np.float32)
    inv = np.float32(1.0 / scale)
    step = _chunk_rows(w, 3)
    for y0 in range(0, h, step):
        band = arr[y0 : y0 + step].astype(np.float32)
        band *= inv
        band = band[:, :, :3] if band.ndim == 3 else band[:, :, None]
        np.clip(band, 0.0, 1.0, out=out[y0 : y0 + step])  # broadcasts gray to 3 channels
    return out


def image_channels(image: NDArray[np.generic]) -> int:
    """Number of channels of an image: 1 for ``(H, W)``, ``C`` for ``(H, W, C)``."""
    return 1 if np.ndim(image) == 2 else int(np.shape(image)[2])


def luma(image: NDArray[np.generic]) -> F32:
    """The BT.601 luma ``(H, W)`` float32 of an ``(H, W, 3)`` image (OpenCV's
    ``COLOR_RGB2GRAY``); a gray ``(H, W)`` image is returned as float32.

    Raises
    ------
    ValueError
        For an image that is neither ``(H, W)`` nor ``(H, W, 3)``.
    """
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 2:
        return np.ascontiguousarray(arr)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be (H, W) or (H, W, 3), got shape {arr.shape}")
    return np.ascontiguousarray(
        cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2GRAY), dtype=np.float32
    )


def as_channels(image: NDArray[np.generic], channels: str) -> F32:
    """The image in the form a ``channels`` model needs.

    ``"gray"``: ``(H, W)`` (a colour image goes to its BT.601 luma);
    ``"rgb"``: ``(H, W, 3)`` (a gray image gives three equal channels).

    Raises
    ------
    ValueError
        For an unknown ``channels`` or an image that is neither ``(H, W)`` nor
        ``(H, W, 3)``.
    """
    if channels not in CHANNELS:
        raise ValueError(f"channels must be one of {', '.join(CHANNELS)}, got {channels!r}")
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[2] != 3 or arr.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W) gray or (H, W, 3) RGB, got shape {arr.shape}")
    if channels == "gray":
        return luma(arr)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr)


def downscale_to(image: F32, max_side: int) -> F32:
    """Downscale (area interpolation) so that the longer side is at most ``max_side``
    (gray ``(H, W)`` or colour ``(H, W, C)``)."""
    h, w = image.shape[:2]
    factor = max_side / max(h, w)
    if factor >= 1.0:
        return image
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.float32)


def check_image(
    image: NDArray[np.generic], max_side: int = MAX_SIDE, *, colour: bool = False
) -> F32:
    """Validate an in-memory image and return it as C-contiguous float32.

    Parameters
    ----------
    image : (H, W) array, or (H, W, 3) when ``colour``
    max_side : int
        Largest side in pixels.
    colour : bool
        Accept RGB ``(H, W, 3)`` images as well as gray ones.

    Raises
    ------
    ValueError
        If it is not 2-D (or, with ``colour``, ``(H, W, 3)``), is smaller than
        :data:`MIN_SIDE` or larger than ``max_side`` on a side, or holds NaN/inf
        or values outside [0, 1].
    """
    arr = np.asarray(image)
    if colour and arr.ndim == 3 and arr.shape[2] == 3:
        pass
    elif arr.ndim != 2:
        want = "(H, W) gray or (H, W, 3) RGB" if colour else "2-D (H, W) gray"
        raise ValueError(f"image must be {want}, got shape {arr.shape}")
    h, w = arr.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"image is {w}x{h} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed")
    if max(h, w) > max_side:
        raise ValueError(
            f"image is {w}x{h} pixels, larger than {max_side} on a side; "
            f"ask for a downscale to a maximum size of {max_side}"
        )
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"image must be numeric, got dtype {arr.dtype}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(out)):
        raise ValueError("image contains NaN or infinite values")
    if out.min() < 0.0 or out.max() > 1.0:
        raise ValueError(f"image values must lie in [0, 1], got [{out.min():g}, {out.max():g}]")
    return out


@dataclass(frozen=True)
class LoadedImage:
    """An image file read for modelling, with what was done to its values.

    Attributes
    ----------
    image : (H, W) or (H, W, 3) float32
        Gray (or, read with ``channels="rgb"``, RGB) values in [0, 1], EXIF
        orientation applied, downscaled if asked.
    messages : tuple of str
        One line per mapping the user should know of (a data range stretched to
        [0, 1], non-finite values replaced, a downscale); empty for the usual
        8- and 16-bit files.
    source_size : (int, int)
        ``(width, height)`` as the file declares it, before orientation and downscale.
    mode : str
        Pillow's mode of the decoded file (``"L"``, ``"RGB"``, ``"I;16"``, ``"F"``, ...).
    """

    image: F32
    messages: tuple[str, ...]
    source_size: tuple[int, int]
    mode: str


#: Pillow modes converted to RGB before the gray conversion.
_TO_RGB_MODES = ("CMYK", "YCbCr", "LAB", "HSV", "La", "RGBa", "RGBX")


def _data_range_to_unit(arr: NDArray[np.generic], kind: str) -> tuple[F32, str | None]:
    """Map one channel of 32-bit integer or float data to [0, 1] by its own range.

    Float data already within [0, 1] is kept as it is.  Otherwise the finite values'
    range ``[lo, hi]`` is mapped linearly to [0, 1] (a constant becomes 0); NaN and
    -inf become 0, +inf becomes 1.  Data with no finite value is refused.

    Returns the mapped (H, W) float32 array and the message that says what was done
    (None when nothing was changed).
    """
    data = np.asarray(arr)
    finite = np.isfinite(data) if np.issubdtype(data.dtype, np.floating) else None
    n_bad = 0 if finite is None else int(data.size - np.count_nonzero(finite))
    if n_bad == data.size:
        raise ValueError(f"{kind} image holds no finite value (all NaN or infinite)")
    if n_bad:
        assert finite is not None
        lo = float(np.min(data, where=finite, initial=np.inf))
        hi = float(np.max(data, where=finite, initial=-np.inf))
    else:
        lo, hi = float(data.min()), float(data.max())
    if finite is not None and n_bad == 0 and lo >= 0.0 and hi <= 1.0:
        return np.ascontiguousarray(data, dtype=np.float32), None
    span = hi - lo
    out = np.empty(data.shape, np.float32)
    step = _chunk_rows(data.shape[1], 2)
    for y0 in range(0, data.shape[0], step):
        band = data[y0 : y0 + step].astype(np.float64)
        band -= lo
        if span > 0:
            band *= 1.0 / span
        else:
            band[...] = 0.0
        if n_bad:
            band_raw = data[y0 : y0 + step]
            band[np.isnan(band_raw) | np.isneginf(band_raw)] = 0.0
            band[np.isposinf(band_raw)] = 1.0
        out[y0 : y0 + step] = band
    if span > 0:
        msg = f"{kind} values span [{lo:g}, {hi:g}]; mapped linearly to [0, 1] by this range"
    else:
        msg = f"{kind} image is constant ({lo:g}); mapped to 0"
    if n_bad:
        msg += f"; {n_bad} NaN or infinite values set to 0 (NaN, -inf) or 1 (+inf)"
    return out, msg


#: EXIF tag of the orientation (TIFF/EXIF 0x0112).
_EXIF_ORIENTATION = 0x0112


def _stored_16_bit(opened: Image.Image) -> bool:
    """Whether the file stores 16-bit unsigned gray that Pillow opens as 32-bit mode ``I``
    (16-bit PGM, for one): its decoder's raw mode is ``I;16*``."""
    for tile in getattr(opened, "tile", None) or ():
        args = tile.args if hasattr(tile, "args") else tile[3]
        raw = (
            args if isinstance(args, str) else (args[0] if isinstance(args, tuple) and args else "")
        )
        if isinstance(raw, str) and raw.startswith("I;16") and not raw.startswith("I;16S"):
            return True
    return False


def _decode(opened: Image.Image, label: str) -> tuple[NDArray[np.generic], float, str | None]:
    """Decode an opened file to an array, the divisor that maps it to [0, 1], and a message.

    An EXIF orientation (2-8) is applied with :func:`PIL.ImageOps.exif_transpose`, as
    image viewers do.

    The rules (documented in docs/inputs.md): 1-bit as 0/1; 8-bit modes (L, LA, RGB,
    RGBA, palette, CMYK, ...) by 255; unsigned 16-bit by 65535; 32-bit integer
    (``I``), signed 16-bit and float (``F``) by the data's own range
    (:func:`_data_range_to_unit`).
    """
    from PIL import ImageOps

    orientation = opened.getexif().get(_EXIF_ORIENTATION, 1)
    stored_16_bit = _stored_16_bit(opened)
    opened.load()
    mode = opened.mode
    img: Image.Image = opened
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        img = ImageOps.exif_transpose(opened)
    if mode in ("P", "PA"):
        img = img.convert("RGBA")
    elif mode in _TO_RGB_MODES:
        img = img.convert("RGB")
    pixels = np.asarray(img)
    dtype = pixels.dtype
    if mode == "1":
        return pixels.astype(np.uint8), 1.0, None
    if dtype.kind == "u" and dtype.itemsize == 1:
        return pixels, 255.0, None
    if (dtype.kind == "u" and dtype.itemsize == 2) or (mode == "I" and stored_16_bit):
        return pixels, 65535.0, None
    if dtype.kind in "iuf":  # 32-bit integer, signed 16-bit, float: the data's own range
        kind = "floating-point" if dtype.kind == "f" else f"{8 * dtype.itemsize}-bit integer"
        mapped, message = _data_range_to_unit(pixels, kind)
        return mapped, 1.0, message
    raise ValueError(f"{label}: unsupported pixel format (Pillow mode {mode})")


def _check_declared_size(width: int, height: int, max_size: int | None) -> None:
    """Refuse from the header alone: too small, too many pixels, or too large without a "
    "downscale."""
    if min(width, height) < MIN_SIDE:
        raise ValueError(
            f"image is {width}x{height} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed"
        )
    if width * height > MAX_PIXELS:
        raise ValueError(
            f"image declares {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), "
            f"more than the {MAX_PIXELS / 1e6:.0f} megapixels that are decoded; "
            "refused before decoding"
        )
    if max_size is None and max(width, height) > MAX_SIDE:
        raise ValueError(
            f"image is {width}x{height} pixels, larger than {MAX_SIDE} on a side; "
            f"ask for a downscale to a maximum size of {MAX_SIDE}"
        )


def read_image(
    path: str | os.PathLike[str], max_size: int | None = None, channels: str = "gray"
) -> LoadedImage:
    """Read an image file as float32 in [0, 1] (gray, or RGB with ``channels="rgb"``),
    with what was done to its values.

    The size the file declares is checked from its header before any pixel is
    decoded; EXIF orientation is applied as image viewers do
    (:func:`PIL.ImageOps.exif_transpose`); the values are mapped to [0, 1] by the rules
    of docs/inputs.md, never clipped; colour becomes ITU-R BT.601 luma; alpha is
    ignored.

    Parameters
    ----------
    path : path-like
        Any format Pillow reads (PNG, JPEG, TIFF, BMP, WebP, PGM, ...).
    max_size : int, optional
        If given, an image whose longer side exceeds it is downscaled to it
        (area interpolation).  Without it, an image larger than
        :data:`MAX_SIDE` on a side is refused.  Either way a file declaring more
        than :data:`MAX_PIXELS` pixels is refused unread.
    channels : {"gray", "rgb"}
        ``gray``: BT.601 luma ``(H, W)``; ``rgb``: the colour channels ``(H, W,
        3)`` (a gray file gives three equal channels).

    Returns
    -------
    LoadedImage

    Raises
    ------
    ValueError
        With a one-line message for a missing, empty, truncated, non-image, too small
        or too large file, data with no finite value, or memory running out.
    """
    from PIL import Image, PngImagePlugin, UnidentifiedImageError

    PngImagePlugin.MAX_TEXT_CHUNK = MAX_PNG_CHUNK_BYTES
    PngImagePlugin.MAX_TEXT_MEMORY = MAX_PNG_TEXT_BYTES
    max_size = check_max_size(max_size)
    if channels not in CHANNELS:
        raise ValueError(f"channels must be one of {', '.join(CHANNELS)}, got {channels!r}")
    p = Path(path)
    label = str(p)
    check_input_file(p, "an image file", MAX_IMAGE_BYTES)
    messages: list[str] = []
    try:
        with warnings.catch_warnings():
            # The header check below gives the message; Pillow's own bomb check
            # (which raises above twice its MAX_IMAGE_PIXELS) stays as a backstop.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(p)
        with opened:
            width, height = opened.size
            try:
                _check_declared_size(width, height, max_size)
            except ValueError as exc:
                raise ValueError(f"{label}: {exc}") from None
            mode = opened.mode
            pixels, scale, message = _decode(opened, label)
            if message:
                messages.append(message)
        gray = to_gray(pixels, scale) if channels == "gray" else to_rgb(pixels, scale)
        del pixels
        if max_size is not None and max(gray.shape[:2]) > max_size:
            h0, w0 = gray.shape[:2]
            gray = downscale_to(gray, max_size)
            messages.append(f"downscaled from {w0}x{h0} to {gray.shape[1]}x{gray.shape[0]} pixels")
    except ValueError as exc:
        if str(exc).startswith(label):
            raise
        # Pillow's own refusals (a chunk over its bounds, a bad header field) name no file
        from ..errors import one_line

        raise ValueError(f"{label}: {one_line(exc)}") from None
    except Image.DecompressionBombError as exc:
        # Pillow's own header check (above twice its MAX_IMAGE_PIXELS) came first
        declared = re.search(r"\((\d+) pixels\)", str(exc))
        amount = f"{int(declared.group(1)) / 1e6:.0f} megapixels" if declared else "more pixels"
        raise ValueError(
            f"{label}: image declares {amount}, more than the {MAX_PIXELS / 1e6:.0f} megapixels "
            "that are decoded; refused before decoding"
        ) from None
    except UnidentifiedImageError:
        raise ValueError(f"{label}: not an image file (format not recognised)") from None
    except MemoryError:
        raise ValueError(f"{label}: not enough memory to load this image") from None
    except (OSError, SyntaxError, cv2.error) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(
            f"{label}: cannot decode image, file damaged or truncated ({msg})"
        ) from None

    limit = MAX_SIDE if max_size is None else max(max_size, MAX_SIDE)
    h, w = gray.shape[:2]
    if max_size is not None and min(h, w) < MIN_SIDE:
        raise ValueError(
            f"{label}: downscaled to {w}x{h} pixels, below {MIN_SIDE}x{MIN_SIDE}; "
            "ask for a larger maximum size"
        )
    try:
        image = check_image(gray, max_side=limit, colour=channels == "rgb")
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from None
    return LoadedImage(image, tuple(messages), (width, height), mode)


def load_image(
    path: str | os.PathLike[str],
    max_size: int | None = None,
    channels: str = "gray",
    *,
    on_message: Callable[[str], None] | None = None,
) -> F32:
    """Load an image file as a float32 array in [0, 1]: gray ``(H, W)`` by
    default, RGB ``(H, W, 3)`` with ``channels="rgb"``.

    :func:`read_image` without the record: its messages (a data range stretched to
    [0, 1], a downscale) go to ``on_message``, or, without it, are issued as
    :class:`InputWarning` warnings.

    Parameters
    ----------
    path : path-like
        Any format Pillow reads (PNG, JPEG, TIFF, BMP, WebP, PGM, ...).
    max_size : int, optional
        Downscale so that the longer side is at most this (see :func:`read_image`).
    channels : {"gray", "rgb"}
        See :func:`read_image`.
    on_message : callable, optional
        Called with each one-line message.

    Returns
    -------
    (H, W) or (H, W, 3) float32

    Raises
    ------
    ValueError
        As :func:`read_image`.
    """
    loaded = read_image(path, max_size, channels)
    for message in loaded.messages:
        if on_message is not None:
            on_message(f"{path}: {message}")
        elif not message.startswith("downscaled"):
            warnings.warn(f"{path}: {message}", InputWarning, stacklevel=2)
    return loaded.image


class InputWarning(UserWarning):
    """An input file's values were mapped by a rule the user should know of."""
