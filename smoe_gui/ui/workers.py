"""Worker objects that keep computation off the GUI thread.

Two patterns (see DESIGN.md section 3):

* :class:`JobRunner`: a long-lived QThread with a :class:`JobWorker` that runs
  the *latest* submitted job only.  Submitting while a job runs replaces the
  pending one; the GUI drops any result whose id is older than its newest
  request.  Used for stage recomputation, snapshot rendering and weight maps.
* :class:`TrainWorker`: the worker object of one training (or Compare) run,
  moved to its own QThread; it pulls :class:`~smoe_gui.core.events.FitEvent`
  from :func:`smoe_gui.core.training.fit`, batches them to at most
  ``1 / emit_interval_s`` signals per second, and honours pause and stop
  between steps.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QObject, QThread, Signal, Slot

from ..core.events import StopToken
from ..core.model import SmoeModel
from ..core.params import Params

__all__ = [
    "JobRunner",
    "JobWorker",
    "ProgressBatch",
    "TrainRun",
    "TrainWorker",
    "TrainingThread",
    "running_threads",
]

#: Every QThread this module started (checked by the tests: none may outlive a window).
_STARTED: list[QThread] = []


def _track(thread: QThread) -> None:
    _STARTED[:] = [t for t in _STARTED if _alive(t)]
    _STARTED.append(thread)


def _alive(thread: QThread) -> bool:
    try:
        return bool(thread.isRunning())
    except RuntimeError:  # C++ object deleted: the thread has finished
        return False


def running_threads() -> list[str]:
    """Names of the worker threads started here that are still running."""
    return [t.objectName() for t in _STARTED if _alive(t)]


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, ValueError) else f"{type(exc).__name__}: {text}"


#: How much lower than the GUI thread the training thread runs (Unix nice steps).
TRAINING_NICE = 5


def lower_thread_priority(steps: int) -> bool:
    """Lower the CPU priority of the calling thread by ``steps`` nice levels.

    On Linux, nice values are per thread and the threads a thread starts
    (numba's and torch's OpenMP workers) inherit its value, so the whole
    training keeps every core while the GUI thread wins whenever it wants
    one.  Elsewhere (and where the call is refused) nothing changes; returns
    whether the priority was lowered.
    """
    if steps <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + steps))
    except (AttributeError, OSError):
        return False
    return True


class JobWorker(QObject):
    """Runs the most recently submitted job; older pending jobs are replaced.

    Signals carry only ids and text: the result itself is handed over through
    :meth:`take` (no Python object crosses threads inside a queued signal).

    Signals
    -------
    done(int)
        Job id whose result :meth:`take` returns.
    failed(int, str)
        Job id and a one-line message.
    """

    done = Signal(int)
    failed = Signal(int, str)
    _wake = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pending: tuple[int, Callable[..., Any], tuple[Any, ...]] | None = None
        self._results: dict[int, Any] = {}
        self._wake.connect(self._run_pending)

    def take(self, job_id: int) -> Any:
        """The result of job ``job_id`` (once; None when there is none)."""
        with self._lock:
            return self._results.pop(job_id, None)

    def submit(self, job_id: int, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` as job ``job_id`` (thread-safe; replaces a pending job)."""
        with self._lock:
            self._pending = (job_id, fn, args)
        self._wake.emit()

    @Slot()
    def _run_pending(self) -> None:
        with self._lock:
            job, self._pending = self._pending, None
        if job is None:
            return
        job_id, fn, args = job
        try:
            result = fn(*args)
        except Exception as exc:  # reported to the GUI, never raised in a thread
            self.failed.emit(job_id, _error_text(exc))
        else:
            with self._lock:
                self._results.clear()  # results nobody took are stale by now
                self._results[job_id] = result
            self.done.emit(job_id)


