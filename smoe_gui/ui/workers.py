"""Worker objects that keep computation off the GUI thread.

Two patterns (see DESIGN.md section 3):

* :class:`JobRunner`: a long-lived QThread with a :class:`JobWorker` that runs
  the *latest* submitted job only.  Submitting while a job runs replaces the
  pending one and cancels the running one (through the core's
  :mod:`smoe_gui.core.work` hooks: work that polls them, AS-SMoE's local fits,
  stops within a second; other work runs to its end); the GUI drops any
  result whose id is older than its newest request.  Used for stage
  recomputation, snapshot rendering, a training's live frames (a runner of
  its own, below the training's CPU priority: :data:`LIVE_FRAME_NICE`) and
  weight maps.
* :class:`TrainWorker`: the worker object of one training (or Compare) run,
  moved to its own QThread; it runs :func:`smoe_gui.core.train.runs.run_fit` (the
  one run path of the CLI and the experiments too), batches its
  :class:`~smoe_gui.core.events.FitEvent` stream into
  :class:`~smoe_gui.core.train.runs.FitHistory` rows at most ``1 / emit_interval_s``
  times per second, and pauses and stops the fit through its
  :class:`~smoe_gui.core.events.StopToken` (paused time is not training time).

And one that is not a QThread: :class:`WarmUp` runs the once-per-process
training warm-up (seconds of numba compiling on a first start, which nothing
can interrupt) in a plain Python thread, so that closing the window never
waits for it and no QThread outlives the window (Qt aborts the process when
one is destroyed while running); the interpreter lets it finish before it exits.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QObject, QThread, Signal, Slot

from ..core.errors import one_line
from ..core.events import FitEvent, StopToken
from ..core.threads import set_numba_threads
from ..core.train.runs import FitHistory, FitResult
from ..core.work import Cancelled, reporting
from .control.jobs import ProgressBatch, TrainRun

__all__ = [
    "JobRunner",
    "JobWorker",
    "LIVE_FRAME_NICE",
    "ProgressBatch",
    "TrainRun",
    "TrainWorker",
    "TrainingThread",
    "WarmUp",
    "running_threads",
    "warm_ups_running",
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


#: How much lower than the GUI thread the training thread runs (Unix nice steps).
TRAINING_NICE = 5
#: How much lower the thread rendering a training's live frames runs: the lowest
#: priority, below the training's, so that a frame is drawn from the CPU time
#: the training leaves (on two cores it fills about 1.4 of them) instead of
#: taking a core from one of its two numba workers in the middle of a parallel
#: loop, where the other then waits.  Measured with ``benchmarks/bench_gui.py``
#: on two cores: the app's training went from 89-90 % of a plain ``fit()``
#: loop's steps per second (the frames at the GUI's priority) to 92-93 %, with
#: the same 9 frames per second.
LIVE_FRAME_NICE = 19


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
    progress(int, int, int)
        Job id, units done, units in all (long work that reports, in the
        worker's thread; queued to the GUI).
    noted(int, str)
        Job id and a warning of its work.
    cancelled(int)
        Job id of a job that stopped because it was cancelled.
    """

    done = Signal(int)
    failed = Signal(int, str)
    progress = Signal(int, int, int)
    noted = Signal(int, str)
    cancelled = Signal(int)
    _wake = Signal()

    def __init__(self, nice: int = 0) -> None:
        super().__init__()
        self._nice = int(nice)
        #: Whether the thread running the jobs was lowered by ``nice`` steps
        #: (:func:`lower_thread_priority`, before its first job; Linux only).
        self.priority_lowered = False
        self._lock = threading.Lock()
        self._pending: tuple[int, Callable[..., Any], tuple[Any, ...]] | None = None
        self._results: dict[int, Any] = {}
        self._cancel: threading.Event | None = None  # the running job's
        self._wake.connect(self._run_pending)

    def take(self, job_id: int) -> Any:
        """The result of job ``job_id`` (once; None when there is none)."""
        with self._lock:
            return self._results.pop(job_id, None)

    def submit(self, job_id: int, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` as job ``job_id`` (thread-safe; replaces a pending job
        and cancels the running one, whose result would be stale)."""
        with self._lock:
            self._pending = (job_id, fn, args)
            if self._cancel is not None:
                self._cancel.set()
        self._wake.emit()

    def cancel_pending(self) -> None:
        """Drop the job waiting to run, if any (thread-safe)."""
        with self._lock:
            self._pending = None

    def cancel_running(self) -> None:
        """Drop the pending job and cancel the running one (thread-safe): work that
        polls the core's cancel hook stops within a second and ``cancelled`` is emitted."""
        with self._lock:
            self._pending = None
            if self._cancel is not None:
                self._cancel.set()

    @Slot()
    def _run_pending(self) -> None:
        if self._nice > 0:  # in the worker's thread, once: nice values are per thread
            self.priority_lowered = lower_thread_priority(self._nice)
            self._nice = 0
        cancel = threading.Event()
        with self._lock:  # one section: a submit from now on cancels this job
            job, self._pending = self._pending, None
            if job is not None:
                self._cancel = cancel
        if job is None:
            return
        job_id, fn, args = job

        def progress(done: int, total: int) -> None:
            self.progress.emit(job_id, done, total)

        def note(text: str) -> None:
            self.noted.emit(job_id, text)

        try:
            with reporting(progress=progress, cancel=cancel.is_set, note=note):
                result = fn(*args)
        except Cancelled:
            self.cancelled.emit(job_id)
        except Exception as exc:  # reported to the GUI, never raised in a thread
            self.failed.emit(job_id, one_line(exc))
        else:
            with self._lock:
                self._results.clear()  # results nobody took are stale by now
                self._results[job_id] = result
            self.done.emit(job_id)
        finally:
            with self._lock:
                self._cancel = None


class JobRunner:
    """A :class:`JobWorker` living in its own QThread for the window's lifetime.

    Parameters
    ----------
    name : str
        The thread's name (shown by ``top -H`` and the benchmarks).
    nice : int
        Unix nice steps the thread runs below the GUI thread (0: the same
        priority; see :func:`lower_thread_priority`).
    """

    def __init__(self, name: str, nice: int = 0) -> None:
        self.thread = QThread()
        self.thread.setObjectName(name)
        self.worker = JobWorker(nice)
        self.worker.moveToThread(self.thread)
        self.thread.start()
        _track(self.thread)

    def submit(self, job_id: int, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in the thread as job ``job_id`` (latest wins)."""
        self.worker.submit(job_id, fn, *args)

    def take(self, job_id: int) -> Any:
        """The result of job ``job_id`` (once; None when there is none)."""
        return self.worker.take(job_id)

    def cancel_running(self) -> None:
        """Drop the pending job and cancel the running one (:meth:`JobWorker.cancel_running`)."""
        self.worker.cancel_running()

    def shutdown(self, timeout_ms: int = 60_000) -> None:
        """Drop the pending job, cancel a running one (work that cannot be cancelled
        finishes), stop the thread."""
        self.worker.cancel_running()
        self.thread.quit()
        self.thread.wait(timeout_ms)


#: Name of the warm-up's Python thread (:class:`WarmUp`).
WARM_UP_THREAD = "smoe-warm-up"


def warm_ups_running() -> list[threading.Thread]:
    """The :class:`WarmUp` threads still running (they end by themselves)."""
    return [t for t in threading.enumerate() if t.name == WARM_UP_THREAD and t.is_alive()]


class WarmUp:
    """``fn()`` once, in a plain Python thread (not a QThread), under the
    core's work hooks (:func:`smoe_gui.core.work.reporting`): :meth:`cancel`
    asks it to stop at its next check; work that cannot stop (numba
    compiling) runs to its end, and the interpreter waits for it before
    exiting (a non-daemon thread), never the window.

    ``fn`` must not touch Qt; its result is dropped, its error kept in
    :attr:`error` (one line) and a cancellation leaves :attr:`cancelled` set.
    """

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._fn = fn
        self._cancel = threading.Event()
        self.error: str | None = None
        self.cancelled = False
        self.thread = threading.Thread(target=self._run, name=WARM_UP_THREAD, daemon=False)

    def start(self) -> None:
        """Start the thread (once)."""
        self.thread.start()

    def _run(self) -> None:
        try:
            with reporting(cancel=self._cancel.is_set):
                self._fn()
        except Cancelled:
            self.cancelled = True
        except Exception as exc:  # a failed warm-up only costs the first Start its time
            self.error = one_line(exc)

    def cancel(self) -> None:
        """Ask the warm-up to stop (thread-safe; returns at once)."""
        self._cancel.set()

    def is_running(self) -> bool:
        """Whether the thread has started and not ended."""
        return self.thread.is_alive()


class TrainWorker(QObject):
    """Runs :func:`smoe_gui.core.train.training.fit` for each of ``runs`` in turn.

    Messages go into :attr:`outbox` (a thread-safe queue) and ``posted`` tells
    the GUI to drain it with :meth:`drain`; no Python object crosses threads
    inside a queued signal.  Messages (tuples):

    ``("run_started", label)``, ``("progress", ProgressBatch)``,
    ``("snapshot", label, SmoeModel)``, ``("run_finished", label, FitResult)``,
    ``("failed", message)`` (the remaining runs are skipped).

    Signals
    -------
    posted()
        Messages were put into the outbox: one signal until the next
        :meth:`drain`, however many messages follow.
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
        run_fit: Callable[..., Any] | None = None,
        numba_threads: int | None = None,
    ) -> None:
        super().__init__()
        self._numba_threads = numba_threads
        self._image = image
        self._runs = list(runs)
        self._emit_interval_s = float(emit_interval_s)
        self._snapshot_interval_s = float(snapshot_interval_s)
        self._run_fit = run_fit
        self._cond = threading.Condition()
        self._paused = False
        self._stopped = False
        self._token: StopToken | None = None
        self.outbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        #: Events pulled from fit, for the benchmark.
        self.steps_done = 0
        #: ``posted`` signals emitted (at most one per drain by the GUI).
        self.signals_emitted = 0
        self._notify_lock = threading.Lock()
        self._notified = False  # ``posted`` emitted and not drained yet
        #: Whether the training thread runs below the GUI thread's CPU priority.
        self.priority_lowered = False

    def _post(self, *message: Any) -> None:
        """Queue ``message``; ``posted`` is emitted only when the GUI has drained
        the outbox since the last one: an emit across threads waits for the GIL
        (~2 ms while the GUI thread paints), so one per message slowed the fit."""
        with self._notify_lock:
            self.outbox.put(message)
            notify, self._notified = not self._notified, True
        if notify:
            self.posted.emit()
            self.signals_emitted += 1

    def drain(self) -> list[tuple[Any, ...]]:
        """Every message posted so far, in order (call from the GUI thread)."""
        with self._notify_lock:
            self._notified = False  # a message posted from now on emits ``posted`` again
        out = []
        while True:
            try:
                out.append(self.outbox.get_nowait())
            except queue.Empty:
                return out

    # -- control (any thread) ------------------------------------------------
    def pause(self) -> None:
        """Hold the fit before its next step (the time paused does not count
        against its time budget)."""
        with self._cond:
            self._paused = True
            if self._token is not None:
                self._token.pause()

    def resume(self) -> None:
        """Let the fit go on."""
        with self._cond:
            self._paused = False
            if self._token is not None:
                self._token.resume()
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

    def _stop_asked(self) -> bool:
        """Whether Stop was pressed (the core's cancel hook while a run initialises)."""
        return self._stopped

    # -- the loop (worker thread) ------------------------------------------------
    @Slot()
    def run(self) -> None:
        self.priority_lowered = lower_thread_priority(TRAINING_NICE)
        try:
            if self._numba_threads is not None:  # numba's thread count is per thread
                set_numba_threads(self._numba_threads)
            from ..core.train.runs import run_fit as core_run_fit

            run_fit: Callable[..., Any] = self._run_fit or core_run_fit
            for run in self._runs:
                with self._cond:
                    if self._stopped:
                        break
                    self._token = StopToken()
                    if self._paused:
                        self._token.pause()
                self._post("run_started", run.label)
                # Stop also stops an initialisation the run makes itself (AS-SMoE's fits)
                with reporting(cancel=self._stop_asked):
                    result = self._run_one(run_fit, run)
                self._post("run_finished", run.label, result)
        except Cancelled:
            pass  # stopped while initialising: no model to report, the run just ends
        except Exception as exc:  # reported to the GUI, never raised in a thread
            self._post("failed", one_line(exc))
        finally:
            self.finished.emit()

    def _run_one(self, run_fit: Callable[..., Any], run: TrainRun) -> FitResult:
        batch = FitHistory()
        messages: list[str] = []
        last_emit = time.perf_counter()
        n_tiles = 1

        def flush() -> None:
            nonlocal batch, messages, last_emit
            if len(batch) or messages:
                self._post("progress", ProgressBatch(run.label, batch, messages, n_tiles))
                batch, messages = FitHistory(), []
            last_emit = time.perf_counter()

        def on_event(ev: FitEvent) -> None:
            nonlocal n_tiles
            self.steps_done += 1
            batch.append(ev)
            n_tiles = int(ev.n_tiles)
            if ev.message:
                messages.append(str(ev.message))
            if ev.model is not None and not ev.final:
                flush()
                self._post("snapshot", run.label, ev.model)
            elif ev.final or time.perf_counter() - last_emit >= self._emit_interval_s:
                flush()

        result = run_fit(self._image, run.params, run.method, stop=self._token, on_event=on_event,
                         init=run.init, snapshot_interval_s=self._snapshot_interval_s)
        flush()
        return result  # type: ignore[no-any-return]


class _FinishedRelay(QObject):
    """Lives in the thread that made it (the GUI thread): the thread's
    ``finished`` is queued here, and ``ended`` is emitted in that thread."""

    ended = Signal()

    @Slot()
    def relay(self) -> None:
        self.ended.emit()


class TrainingThread:
    """Owns a :class:`TrainWorker` and its QThread (worker-object pattern).

    ``thread.started -> worker.run``; ``worker.finished -> thread.quit``;
    ``deleteLater`` on both once the thread has finished.  References are kept
    until then.  ``ended`` (a signal of an object living in the creating
    thread) tells that thread that this training's QThread has finished.
    """

    def __init__(self, worker: TrainWorker) -> None:
        self.worker = worker
        self._relay = _FinishedRelay()
        #: Emitted in the creating (GUI) thread once the QThread has finished.
        self.ended = self._relay.ended
        self.thread = QThread()
        self.thread.setObjectName("smoe-training")
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.run)
        worker.finished.connect(self.thread.quit)
        self.thread.finished.connect(self._relay.relay)
        self.thread.finished.connect(worker.deleteLater)
        self.thread.finished.connect(self.thread.deleteLater)

    def start(self) -> None:
        self.thread.start()
        _track(self.thread)

    def is_running(self) -> bool:
        return _alive(self.thread)

    @property
    def paused(self) -> bool:
        """Whether the training is paused."""
        return self.worker.paused

    def pause(self) -> None:
        self.worker.pause()

    def resume(self) -> None:
        self.worker.resume()

    def stop(self) -> None:
        """Ask the fit to stop within one step."""
        self.worker.stop()

    def drain(self) -> list[tuple[Any, ...]]:
        """Every message the worker has posted so far, in order."""
        return self.worker.drain()

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
