"""One-line error text and paths shown safely: the one home for how an error or a
path reaches a person (CLI line, experiment record, window dialog).

* :func:`one_line` -- an exception as one line: the message of a ``ValueError``
  (the core's input errors are worded for people), the file and the reason of an
  ``OSError``, a clear sentence for a ``MemoryError``, ``Type: message`` for
  anything unexpected.
* :func:`show_path` -- a path as printable text, also when its name is not valid
  in the file-system encoding (a Latin-1 name on a UTF-8 system): undecodable
  bytes appear as ``\\xNN`` escapes instead of raising ``surrogates not allowed``.
"""

from __future__ import annotations

import errno
import os

__all__ = ["one_line", "show_path", "show_text"]


def show_text(text: str) -> str:
    """``text`` with lone surrogates (undecodable file-name bytes) escaped.

    Python decodes a file name that is not valid UTF-8 with the
    ``surrogateescape`` handler; such a string cannot be printed or encoded.
    This turns each escaped byte back into ``\\xNN``.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape")
        return raw.decode("utf-8", "backslashreplace")


def show_path(path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> str:
    """A path (str, bytes or path-like) as text that can always be printed.

    Examples
    --------
    >>> show_path(b"caf\\xe9.png")
    'caf\\\\xe9.png'
    """
    return show_text(os.fsdecode(path))


def one_line(exc: BaseException) -> str:
    """The exception as one line of text for a person.

    Parameters
    ----------
    exc : BaseException

    Returns
    -------
    str
        ``ValueError``: its message; ``OSError``: ``"FILE: reason"`` (the file
        named whenever the error carries one); ``MemoryError``: ``"not enough
        memory ..."``; anything else: ``"TypeName: message"``.  Whitespace runs
        (newlines included) become one space; paths are shown with
        :func:`show_path`.
    """
    if isinstance(exc, MemoryError):
        text = "not enough memory for this image or these parameters"
        detail = str(exc)
        return f"{text} ({_squash(detail)})" if detail else text
    if isinstance(exc, OSError):
        reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else "") or str(exc)
        names = [show_path(n) for n in (exc.filename, exc.filename2) if n not in (None, "")]
        if exc.errno == errno.ENOSPC and "no space" not in reason.lower():
            reason = f"{reason} (no space left on device)"
        line = f"{' -> '.join(names)}: {reason}" if names else reason
        return _squash(show_text(line)) or type(exc).__name__
    text = _squash(show_text(str(exc)))
    if isinstance(exc, ValueError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _squash(text: str) -> str:
    return " ".join(text.split())
