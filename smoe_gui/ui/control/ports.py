"""What the session talks to (Qt-free protocols): the job queues that run work
off the GUI thread, the trainers, and the view it tells what to draw.

The window (:mod:`smoe_gui.ui.main_window`) and the worker threads
(:mod:`smoe_gui.ui.workers`) implement them; ``tests/test_session.py``
implements them with fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from .jobs import InspectResult, ProgressBatch, SnapshotResult, StageResult, TrainRun

__all__ = ["JobQueue", "SessionView", "Trainer", "TrainerFactory"]


class JobQueue(Protocol):
    """Runs ``fn(*args)`` off the GUI thread as job ``job_id`` (latest wins)."""

    def submit(self, job_id: int, fn: Callable[..., Any], *args: Any) -> None: ...


class Trainer(Protocol):
    """A training (or Compare) run in progress (:class:`smoe_gui.ui.workers.TrainingThread`)."""

    @property
    def paused(self) -> bool: ...

    def is_running(self) -> bool: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def stop(self) -> None: ...

    def stop_and_wait(self) -> bool: ...

    def wait(self) -> bool: ...

    def drain(self) -> list[tuple[Any, ...]]: ...


#: ``start_trainer(image, runs)``: start training ``runs`` on ``image`` (H, W) or (H, W, 3) float32.
TrainerFactory = Callable[[NDArray[np.float32], list[TrainRun]], Trainer]


class SessionView(Protocol):
    """What the session asks of its view (the window, or a fake in tests)."""

    def show_image(self, image: NDArray[np.float32], path: Path | None) -> None:
        """A new image: clear every stage."""

    def show_stages(
        self, request_id: int, result: StageResult, snapshot: SnapshotResult | None
    ) -> None:
        """Draw every stage of ``result``; ``snapshot`` (a trained or loaded
        model) replaces the initial model in views 4-5 when given."""

    def show_snapshot(self, request_id: int, snapshot: SnapshotResult, overlay: bool) -> None:
        """Draw a model in views 4-5 (the kernel overlay only when ``overlay``)."""

    def show_inspection(self, result: InspectResult | None) -> None:
        """Show a kernel looked at closely (its weight map, ellipse, territory
        and numbers); None clears it and every hover label."""

    def show_captions(self, stages: str, model: str) -> None:
        """Say which result views 1-3 (``stages``) and views 4-5 (``model``) show."""

    def refresh_hover(self) -> None:
        """The model shown changed: update (or hide) the hover label."""

    def show_training_state(self, text: str) -> None:
        """Training started, paused, resumed or stopping: update the buttons and
        the training status line (``text``, may be empty)."""

    def training_ended(self, summary: str) -> None:
        """The training thread has ended; ``summary`` gives each run's last point."""

    def show_progress(self, label: str, text: str, batch: ProgressBatch | None) -> None:
        """A progress line of run ``label`` and the fit events of ``batch``
        (None when the run starts)."""

    def preview_pixels(self) -> int | None:
        """Pixels of a live training preview (None: full size)."""

    def show_error(self, title: str, text: str) -> None:
        """An error the user must read."""

    def show_status(self, text: str, timeout_ms: int = 0) -> None:
        """A transient status line."""
