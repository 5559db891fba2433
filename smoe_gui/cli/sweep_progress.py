"""The terminal progress of ``smoe experiment``: a bar with ETA on a terminal,
plain lines otherwise.  It consumes the sweep's events as a
:class:`~smoe_gui.core.experiment.SweepObserver`."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

import numpy as np

from ..core.events import FitEvent
from ..core.experiment import SweepObserver
from ..core.experiment.report import clock

__all__ = ["Progress"]


class Progress(SweepObserver):
    """Progress of a sweep: a bar with ETA on a terminal, plain lines otherwise.

    Parameters
    ----------
    stream : text stream
        Where to write (default ``sys.stderr``).
    live : bool, optional
        Redraw one line in place; default: whether ``stream`` is a terminal.
    """

    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(live) if live is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.total = 0
        self.done = 0
        self.workers = 1
        self.expected_s = 60.0
        self.started = time.monotonic()
        self._durations: list[float] = []
        self._current = ""
        self._current_since = 0.0
        self._current_fit: tuple[float, float] | None = None
        self._last_draw = 0.0

    def start(self, total: int, workers: int, expected_s: float) -> None:
        """A sweep of ``total`` runs to do, ``expected_s`` seconds each."""
        self.total, self.workers, self.expected_s = total, max(1, workers), expected_s
        self.started = time.monotonic()
        if not self.live:
            self.note(f"{total} run(s) to do on {self.workers} worker(s)")

    def job_started(self, label: str) -> None:
        """A run started in this process."""
        self._current, self._current_since, self._current_fit = label, time.monotonic(), None
        self._draw(force=True)

    def event(self, event: FitEvent) -> None:
        """A fit event of the run in this process."""
        self._current_fit = (event.elapsed_s, event.psnr)
        self._draw()

    def job_finished(self, record: dict[str, Any]) -> None:
        """A run finished (ok or failed)."""
        self.done += 1
        if record.get("wall_s") not in ("", None):
            self._durations.append(float(record["wall_s"]))
        self._current, self._current_fit = "", None
        if record.get("status") == "ok":
            text = (
                f"{record['image']} {record['method']} {record['budget']}: "
                f"{float(record['psnr_db']):.2f} dB, SSIM {float(record['ssim']):.4f}, "
                f"{record['final_kernels']} kernels, {float(record['wall_s']):.1f} s"
            )
        else:
            text = f"{record['image']} {record['method']} {record['budget']}: FAILED ({record.get('error', '')})"
        self.note(f"[{self.done}/{self.total}] {text}")
        self._draw(force=True)

    def eta_s(self) -> float:
        """Seconds left, estimated from the finished runs (or the time budget)."""
        per_job = float(np.mean(self._durations)) if self._durations else self.expected_s
        remaining = self.total - self.done
        left = remaining * per_job / self.workers
        if self._current:
            left -= min(per_job, time.monotonic() - self._current_since) / self.workers
        return max(0.0, left)

    def _draw(self, force: bool = False) -> None:
        if not self.live:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.25:
            return
        self._last_draw = now
        width = 24
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(round(frac * width)) + "-" * (width - int(round(frac * width)))
        line = (
            f"[{bar}] {self.done}/{self.total} runs  elapsed {clock(now - self.started)}"
            f"  ETA {clock(self.eta_s())}"
        )
        if self._current:
            line += f"  | {self._current}"
            if self._current_fit is not None:
                line += f" {self._current_fit[0]:.0f}s {self._current_fit[1]:.2f} dB"
        columns = 0
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            pass
        columns = columns if columns >= 40 else 120
        self.stream.write("\r\x1b[2K" + line[: max(20, columns - 1)])
        self.stream.flush()

    def note(self, text: str) -> None:
        """Print a line (above the live bar on a terminal)."""
        if self.live:
            self.stream.write("\r\x1b[2K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the live line."""
        if self.live:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()

