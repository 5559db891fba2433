"""Saving and loading models as ``.npz`` (format documented in docs/file-format.md)."""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..model import SmoeModel
from ..params import Params
from .fileio import write_npz

__all__ = ["FORMAT_VERSION", "load_model", "read_model_params", "save_model"]

#: Version of the ``.npz`` model format written by :func:`save_model`.
#: 1: gray experts ``m`` (K,); 2: ``m`` (K,) gray or (K, C) with C channels.
FORMAT_VERSION = 2

_FLOAT_KEYS = ("mu", "A", "m", "log_alpha")


def save_model(model: SmoeModel, path: str | os.PathLike[str], params: Params | None = None) -> None:
    """Write ``model`` (and the ``params`` that made it) to ``path`` atomically.

    Keys: ``mu, A, m, log_alpha`` (float64; ``m`` is ``(K,)`` for a gray
    model, ``(K, C)`` for ``C`` channels), ``height, width, format_version``
    (int64 scalars) and ``params`` (JSON text, when given).
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
    write_npz(path, **arrays)


def _open(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{p}: no such file")
    if p.is_dir():
        raise ValueError(f"{p}: is a folder, not a model file")
    damaged = f"{p}: damaged or not a smoe-gui model file"
    try:
        with np.load(p, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise ValueError(f"{damaged} (a single array, not an .npz archive)")
            return {k: data[k] for k in data.files}
    except ValueError as exc:
        if str(exc).startswith(str(p)):
            raise
        if "pickle" in str(exc):  # numpy's advice about allow_pickle means nothing to a user
            raise ValueError(f"{damaged} (not an .npz archive of numeric arrays)") from None
        raise ValueError(f"{damaged} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    except (EOFError, zipfile.BadZipFile, zlib.error):
        raise ValueError(f"{damaged} (the archive is truncated or corrupt)") from None
    except OSError as exc:
        raise ValueError(f"{p}: cannot read ({exc.strerror or exc})") from None


def load_model(path: str | os.PathLike[str]) -> SmoeModel:
    """Read a model written by :func:`save_model` (any format version up to
    :data:`FORMAT_VERSION`; version 1 files are gray models).

    Raises
    ------
    ValueError
        For a missing or unreadable file, missing keys, a newer format version,
        wrong shapes or dtypes, colour experts in a version 1 file, or NaN/inf
        values.
    """
    p = Path(path)
    data = _open(p)
    missing = [k for k in (*_FLOAT_KEYS, "height", "width", "format_version") if k not in data]
    if missing:
        raise ValueError(f"{p}: not a smoe model, missing keys: {', '.join(missing)}")
    version = data["format_version"]
    if version.shape != () or not np.issubdtype(version.dtype, np.integer):
        raise ValueError(f"{p}: 'format_version' must be an integer scalar")
    if int(version) > FORMAT_VERSION:
        raise ValueError(
            f"{p}: model format version {int(version)} is newer than this program "
            f"supports ({FORMAT_VERSION})"
        )
    if int(version) < 1:
        raise ValueError(f"{p}: model format version {int(version)} is not valid (1 or later)")
    if int(version) == 1 and data["m"].ndim != 1:
        raise ValueError(f"{p}: format version 1 holds gray experts 'm' (K,), got {data['m'].shape}")
    for key in _FLOAT_KEYS:
        if not np.issubdtype(data[key].dtype, np.floating):
            raise ValueError(f"{p}: '{key}' has dtype {data[key].dtype}, expected a float array")
    for key in ("height", "width"):
        if data[key].shape != () or not np.issubdtype(data[key].dtype, np.integer):
            raise ValueError(f"{p}: '{key}' must be an integer scalar")
    try:
        return SmoeModel(
            data["mu"], data["A"], data["m"], data["log_alpha"],
            int(data["height"]), int(data["width"]),
        )
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from None


def read_model_params(path: str | os.PathLike[str]) -> Params | None:
    """The parameters stored with a model, or None when it has none."""
    data = _open(path)
    if "params" not in data:
        return None
    text = data["params"]
    if text.shape != () or text.dtype.kind != "U":
        raise ValueError(f"{path}: 'params' must be JSON text")
    try:
        return Params.from_dict(json.loads(str(text)))
    except (json.JSONDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: stored parameters are invalid ({exc})") from None
