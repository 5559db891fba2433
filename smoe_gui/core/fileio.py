"""Atomic file writing: a crash or kill mid-write never leaves a half file.

Every file that smoe-gui writes (models, parameters, images, reports, results)
goes through :func:`atomic_write`: the bytes go to a temporary file in the
target's folder, are flushed and fsynced, and then ``os.replace`` puts the file
in place in one step.  The previous file stays intact until that step.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray


def _read_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


#: The process umask, read once at import (reading it means setting it, which is not thread-safe).
_UMASK = _read_umask()

__all__ = [
    "atomic_write",
    "write_bytes",
    "write_text",
    "write_npz",
    "write_png",
]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success, rename it onto ``path``.

    On an exception inside the block the temporary file is removed and ``path``
    is untouched.

    Raises
    ------
    ValueError
        If the folder of ``path`` does not exist or is not writable.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"{target}: folder {folder} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ValueError(f"{target}: cannot write ({exc.strerror or exc})") from None
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, _final_mode(target))
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _final_mode(target: Path) -> int:
    """Mode for the new file: the old file's mode, else 0o666 minus the umask."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_npz(path: str | os.PathLike[str], **arrays: Any) -> None:
    """Write a compressed ``.npz`` atomically (no pickled objects)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_bytes(path, buffer.getvalue())


def write_png(path: str | os.PathLike[str], image: NDArray[Any]) -> None:
    """Write an image as PNG atomically.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) or (H, W, 4)
        float in [0, 1] (clipped) or uint8; colour images are RGB(A).
    """
    import cv2

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(np.nan_to_num(arr.astype(np.float64)), 0.0, 1.0)
        arr = np.round(arr * 255.0).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(arr))
    if not ok:
        raise ValueError(f"{path}: cannot encode PNG")
    write_bytes(path, encoded.tobytes())


def write_with(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], None]) -> None:
    """Call ``writer(handle)`` on a temporary file, then rename it onto ``path``."""
    with atomic_write(path, "wb") as handle:
        writer(handle)
