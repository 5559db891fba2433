"""What the window says while a long initialisation runs (Qt-free).

AS-SMoE's local fits take a minute or two on a 768x512 image.  While they
run, the stage job reports ``(done, total)`` through the core's hooks
(:mod:`smoe_gui.core.work`); :class:`InitStatus` turns the job's reports into
the captions of the five views ("initialising AS-SMoE..." instead of the
previous method's titles), the status-bar line ("initialising AS-SMoE:
120 / 480 local fits") and, beside it, a warning when no kernel budget bounds
the count.  The window (:mod:`smoe_gui.ui.main_window`) wires the stage worker's
signals to it and shows a Cancel button while :attr:`InitStatus.active`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...core import registry
from ...core.params import Params

__all__ = ["NO_BUDGET_WARNING", "InitStatus", "initialising_text", "is_long", "short_name"]


def is_long(method: str) -> bool:
    """Whether ``method``'s initialisation is long enough to show progress and a
    Cancel button (its registered ``reports_progress``)."""
    return method in registry.names() and bool(
        getattr(registry.get(method), "reports_progress", False)
    )


def short_name(method: str) -> str:
    """``method``'s name in running text (its registered ``long_name``, e.g. "AS-SMoE")."""
    if method not in registry.names():
        return method
    return str(getattr(registry.get(method), "long_name", "") or method)

#: The status bar's warning when AS-SMoE runs without a kernel budget.
NO_BUDGET_WARNING = (
    "no kernel budget (N = 0): the local fits choose the count, often thousands of "
    "kernels; set N to bound it"
)


def initialising_text(method: str) -> str:
    """The views' caption while ``method`` initialises: ``"initialising AS-SMoE..."``."""
    return f"initialising {short_name(method)}..."


@dataclass
class InitStatus:
    """The long initialisation now running, if any, and its texts.

    Attributes
    ----------
    rid : int
        Request id of the stage job it belongs to (-1: none).
    method : str
    warning : str
        Shown after the progress in the status bar ("" for none).
    done, total : int
        Local fits done and in all (0, 0 before the first report).
    """

    rid: int = -1
    method: str = ""
    warning: str = ""
    done: int = 0
    total: int = 0

    @property
    def active(self) -> bool:
        """Whether a long initialisation is running."""
        return self.rid >= 0

    def begin(self, rid: int, method: str, params: Params) -> str | None:
        """Stage job ``rid`` started for ``method``; the status text when it is a
        long one (its views then say :func:`initialising_text`), else None (and
        any earlier long one is over: its job was replaced)."""
        if not is_long(method) or rid < 0:
            self.rid = -1
            return None
        self.rid, self.method, self.done, self.total = rid, method, 0, 0
        self.warning = NO_BUDGET_WARNING if int(params.n_kernels) <= 0 else ""
        return self.status()

    def progress(self, rid: int, done: int, total: int) -> str | None:
        """A report of job ``rid``; the new status text, or None for a stale job."""
        if rid != self.rid:
            return None
        self.done, self.total = int(done), int(total)
        return self.status()

    def note(self, rid: int, text: str) -> str | None:
        """A warning of job ``rid`` (the core's, e.g. how many kernels are about to be
        fitted); kept after the progress.  None for a stale job."""
        if rid != self.rid:
            return None
        self.warning = text
        return self.status()

    def end(self, rid: int) -> bool:
        """Job ``rid`` ended (done, failed or cancelled); whether it was the running one."""
        if rid != self.rid:
            return False
        self.rid = -1
        return True

    def status(self) -> str:
        """The status-bar line: progress and how to stop it."""
        name = short_name(self.method)
        if self.total > 0:
            text = f"initialising {name}: {self.done:,} / {self.total:,} local fits"
        else:
            text = f"initialising {name}: superpixels..."
        return text + " · Cancel stops it"

    def warning_text(self) -> str:
        """The warning beside it ("" for none)."""
        return f"warning: {self.warning}" if self.warning else ""
