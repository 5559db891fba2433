"""Saving and loading models as ``.npz`` (format documented in docs/file-format.md)."""

from __future__ import annotations

import hashlib
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..limits import MAX_PARAMS_BYTES, check_input_file, parse_json
from ..model import SmoeModel
from ..params import Params
from .fileio import write_npz

__all__ = [
    "EXPERT_CHANNELS",
    "FORMAT_VERSION",
    "MAX_ABS",
    "MAX_MODEL_BYTES",
    "MAX_MODEL_KERNELS",
    "image_digest",
    "load_model",
    "read_model_image_digest",
    "read_model_params",
    "save_model",
]

#: Version of the ``.npz`` model format written by :func:`save_model`.
#: 1: gray experts ``m`` (K,); 2: ``m`` (K,) gray or (K, C) with C channels.
FORMAT_VERSION = 2

_FLOAT_KEYS = ("mu", "A", "m", "log_alpha")


def image_digest(image: Any) -> str:
    """A fingerprint of the image a model is made for: the first 16 hex
    digits of the SHA-256 of its luma (BT.601 for a colour image) quantised
    to 8 bits, with its shape.  The same file read again, in gray or in
    colour, gives the same fingerprint; another image of the same size
    (almost surely) another.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) float array in [0, 1]
    """
    from .image import luma

    values = np.asarray(image, dtype=np.float32)
    gray = luma(values) if values.ndim == 3 else values
    q = np.round(np.clip(np.asarray(gray, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    digest = hashlib.sha256(f"{q.shape}".encode())
    digest.update(np.ascontiguousarray(q).tobytes())
    return digest.hexdigest()[:16]


def save_model(
    model: SmoeModel,
    path: str | os.PathLike[str],
    params: Params | None = None,
    image: Any = None,
    *,
    digest: str | None = None,
) -> None:
    """Write ``model`` (and the ``params`` that made it) to ``path`` atomically.

    Keys: ``mu, A, m, log_alpha`` (float64; ``m`` is ``(K,)`` for a gray
    model, ``(K, C)`` for ``C`` channels), ``height, width, format_version``
    (int64 scalars), ``params`` (JSON text, when given) and
    ``image_digest`` (:func:`image_digest` of ``image``, the image
    the model is made for, or ``digest`` when that fingerprint was taken
    before; older readers leave it unread).  Every writer of the program
    gives one, so that the window warns when a model is loaded over another
    image of the same size (``smoe_gui.ui.file_ops``).

    Raises
    ------
    ValueError
        For a ``digest`` that is not a short text of hex digits.
    """
    arrays: dict[str, object] = {
        "mu": model.mu,
        "A": model.A,
        "m": model.m,
        "log_alpha": model.log_alpha,
        "height": np.int64(model.height),
        "width": np.int64(model.width),
        "format_version": np.int64(FORMAT_VERSION),
    }
    if params is not None:
        arrays["params"] = np.array(params.to_json())
    if image is not None:
        digest = image_digest(image)
    if digest is not None:
        if not (0 < len(digest) <= 64 and all(c in "0123456789abcdef" for c in digest)):
            raise ValueError(f"an image digest is a short text of hex digits, got {digest!r}")
        arrays["image_digest"] = np.array(digest)
    write_npz(path, **arrays)


#: Most kernels a model file may declare: one per pixel of the largest image
#: loaded without a downscale (4096 x 4096); checked from the array headers.
MAX_MODEL_KERNELS = 4096 * 4096
#: Largest model file in bytes (a model of :data:`MAX_MODEL_KERNELS` gray kernels
#: is 1.1 GiB uncompressed).
MAX_MODEL_BYTES = 2 << 30
#: Largest zip central directory (the list of members) read, in bytes: 1 MiB.
MAX_DIRECTORY_BYTES = 1 << 20
#: Largest magnitude accepted per field: beyond these, ``A Aᵀ`` or the gate logits
#: overflow float64 in the renderer (``A``: 1/px; ``mu``: px; ``m``: gray values,
#: nominally [0, 1]; ``log_alpha``: natural log).
MAX_ABS: dict[str, float] = {"mu": 1e7, "A": 1e6, "m": 1e6, "log_alpha": 1e6}
#: Expert channels a model may have: gray ``m`` (K,) or RGB ``m`` (K, 3).
EXPERT_CHANNELS = (1, 3)

_SCALAR_KEYS = ("height", "width", "format_version")
_NPY_MAGIC = b"\x93NUMPY"


class _Member:
    """One ``.npy`` member of an archive, its header read and its data not yet."""

    def __init__(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> None:
        self.archive, self.info, self.label = archive, info, label
        self.key = info.filename[:-4]
        with archive.open(info) as handle:
            if handle.read(6) != _NPY_MAGIC:
                raise ValueError(f"{label} (member {info.filename!r} is not a .npy array)")
            major = handle.read(2)[0]
            if major not in (1, 2, 3):
                raise ValueError(f"{label} (member {info.filename!r}: .npy version {major})")
            reader = (
                np.lib.format.read_array_header_1_0
                if major == 1
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = reader(handle)
            header_bytes = handle.tell() if handle.seekable() else None
        if dtype.hasobject:
            raise ValueError(f"{label} (member {info.filename!r} holds Python objects)")
        self.shape: tuple[int, ...] = tuple(int(n) for n in shape)
        self.dtype: np.dtype[Any] = dtype
        self.nbytes = int(np.prod(self.shape, dtype=object)) * dtype.itemsize
        if header_bytes is not None and header_bytes + self.nbytes != info.file_size:
            raise ValueError(
                f"{label} (member {info.filename!r} declares {self.shape} {dtype} in its header "
                f"but {info.file_size} bytes in the archive)"
            )

    def read(self) -> np.ndarray:
        try:
            with self.archive.open(self.info) as handle:
                return np.asarray(np.lib.format.read_array(handle, allow_pickle=False))
        except ValueError as exc:
            reason = str(exc).splitlines()[0] if str(exc) else "unreadable"
            raise ValueError(f"{self.label} (member {self.info.filename!r}: {reason})") from None


def _archive(p: Path) -> zipfile.ZipFile:
    """The file opened as a zip after its kind, size and central directory are checked."""
    check_input_file(p, "a model file", MAX_MODEL_BYTES)
    damaged = f"{_shown(p)}: damaged or not a smoe-gui model file"
    try:
        with open(p, "rb") as handle:
            if handle.read(6) == _NPY_MAGIC:
                raise ValueError(f"{damaged} (a single array, not an .npz archive)")
            handle.seek(0)
            end = zipfile._EndRecData(handle)  # type: ignore[attr-defined]
        if not end:
            raise ValueError(f"{damaged} (not an .npz archive)")
        directory_bytes = end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
        if directory_bytes > MAX_DIRECTORY_BYTES:
            raise ValueError(
                f"{damaged} (its list of members is {directory_bytes} bytes, more than the "
                f"{MAX_DIRECTORY_BYTES} read)"
            )
        return zipfile.ZipFile(p)
    except (EOFError, zipfile.BadZipFile, zlib.error, struct.error):
        raise ValueError(f"{damaged} (the archive is truncated or corrupt)") from None
    except OSError as exc:
        raise ValueError(f"{_shown(p)}: cannot read ({exc.strerror or exc})") from None


def _shown(p: Path) -> str:
    from ..errors import show_path

    return show_path(p)


def _members(archive: zipfile.ZipFile, label: str) -> dict[str, _Member]:
    """The ``.npy`` members that a model uses, by key, headers read; other members
    (any name without a use here) are left unread."""
    wanted = {*_FLOAT_KEYS, *_SCALAR_KEYS, "params", "image_digest"}
    found: dict[str, _Member] = {}
    for info in archive.infolist():
        name = info.filename
        key = name[:-4] if name.endswith(".npy") else name
        if key not in wanted:
            continue
        if not name.endswith(".npy"):
            raise ValueError(f"{label} (member {name!r} is not a .npy array)")
        found[key] = _Member(archive, info, label)
    return found


def _check_scalar(member: _Member, label: str) -> int:
    if member.shape != () or not np.issubdtype(member.dtype, np.integer):
        raise ValueError(f"{label}: '{member.key}' must be an integer scalar")
    return int(member.read())


def _check_headers(members: dict[str, _Member], version: int, label: str) -> None:
    """Shapes and dtypes of the float members from their headers alone."""
    for key in _FLOAT_KEYS:
        if not np.issubdtype(members[key].dtype, np.floating):
            raise ValueError(
                f"{label}: '{key}' has dtype {members[key].dtype}, expected a float array"
            )
    mu = members["mu"].shape
    if len(mu) != 2 or mu[1] != 2:
        raise ValueError(f"{label}: 'mu' has shape {mu}, expected (K, 2)")
    k = mu[0]
    if k > MAX_MODEL_KERNELS:
        raise ValueError(
            f"{label}: declares {k} kernels, more than the {MAX_MODEL_KERNELS} a model may have; "
            "refused before reading"
        )
    m = members["m"].shape
    if version == 1 and len(m) != 1:
        raise ValueError(f"{label}: format version 1 holds gray experts 'm' (K,), got {m}")
    expected: dict[str, list[tuple[int, ...]]] = {
        "A": [(k, 2, 2)],
        "log_alpha": [(k,)],
        "m": [(k,)] + [(k, c) for c in EXPERT_CHANNELS],
    }
    for key, shapes in expected.items():
        shape = members[key].shape
        if shape not in shapes:
            want = " or ".join(str(s) for s in shapes)
            raise ValueError(f"{label}: '{key}' has shape {shape}, expected {want} (K = {k})")


def _check_values(arrays: dict[str, np.ndarray], label: str) -> None:
    for key in _FLOAT_KEYS:
        values = arrays[key]
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{label}: '{key}' contains NaN or infinite values")
        largest = float(np.max(np.abs(values))) if values.size else 0.0
        if largest > MAX_ABS[key]:
            raise ValueError(
                f"{label}: '{key}' holds a value of magnitude {largest:.3g}, beyond the "
                f"{MAX_ABS[key]:g} a model may have (the renderer would overflow)"
            )


def load_model(path: str | os.PathLike[str]) -> SmoeModel:
    """Read a model written by :func:`save_model` (any format version up to
    :data:`FORMAT_VERSION`; version 1 files are gray models).

    Only the members a model uses are decompressed, and only after their
    ``.npy`` headers declared the shapes and dtypes a model has (other members
    are left unread); docs/file-format.md lists every bound.

    Raises
    ------
    ValueError
        One line naming the file: missing, a FIFO, device or folder, larger than
        :data:`MAX_MODEL_BYTES`, not a zip, a used member that is not a ``.npy``
        array or whose header disagrees with its size, missing keys, a newer
        format version, wrong shapes (experts not ``(K,)`` or ``(K, 3)``) or
        dtypes, more than :data:`MAX_MODEL_KERNELS` kernels, colour experts in
        a version 1 file, NaN/inf values or values beyond :data:`MAX_ABS`, an
        image size over ``MAX_PIXELS``.
    """
    from .image import MAX_PIXELS

    p = Path(path)
    label = _shown(p)
    with _archive(p) as archive:
        try:
            members = _members(archive, f"{label}: damaged or not a smoe-gui model file")
            missing = [k for k in (*_FLOAT_KEYS, *_SCALAR_KEYS) if k not in members]
            if missing:
                raise ValueError(f"{label}: not a smoe model, missing keys: {', '.join(missing)}")
            version = _check_scalar(members["format_version"], label)
            if version > FORMAT_VERSION:
                raise ValueError(
                    f"{label}: model format version {version} is newer than this program "
                    f"supports ({FORMAT_VERSION})"
                )
            if version < 1:
                raise ValueError(
                    f"{label}: model format version {version} is not valid (1 or later)"
                )
            height = _check_scalar(members["height"], label)
            width = _check_scalar(members["width"], label)
            if height < 1 or width < 1 or height * width > MAX_PIXELS:
                raise ValueError(
                    f"{label}: image size {width}x{height} is not between 1x1 and "
                    f"{MAX_PIXELS / 1e6:.0f} megapixels"
                )
            _check_headers(members, version, label)
            arrays = {key: members[key].read() for key in _FLOAT_KEYS}
        except (EOFError, zipfile.BadZipFile, zlib.error, struct.error, OSError):
            raise ValueError(
                f"{label}: damaged or not a smoe-gui model file (the archive is truncated or "
                "corrupt)"
            ) from None
    _check_values(arrays, label)
    try:
        return SmoeModel(arrays["mu"], arrays["A"], arrays["m"], arrays["log_alpha"], height, width)
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from None


def read_model_params(path: str | os.PathLike[str]) -> Params | None:
    """The parameters stored with a model, or None when it has none.

    Raises
    ------
    ValueError
        As :func:`load_model` for the file; for ``params`` that is not JSON text
        of at most ``MAX_PARAMS_BYTES`` or not valid parameters.
    """
    p = Path(path)
    label = _shown(p)
    with _archive(p) as archive:
        try:
            members = _members(archive, f"{label}: damaged or not a smoe-gui model file")
            if "params" not in members:
                return None
            member = members["params"]
            if (
                member.shape != ()
                or member.dtype.kind != "U"
                or member.dtype.itemsize > 4 * MAX_PARAMS_BYTES
            ):
                raise ValueError(
                    f"{label}: 'params' must be JSON text of at most {MAX_PARAMS_BYTES} bytes"
                )
            text = str(member.read())
        except (EOFError, zipfile.BadZipFile, zlib.error, struct.error, OSError):
            raise ValueError(
                f"{label}: damaged or not a smoe-gui model file (the archive is truncated or "
                "corrupt)"
            ) from None
    try:
        return Params.from_dict(parse_json(text, f"{label}: stored parameters"))
    except ValueError as exc:
        text = str(exc)
        if not text.startswith(label):
            text = f"{label}: stored parameters are invalid ({text})"
        raise ValueError(text) from None


def read_model_image_digest(path: str | os.PathLike[str]) -> str | None:
    """The :func:`image_digest` stored with a model, or None when it has
    none (files written without an image, or before fingerprints).

    Raises
    ------
    ValueError
        As :func:`load_model` for the file; for a fingerprint that is not a
        short text.
    """
    p = Path(path)
    label = _shown(p)
    with _archive(p) as archive:
        try:
            members = _members(archive, f"{label}: damaged or not a smoe-gui model file")
            member = members.get("image_digest")
            if member is None:
                return None
            if member.shape != () or member.dtype.kind != "U" or member.dtype.itemsize > 4 * 64:
                raise ValueError(f"{label}: 'image_digest' must be a short text")
            return str(member.read())
        except (EOFError, zipfile.BadZipFile, zlib.error, struct.error, OSError):
            raise ValueError(
                f"{label}: damaged or not a smoe-gui model file (the archive is truncated or "
                "corrupt)"
            ) from None
