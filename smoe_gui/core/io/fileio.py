"""Atomic file writing: a crash or kill mid-write never leaves a half file.

Every file that smoe-gui writes (models, parameters, images, reports, results)
goes through :func:`atomic_write`: the bytes go to a temporary file in the
target's folder, are flushed and fsynced, and then ``os.replace`` puts the file
in place in one step.  The previous file stays intact until that step.

A command's outputs as a whole go through :func:`output_group`: every file is
written into a hidden staging folder first and moved into the output folder
only when all of them are complete, so the outputs appear all together or not
at all.  :func:`check_output_dir` checks, before any work starts, that the
output folder exists or can be created and is writable.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import shutil
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
    "FOLDER_MODE",
    "STAGING_TAG",
    "OutputLock",
    "atomic_path",
    "atomic_write",
    "check_output_dir",
    "make_folder",
    "output_group",
    "remove_stale_staging",
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
    OSError
        From writing (e.g. ``ENOSPC``, no space left on device), with
        ``filename`` set to ``path``.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"{_shown(target)}: folder {_shown(folder)} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ValueError(f"{_shown(target)}: cannot write ({exc.strerror or exc})") from None
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, _final_mode(target))
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.filename is None or os.fsdecode(exc.filename) == tmp_name:
            # name the file being written, not its temporary copy
            raise OSError(exc.errno or errno.EIO, exc.strerror or str(exc), str(target)) from exc
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary file name next to ``path`` for writers that need a name
    rather than a handle (an encoder process); on success the file is fsynced
    and renamed onto ``path``, on an exception (or when the writer left no
    file) it is removed and ``path`` is untouched.

    The temporary name ends with ``path``'s suffix (``.name.XXXX.tmp.mp4``), so
    a writer that picks its format by suffix picks the right one.

    Raises
    ------
    ValueError
        If the folder of ``path`` does not exist or is not writable, or the
        writer left no file.
    OSError
        From the rename, with ``filename`` set to ``path``.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"{_shown(target)}: folder {_shown(folder)} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=folder
        )
    except OSError as exc:
        raise ValueError(f"{_shown(target)}: cannot write ({exc.strerror or exc})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise ValueError(f"{_shown(target)}: the writer produced no file")
        os.chmod(tmp, _final_mode(target))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.filename is None or os.fsdecode(exc.filename) == tmp_name:
            raise OSError(exc.errno or errno.EIO, exc.strerror or str(exc), str(target)) from exc
        raise
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


# --------------------------------------------------------------------------------------
# Output folders: checked before work, filled all together or not at all
# --------------------------------------------------------------------------------------
def _shown(path: str | os.PathLike[str]) -> str:
    from ..errors import show_path

    return show_path(path)


def check_output_dir(path: str | os.PathLike[str]) -> Path:
    """Check that ``path`` is a writable folder or can be created as one.

    Nothing is created: the nearest existing folder on the way is checked for
    write access (an existing ``path`` by creating and removing a probe file in
    it, which also catches read-only file systems).

    Parameters
    ----------
    path : path-like
        The output folder (``--out``).

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    ValueError
        One line naming the folder: it exists and is not a folder, a part of
        the way is a file, or the folder (or the one it would be created in) is
        not writable.
    """
    out = Path(path)
    shown = _shown(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{shown}: exists and is not a folder")
    if out.is_dir():
        reason = _write_probe(out)
        if reason is not None:
            raise ValueError(f"{shown}: folder is not writable ({reason})")
        return out
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{shown}: cannot create a folder under {_shown(parent)} (not a folder)")
    reason = _write_probe(parent) if os.access(parent, os.W_OK | os.X_OK) else "permission denied"
    if reason is not None:
        raise ValueError(
            f"{shown}: cannot create the folder: {_shown(parent)} is not writable ({reason})"
        )
    return out


def _write_probe(folder: Path) -> str | None:
    """Create and remove a probe file in ``folder``; the reason it failed, or None.

    The probe catches what permission bits do not: read-only file systems,
    pseudo file systems such as ``/proc``, and a full disk's inode table.
    """
    try:
        fd, probe = tempfile.mkstemp(prefix=".smoe-write-check.", suffix=".tmp", dir=folder)
    except OSError as exc:
        return str(exc.strerror or exc).lower()
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return None


def _missing_parents(folder: Path) -> list[Path]:
    """Folders from ``folder`` upwards that do not exist, deepest first."""
    missing: list[Path] = []
    current = folder
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    return missing


@contextlib.contextmanager
def output_group(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Write a command's outputs all together or not at all.

    Yields a hidden staging folder; write every output file into it (with the
    writers of this module).  When the block ends without an error, each
    staged file is moved into ``out`` with ``os.replace`` (a rename: it cannot
    run out of space); a new ``out`` is the staging folder renamed in one
    step.  On an error (including Ctrl-C) the staging folder and every folder
    this call created are removed, files already in ``out`` are untouched, and
    the error names the output file, not the staging copy.

    Parameters
    ----------
    out : path-like
        The output folder; it may exist (its other files are kept) or not.

    Raises
    ------
    ValueError
        From :func:`check_output_dir`, before anything is created.
    OSError
        From the writers, with ``filename`` the file in ``out``.
    """
    target = check_output_dir(out)
    created = _missing_parents(target.parent)
    staging: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(target)
        tag = f"{STAGING_TAG}{os.getpid()}."
        if target.is_dir():
            staging = Path(tempfile.mkdtemp(prefix=f".{tag}", suffix=".tmp", dir=target))
        else:
            staging = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.{tag}", suffix=".tmp", dir=target.parent)
            )
            os.chmod(
                staging, FOLDER_MODE & ~_UMASK
            )  # mkdtemp makes 0700; a folder follows the umask
        try:
            yield staging
        except OSError as exc:
            raise _renamed(exc, staging, target) from exc
        except ValueError as exc:
            text = str(exc).replace(str(staging), str(target))
            if text != str(exc):
                raise ValueError(text) from exc
            raise
        if target.is_dir():
            for item in sorted(staging.iterdir()):
                os.replace(item, target / item.name)
            staging.rmdir()
        else:
            os.replace(staging, target)
        staging = None
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # deepest first; only if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


