"""Terminal progress of the ``smoe`` commands: one implementation, on tqdm.

* :class:`Progress` -- a bar with a status text when the stream is a terminal
  (drawn by `tqdm <https://tqdm.github.io>`_), plain lines at most every
  ``plain_interval_s`` seconds otherwise (logs, pipes, CI).  Updates are
  throttled, so calling it on every training step costs next to nothing.
* :class:`FitProgress` -- a :class:`Progress` fed with
  :class:`~smoe_gui.core.events.FitEvent`\\ s: the bar follows the time budget,
  the status shows phase, step, the whole-image PSNR (``inf dB`` for an
  exact reconstruction; the tile's own PSNR after it, labelled, during the
  tile phase), kernel count and "elapsed / budget s"; divergence, slides back
  to the best model, re-placements of the least useful kernels, merge and stop
  messages are printed on their own lines.

* :class:`WorkProgress` -- a :class:`Progress` made on the first report of long
  core work (AS-SMoE's local fits: "120 / 480 local fits"), fed through the
  hooks of :mod:`smoe_gui.core.work`; its warnings print as ``smoe: warning:``.

``smoe fit`` uses :class:`FitProgress`; ``smoe init`` and ``smoe fit`` use
:class:`WorkProgress` while they initialise; ``smoe experiment`` uses
:class:`Progress` with one unit per run (``update(done, status)``) and may feed
the running job's events through :meth:`FitProgress.status_of`.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from ..core.errors import show_text
from ..core.train.messages import is_notable, status_line

if TYPE_CHECKING:
    from ..core.events import FitEvent

__all__ = ["FitProgress", "Progress", "WorkProgress", "is_terminal"]

_P = TypeVar("_P", bound="Progress")


def _fixed_size(stream: TextIO) -> tuple[int, int] | None:
    """None when the terminal reports its size (the bar then follows resizes);
    otherwise ``(columns, lines)`` from ``COLUMNS``/``LINES`` or 80x24.  A
    pseudo-terminal of size 0x0 (under ``script``, some CI runners) would
    otherwise make tqdm draw nothing at all."""
    try:
        size = os.get_terminal_size(stream.fileno())
        if size.columns > 0 and size.lines > 0:
            return None
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        pass
    fallback = shutil.get_terminal_size((80, 24))
    return (fallback.columns or 80, fallback.lines or 24)


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """A progress bar on a terminal, plain lines elsewhere.

    Parameters
    ----------
    total : float
        The amount that means done (seconds of budget, number of runs, ...).
    desc : str
        A short label in front of the bar and of every plain line.
    unit : str
        Unit of ``total`` (shown by the bar).
    stream : text stream, optional
        Where to write (default ``sys.stderr``).
    quiet : bool
        Write nothing at all.
    tty : bool, optional
        Force the bar (True) or plain lines (False); default: whether
        ``stream`` is a terminal.
    interval_s : float
        Least seconds between two redraws of the bar.
    plain_interval_s : float
        Least seconds between two plain lines (forced lines always print).

    Use as a context manager or call :meth:`close` at the end.
    """

    def __init__(
        self,
        total: float,
        desc: str,
        *,
        unit: str = "",
        stream: TextIO | None = None,
        quiet: bool = False,
        tty: bool | None = None,
        interval_s: float = 0.1,
        plain_interval_s: float = 2.0,
    ) -> None:
        self.stream: TextIO = stream if stream is not None else sys.stderr
        self.total = float(total) if total and math.isfinite(total) and total > 0 else 1.0
        self.desc = desc
        self.quiet = quiet
        self.tty = is_terminal(self.stream) if tty is None else tty
        self.interval_s = interval_s
        self.plain_interval_s = plain_interval_s
        self._last = -math.inf
        self._status = ""
        self._done = 0.0
        self._bar: Any = None
        if not quiet and self.tty:
            from tqdm import tqdm

            size = _fixed_size(self.stream)
            self._bar = tqdm(
                total=self.total, desc=desc, unit=unit, file=self.stream, leave=True,
                dynamic_ncols=size is None, ncols=size[0] if size else None,
                nrows=size[1] if size else None, mininterval=0.0, miniters=1,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix[0]}", postfix=[""],
            )

    # -- updates -----------------------------------------------------------------
    def update(self, done: float, status: str = "", *, force: bool = False) -> None:
        """Set the amount done (absolute, clipped to ``total``) and the status text.

        Throttled: the bar redraws at most every ``interval_s`` seconds, a
        plain line prints at most every ``plain_interval_s`` seconds, unless
        ``force``.
        """
        if self.quiet:
            return
        self._done = min(max(float(done), 0.0), self.total)
        self._status = status
        now = time.perf_counter()
        wait = self.interval_s if self._bar is not None else self.plain_interval_s
        if not force and now - self._last < wait:
            return
        self._last = now
        self._draw()

    def _draw(self) -> None:
        if self._bar is not None:
            self._bar.n = self._done
            self._bar.postfix = [show_text(self._status)]  # a list: tqdm adds no ", "
            self._bar.refresh()
        else:
            self._write(f"{self.desc}: {self._status}" if self._status else self.desc)

    def note(self, message: str) -> None:
        """Print ``message`` on a line of its own (above the bar on a terminal)."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.write(f"  {show_text(message)}", file=self.stream)
        else:
            self._write(f"  {message}")

    def _write(self, line: str) -> None:
        self.stream.write(show_text(line) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Draw the last state and end the bar's line (idempotent)."""
        if self.quiet:
            return
        if self._bar is not None:
            self._draw()
            self._bar.close()
            self._bar = None
        self.quiet = True

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class FitProgress(Progress):
    """:class:`Progress` of one fit, fed with its events (call it with each one).

    The bar runs over the time budget (``params.time_budget`` seconds); a new
    phase, the final event and a message worth reading (a diverging step
    undone, a slide back to the best model, a re-placement of the least useful
    kernels, the merge, the reason the fit stopped) always show.

    Parameters
    ----------
    time_budget_s : float
        The fit's training budget in seconds.
    desc : str
        Label (default ``"fit"``).
    **kwargs
        As :class:`Progress`.
    """

    def __init__(self, time_budget_s: float, desc: str = "fit", **kwargs: Any) -> None:
        super().__init__(time_budget_s, desc, unit="s", **kwargs)
        self.budget_s = float(time_budget_s)
        self._phase = ""

    @staticmethod
    def status_of(event: FitEvent, budget_s: float | None = None) -> str:
        """One line describing ``event`` (:func:`smoe_gui.core.train.messages.status_line`):
        phase, step, the whole-image PSNR, the tile's PSNR labelled as such during
        ``tiles``, kernels, and "elapsed / budget s"."""
        whole = event.image_psnr
        if whole is None and event.phase != "tiles":
            whole = event.psnr  # from the merge on, the event's PSNR is the whole image's
        return status_line(
            event.phase, event.step, whole, event.n_kernels, event.elapsed_s, budget_s,
            tile=event.tile, n_tiles=event.n_tiles, tile_psnr=event.tile_psnr,
        )

    def __call__(self, event: FitEvent) -> None:
        if self.quiet:
            return
        changed = event.phase != self._phase
        self._phase = event.phase
        important = event.message is not None and (
            is_notable(event.message) or event.phase == "merge" or event.final
        )
        done = self.total if event.final else event.elapsed_s
        self.update(done, self.status_of(event, self.budget_s),
                    force=changed or important or event.final)
        if important and event.message is not None:
            self.note(event.message)


class WorkProgress:
    """Progress of long core work, given to :func:`smoe_gui.core.work.reporting`.

    Call it with ``(done, total)``; the first call makes a :class:`Progress`
    of ``total`` units, later ones update it ("done / total local fits") and
    the last one (``done == total``) always shows.  :meth:`note` prints a
    warning as ``smoe: warning: ...`` (above the bar when there is one).

    Parameters
    ----------
    desc : str
        Label of the bar.
    what : str
        What the units are, in the status text.
    **kwargs
        As :class:`Progress` (``stream``, ``quiet``, ``tty``, ...).
    """

    def __init__(self, desc: str = "initialise", what: str = "local fits", **kwargs: Any) -> None:
        self.desc = desc
        self.what = what
        self._kwargs = kwargs
        self.stream: TextIO = kwargs.get("stream") or sys.stderr
        self.quiet = bool(kwargs.get("quiet", False))
        self._bar: Progress | None = None
        self._closed = False

    def __call__(self, done: int, total: int) -> None:
        if self.quiet or self._closed:
            return
        if self._bar is None:
            self._bar = Progress(total, self.desc, unit=self.what.split()[-1], **self._kwargs)
        self._bar.update(done, f"{done:,} / {total:,} {self.what}", force=done >= total)

    def note(self, text: str) -> None:
        """Print ``smoe: warning: text`` on the stream (even when quiet: it is a warning)."""
        line = f"smoe: warning: {show_text(text)}"
        if self._bar is not None and self._bar._bar is not None:
            self._bar._bar.write(line, file=self.stream)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        """End the bar (idempotent); later reports are ignored."""
        self._closed = True
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> WorkProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