class JobRunner:
    """A :class:`JobWorker` living in its own QThread for the window's lifetime."""

    def __init__(self, name: str) -> None:
        self.thread = QThread()
        self.thread.setObjectName(name)
        self.worker = JobWorker()
        self.worker.moveToThread(self.thread)
        self.thread.start()
        _track(self.thread)

    def submit(self, job_id: int, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in the thread as job ``job_id`` (latest wins)."""
        self.worker.submit(job_id, fn, *args)

    def shutdown(self, timeout_ms: int = 60_000) -> None:
        """Drop the pending job, let a running one finish, stop the thread."""
        with self.worker._lock:
            self.worker._pending = None
        self.thread.quit()
        self.thread.wait(timeout_ms)


@dataclass(frozen=True)
class TrainRun:
    """One fit to run: a label for the curves and the fit's arguments."""

    label: str
    params: Params
    method: str
    init: object | None = None


@dataclass
class ProgressBatch:
    """Fit events batched for the GUI (numpy copies).

    Attributes
    ----------
    label : str
        The run's label ("train", "edge", "grid").
    steps, elapsed_s, psnr, n_kernels : (n,) arrays
    phases : list of str
        Phase of each event.
    messages : list of str
    tile, n_tiles : int or None, int
        Of the last event.
    image_psnr : (n,) float64 or None
        Whole-image PSNR where measured (NaN elsewhere; ``FitEvent.image_psnr``).
    """

    label: str
    steps: NDArray[np.int64]
    elapsed_s: NDArray[np.float64]
    psnr: NDArray[np.float64]
    n_kernels: NDArray[np.int64]
    phases: list[str]
    messages: list[str] = field(default_factory=list)
    tile: int | None = None
    n_tiles: int = 1
    image_psnr: NDArray[np.float64] | None = None


class TrainWorker(QObject):
    """Runs :func:`smoe_gui.core.training.fit` for each of ``runs`` in turn.

    Messages go into :attr:`outbox` (a thread-safe queue) and ``posted`` tells
    the GUI to drain it with :meth:`drain`; no Python object crosses threads
    inside a queued signal.  Messages (tuples):

    ``("run_started", label)``, ``("progress", ProgressBatch)``,
    ``("snapshot", label, SmoeModel)``, ``("run_finished", label, SmoeModel)``,
    ``("failed", message)`` (the remaining runs are skipped).

    Signals
    -------
    posted()
        Something was put into the outbox.
    finished()
        Always emitted last.
    """

    posted = Signal()
    finished = Signal()

    def __init__(
        self,
        image: NDArray[np.float32],
        runs: list[TrainRun],
        emit_interval_s: float = 0.05,
        snapshot_interval_s: float = 0.1,
        fit: Callable[..., Any] | None = None,
        numba_threads: int | None = None,
    ) -> None:
        super().__init__()
        self._numba_threads = numba_threads
        self._image = image
        self._runs = list(runs)
        self._emit_interval_s = float(emit_interval_s)
        self._snapshot_interval_s = float(snapshot_interval_s)
        self._fit = fit
        self._cond = threading.Condition()
        self._paused = False
        self._stopped = False
        self._token: StopToken | None = None
        self.outbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        #: Events pulled from fit, for the benchmark.
        self.steps_done = 0
        #: Whether the training thread runs below the GUI thread's CPU priority.
        self.priority_lowered = False

    def _post(self, *message: Any) -> None:
        self.outbox.put(message)
        self.posted.emit()

    def drain(self) -> list[tuple[Any, ...]]:
        """Every message posted so far, in order (call from the GUI thread)."""
        out = []
        while True:
            try:
                out.append(self.outbox.get_nowait())
            except queue.Empty:
                return out

    # -- control (any thread) ------------------------------------------------
    def pause(self) -> None:
        """Stop pulling events after the current step."""
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        """Continue pulling events."""
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    @property
    def paused(self) -> bool:
        return self._paused

    def stop(self) -> None:
        """End the current fit within one step and skip the remaining runs."""
        with self._cond:
            self._stopped = True
            if self._token is not None:
                self._token.stop()
            self._paused = False
            self._cond.notify_all()

    # -- the loop (worker thread) ------------------------------------------------
    def _wait_if_paused(self) -> None:
        with self._cond:
            while self._paused and not self._stopped:
                self._cond.wait(0.1)

    @Slot()
    def run(self) -> None:
        fit = self._fit
        self.priority_lowered = lower_thread_priority(TRAINING_NICE)
        try:
            if self._numba_threads is not None:  # numba's thread count is per thread
                import numba

                available = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
                numba.set_num_threads(max(1, min(self._numba_threads, available)))
            if fit is None:
                from ..core.training import fit as core_fit

                fit = core_fit
            for run in self._runs:
                with self._cond:
                    if self._stopped:
                        break
                    self._token = StopToken()
                self._post("run_started", run.label)
                final = self._run_one(fit, run)
                if final is not None:
                    self._post("run_finished", run.label, final)
        except Exception as exc:  # reported to the GUI, never raised in a thread
            self._post("failed", _error_text(exc))
        finally:
            self.finished.emit()

    def _run_one(self, fit: Callable[..., Any], run: TrainRun) -> SmoeModel | None:
        steps: list[int] = []
        elapsed: list[float] = []
        psnrs: list[float] = []
        image_psnrs: list[float] = []
        kernels: list[int] = []
        phases: list[str] = []
        messages: list[str] = []
        last_emit = time.perf_counter()
        final: SmoeModel | None = None
        tile: int | None = None
        n_tiles = 1

        def flush() -> None:
            nonlocal last_emit
            if steps or messages:
                self._post(
                    "progress",
                    ProgressBatch(
                        run.label,
                        np.array(steps, dtype=np.int64),
                        np.array(elapsed, dtype=np.float64),
                        np.array(psnrs, dtype=np.float64),
                        np.array(kernels, dtype=np.int64),
                        list(phases),
                        list(messages),
                        tile,
                        n_tiles,
                        np.array(image_psnrs, dtype=np.float64),
                    )
                )
            for lst in (steps, elapsed, psnrs, image_psnrs, kernels, phases, messages):
                lst.clear()
            last_emit = time.perf_counter()

        events = fit(
            self._image,
            run.params,
            init=run.init,
            method=run.method,
            stop=self._token,
            snapshot_interval_s=self._snapshot_interval_s,
        )
        try:
            for ev in events:
                self.steps_done += 1
                steps.append(int(ev.step))
                elapsed.append(float(ev.elapsed_s))
                psnrs.append(float(ev.psnr))
                whole = getattr(ev, "image_psnr", None)
                image_psnrs.append(float("nan") if whole is None else float(whole))
                kernels.append(int(ev.n_kernels))
                phases.append(str(ev.phase))
                tile, n_tiles = ev.tile, int(ev.n_tiles)
                if ev.message:
                    messages.append(str(ev.message))
                if ev.model is not None:
                    final = ev.model
                    if not ev.final:
                        flush()
                        self._post("snapshot", run.label, ev.model)
                if ev.final or time.perf_counter() - last_emit >= self._emit_interval_s:
                    flush()
                if ev.final:
                    break
                self._wait_if_paused()
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
        flush()
        return final


class TrainingThread:
    """Owns a :class:`TrainWorker` and its QThread (worker-object pattern).

    ``thread.started -> worker.run``; ``worker.finished -> thread.quit``;
    ``deleteLater`` on both once the thread has finished.  References are kept
    until then.
    """

    def __init__(self, worker: TrainWorker) -> None:
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName("smoe-training")
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.run)
        worker.finished.connect(self.thread.quit)
        self.thread.finished.connect(worker.deleteLater)
        self.thread.finished.connect(self.thread.deleteLater)

    def start(self) -> None:
        self.thread.start()
        _track(self.thread)

    def is_running(self) -> bool:
        return _alive(self.thread)

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Wait for the thread to end; True when it has."""
        try:
            return bool(self.thread.wait(timeout_ms))
        except RuntimeError:  # C++ object already deleted: it has finished
            return True

    def stop_and_wait(self, timeout_ms: int = 60_000) -> bool:
        """Stop the fit, quit the thread and wait for it; True when it ended."""
        self.worker.stop()
        try:
            self.thread.quit()
            return bool(self.thread.wait(timeout_ms))
        except RuntimeError:
            return True