#: Part of every staging folder's name, followed by the process id of its writer.
STAGING_TAG = "smoe-staging."
#: Mode of a new folder before the umask (as ``mkdir``): rwx for all.
FOLDER_MODE = 0o777
_STAGING_NAME = re.compile(r"^\.(?:.*\.)?" + re.escape(STAGING_TAG) + r"(\d+)\..*\.tmp$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(out: str | os.PathLike[str]) -> list[Path]:
    """Remove the staging folders a killed writer left in or beside ``out``.

    A staging folder's name carries its writer's process id; one whose process
    no longer runs (SIGKILL during the writes, a power cut) is removed, one of a
    running process is kept.

    Returns
    -------
    list of Path
        The folders removed.
    """
    target = Path(out)
    removed: list[Path] = []
    places = [(target.parent, f".{target.name}.")]
    if target.is_dir():
        places.append((target, "."))
    for folder, prefix in places:
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            match = _STAGING_NAME.match(entry.name)
            if (
                match is None
                or not entry.name.startswith(prefix)
                or not entry.is_dir()
                or _alive(int(match.group(1)))
            ):
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def make_folder(path: str | os.PathLike[str]) -> Path:
    """``mkdir -p`` whose new folders have :data:`FOLDER_MODE` minus the umask
    (as the files written into them), whatever the caller's ``mkdir`` mode."""
    folder = Path(path)
    missing = _missing_parents(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for item in missing:
        with contextlib.suppress(OSError):
            os.chmod(item, FOLDER_MODE & ~_UMASK)
    return folder


class OutputLock:
    """An advisory lock file ``out/.smoe.lock`` held while a process writes ``out``.

    A second process on the same folder is refused at once with one line
    (:func:`fcntl.flock`, so the lock goes with the process, also on SIGKILL;
    the file itself is left, empty).  Where ``fcntl`` does not exist (Windows)
    no lock is taken.

    Raises
    ------
    ValueError
        From :meth:`acquire` when another process holds the lock.
    """

    NAME = ".smoe.lock"

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.path = Path(out) / self.NAME
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ValueError(
                f"{_shown(self.path.parent)}: another smoe process is writing this folder "
                "(wait for it to end, or give another --out)"
            ) from None
        self._fd = fd  # the file stays empty and untouched: the lock is the process's
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _renamed(exc: OSError, staging: Path, target: Path) -> OSError:
    """``exc`` with its file name moved from the staging folder to ``target``."""
    name = exc.filename
    if name is None:
        return exc
    text = os.fsdecode(name)
    prefix = str(staging)
    if not text.startswith(prefix):
        return exc
    inner = Path(text).relative_to(staging)
    parts = inner.parts
    if parts and parts[-1].startswith(".") and parts[-1].endswith(".tmp"):
        # the writer's temporary file ".NAME.xxxx.tmp": report NAME
        stem = parts[-1][1:].rsplit(".", 2)[0]
        inner = Path(*parts[:-1], stem)
    return OSError(exc.errno or errno.EIO, exc.strerror or str(exc), str(target / inner))
