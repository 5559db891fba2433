"""Progress and cancellation of long core work (Qt-free).

Work that takes long (today AS-SMoE's local fits, about 100 s on a 768x512
image) reports its progress as ``(done, total)`` through a callback and stops
when a cancel callback says so, raising :class:`Cancelled`.  The hooks travel
either as an argument (``hooks=`` of
:func:`~smoe_gui.core.methods.segment.segment_init.as_smoe_kernels`) or, so that
the calls in between need not carry them, in a context variable set by
:func:`reporting`::

    with reporting(progress=on_progress, cancel=event.is_set):  # on_progress(done, total)
        init = initialize(image, params, "as-smoe")   # raises Cancelled once event is set

The context variable belongs to the thread (and context) that set it: work
that the core spreads over a thread pool hands the hooks over explicitly.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Cancelled", "WorkHooks", "current_hooks", "reporting"]


class Cancelled(Exception):
    """The work was cancelled through its :class:`WorkHooks` (nothing was returned)."""


@dataclass(frozen=True)
class WorkHooks:
    """Callbacks of one piece of long work.

    Attributes
    ----------
    progress : callable ``(done, total) -> None``, optional
        Called from the thread that runs the work (or one of its pool's
        threads) whenever a unit is done; ``0 <= done <= total``, ``total``
        may grow between calls (a count not known in advance).
    cancel : callable ``() -> bool``, optional
        Polled at least every few hundred milliseconds of work; once it
        returns True the work stops and raises :class:`Cancelled`.
    note : callable ``(text) -> None``, optional
        A warning worth showing before the long part starts (e.g. AS-SMoE
        without a kernel budget about to fit thousands of kernels).
    """

    progress: Callable[[int, int], None] | None = None
    cancel: Callable[[], bool] | None = None
    note: Callable[[str], None] | None = None

    def cancelled(self) -> bool:
        """Whether the cancel callback asks to stop."""
        return self.cancel is not None and bool(self.cancel())

    def check(self) -> None:
        """Raise :class:`Cancelled` when the cancel callback asks to stop."""
        if self.cancelled():
            raise Cancelled("cancelled")

    def report(self, done: int, total: int) -> None:
        """Pass ``(done, total)`` to the progress callback, if any."""
        if self.progress is not None:
            self.progress(int(done), int(total))

    def warn(self, text: str) -> None:
        """Pass a warning to the note callback, if any."""
        if self.note is not None:
            self.note(text)


_HOOKS: contextvars.ContextVar[WorkHooks] = contextvars.ContextVar(
    "smoe_work_hooks", default=WorkHooks()  # noqa: B039 (immutable)
)


def current_hooks() -> WorkHooks:
    """The hooks set by the innermost :func:`reporting` of this context (else none)."""
    return _HOOKS.get()


@contextmanager
def reporting(
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    note: Callable[[str], None] | None = None,
) -> Iterator[WorkHooks]:
    """Set the hooks of the long work run inside the ``with`` block (this thread only)."""
    hooks = WorkHooks(progress, cancel, note)
    token = _HOOKS.set(hooks)
    try:
        yield hooks
    finally:
        _HOOKS.reset(token)
