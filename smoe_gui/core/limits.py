"""Reading a file that may not be what it says: kind and size checked before reading.

Every file smoe-gui reads by name (images, models, parameter files, run
records) is first looked at with :func:`check_input_file`: a FIFO, a device
(``/dev/zero``), a socket or a folder is refused before it is opened (opening a
FIFO blocks until a writer comes), and so is a file larger than the bound its
kind has (docs/inputs.md, "Size bounds").  Text that is read whole goes through
:func:`read_bounded_text` (never more than the bound plus one byte is read, even
when the file grows meanwhile) and JSON through :func:`parse_json`, which
refuses duplicate keys, nesting deeper than a bound and integers with more
digits than a bound, each with one line naming the file.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT_DIGITS",
    "MAX_PARAMS_BYTES",
    "MAX_RECORD_BYTES",
    "check_input_file",
    "file_kind",
    "parse_json",
    "read_bounded_text",
    "read_json_file",
]

#: Largest parameter file (``--params``, ``sweep.json``) in bytes: 1 MiB (a full
#: parameter set is about 1 kB).
MAX_PARAMS_BYTES = 1 << 20
#: Largest run record (``runs/<run_id>.json``) in bytes: 64 MiB (a record with the
#: stored history of :data:`~smoe_gui.core.experiment.store.HISTORY_POINTS` rows is
#: about 0.5 MB).
MAX_RECORD_BYTES = 64 << 20
#: Deepest nesting of arrays and objects in any JSON file read (parameters are
#: depth 1, run records depth 4).
MAX_JSON_DEPTH = 32
#: Most digits of an integer in any JSON file read (a 64-bit integer has 20).
MAX_JSON_INT_DIGITS = 30


def _shown(path: str | os.PathLike[str]) -> str:
    from .errors import show_path

    return show_path(path)


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, in words (``"a FIFO"``, ``"a character device"``, ...)."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_input_file(
    path: str | os.PathLike[str], what: str, max_bytes: int | None = None,
    *, empty_ok: bool = False,
) -> int:
    """Check, without opening it, that ``path`` is a regular file of at most ``max_bytes``.

    Parameters
    ----------
    path : path-like
        The file (symbolic links are followed).
    what : str
        What the file should be, with its article, for the message (``"an image
        file"``, ``"a model file"``).
    max_bytes : int, optional
        Largest accepted size in bytes; None: no bound.
    empty_ok : bool
        Accept an empty file.

    Returns
    -------
    int
        The file's size in bytes.

    Raises
    ------
    ValueError
        One line naming the file: missing, a folder, a FIFO, a device or a
        socket, unreadable, empty, or larger than ``max_bytes``.
    """
    shown = _shown(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ValueError(f"{shown}: no such file") from None
    except OSError as exc:
        raise ValueError(f"{shown}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{shown}: is {file_kind(info.st_mode)}, not {what}; refused unread")
    if info.st_size == 0 and not empty_ok:
        raise ValueError(f"{shown}: file is empty")
    if max_bytes is not None and info.st_size > max_bytes:
        raise ValueError(
            f"{shown}: {_size_text(info.st_size)}, larger than the {_size_text(max_bytes)} "
            f"allowed for {what}; refused unread"
        )
    return int(info.st_size)


def _size_text(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} bytes"


def read_bounded_text(path: str | os.PathLike[str], what: str, max_bytes: int) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes`` bytes.

    Checked with :func:`check_input_file` first; at most ``max_bytes + 1`` bytes
    are read, so a file that grows while it is read is refused too.

    Raises
    ------
    ValueError
        As :func:`check_input_file`; for a file that is not UTF-8 text.
    """
    check_input_file(path, what, max_bytes)
    shown = _shown(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ValueError(f"{shown}: cannot read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise ValueError(f"{shown}: grew beyond {_size_text(max_bytes)} while being read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{shown}: not UTF-8 text (byte {exc.start})") from None


#: JSON strings (with escapes) and the brackets that nest, for the depth pre-scan.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def _json_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` outside strings (a scan, no recursion)."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def _no_duplicates(source: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ValueError(f"{source}: key {key!r} appears twice in one object")
            result[key] = value
        return result

    return hook


def _bounded_int(source: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        digits = len(text.lstrip("-"))
        if digits > MAX_JSON_INT_DIGITS:
            raise ValueError(
                f"{source}: an integer of {digits} digits (at most {MAX_JSON_INT_DIGITS} are read)"
            )
        return int(text)

    return parse


def parse_json(text: str, source: str) -> Any:
    """Parse JSON text strictly: one meaning per document, bounded work.

    Parameters
    ----------
    text : str
    source : str
        Names the text in messages (a file name, ``"parameters"``).

    Returns
    -------
    object
        What :func:`json.loads` returns (NaN and Infinity are read as floats).

    Raises
    ------
    ValueError
        One line starting with ``source``: malformed JSON (line and column),
        a key twice in one object, nesting deeper than :data:`MAX_JSON_DEPTH`,
        an integer of more than :data:`MAX_JSON_INT_DIGITS` digits.
    """
    depth = _json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(
            f"{source}: JSON nested {depth} deep (at most {MAX_JSON_DEPTH} levels are read)"
        )
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates(source),
                          parse_int=_bounded_int(source))
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{source}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:  # the pre-scan bounds the depth; this is a second line of defence
        raise ValueError(f"{source}: JSON nested too deep") from None


def read_json_file(path: str | os.PathLike[str], what: str, max_bytes: int) -> Any:
    """:func:`read_bounded_text` then :func:`parse_json`, messages naming ``path``.

    Raises
    ------
    ValueError
        As those two functions.
    """
    return parse_json(read_bounded_text(path, what, max_bytes), _shown(Path(path)))
