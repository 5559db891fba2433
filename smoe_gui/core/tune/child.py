"""A study in a spawned child process, for a window that must keep its speed.

:class:`StudyProcess` runs the whole of :func:`smoe_gui.core.tune.study.run_tune`
(the study's creation or loading, its SQLite storage, the trials, the figures)
in one child process started with ``spawn`` (:func:`smoe_gui.core.parallel.spawn_context`).
The process that starts it imports neither Optuna, SQLAlchemy, torch nor
matplotlib for it and shares no interpreter lock with it: it only reads small
messages from a pipe, without waiting (:meth:`StudyProcess.poll`, a window's
timer calls it).  The child runs its trials itself, one at a time, at a lower
scheduling priority (``config.nice``), and each message is a tuple ``(kind,
payload)``:

* ``("start", {"total", "done", "workers"})``: the study's trials, those
  finished before, trials at a time;
* ``("trial_started", {"trial", "values"})``: a trial and its tuned values;
* ``("progress", {"trial", "phase", "elapsed_s", "budget_s", "psnr_db"})``: the
  running fit, at most every :data:`PROGRESS_EVERY_S` seconds (s, dB or None);
* ``("trial", row)``: a finished trial, its row of ``trials.csv``
  (:func:`smoe_gui.core.tune.outputs.trial_row`) with ``"model"``, the path of
  its trained model (``models/trial-NNNN.npz`` in the study's folder) or None;
* ``("note", text)``: a one-line note (resuming, stale trials);
* ``("done", summary)``: the :class:`~smoe_gui.core.tune.study.TuneSummary`,
  the last message of a run that ended (finished or stopped);
* ``("error", text)``: one line instead of ``done``: bad input, a study file
  that is not a study or is locked, or a child that died.

:meth:`StudyProcess.hold` pauses the running fit while the window computes
(:meth:`StudyProcess.release` ends the hold); :meth:`StudyProcess.stop` ends the
running trial within one training step and keeps every finished one (the child
then writes the study's outputs);
:meth:`StudyProcess.close` also ends the child, terminating it when it does not
end in time.  A child whose parent dies stops its study and ends.  Qt-free.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .. import parallel
from ..errors import one_line
from ..events import FitEvent, StopToken
from .study import TuneConfig, TuneObserver, check_config

__all__ = ["FINAL", "HOLD_MAX_S", "PROGRESS_EVERY_S", "StudyProcess"]

#: Seconds between two ``progress`` messages of a running fit.
PROGRESS_EVERY_S = 0.5
#: Kinds of the message that ends a run.
FINAL = ("done", "error")
#: The longest one :meth:`StudyProcess.hold` holds the running fit (s).
HOLD_MAX_S = 5.0


class _PipeObserver(TuneObserver):
    """The child's observer: every report becomes a message to the parent."""

    def __init__(self, conn: Connection, out: Path, token: StopToken, budget_s: float) -> None:
        self.conn, self.out, self.token, self.budget_s = conn, out, token, budget_s
        self.trial: int | None = None
        self.last = 0.0

    def send(self, kind: str, payload: Any) -> None:
        """Send one message; a parent that is gone stops the study."""
        try:
            self.conn.send((kind, payload))
        except (BrokenPipeError, EOFError, OSError):
            self.token.stop()

    def start(self, total: int, done: int, workers: int) -> None:
        self.send("start", {"total": total, "done": done, "workers": workers})

    def trial_started(self, number: int, values: dict[str, Any]) -> None:
        self.trial, self.last = number, 0.0
        self.send("trial_started", {"trial": number, "values": dict(values)})

    def event(self, event: FitEvent) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY_S and not event.final:
            return
        self.last = now
        psnr = event.image_psnr
        self.send(
            "progress",
            {
                "trial": self.trial,
                "phase": event.phase,
                "elapsed_s": float(event.elapsed_s),
                "budget_s": self.budget_s,
                "psnr_db": None if psnr is None else float(psnr),
            },
        )

    def trial_finished(self, row: dict[str, Any]) -> None:
        model = self.out / "models" / f"trial-{int(row['trial']):04d}.npz"
        self.send("trial", {**row, "model": str(model) if model.exists() else None})

    def note(self, text: str) -> None:
        self.send("note", text)


def _priority() -> int | None:
    """This process's POSIX nice value (None where the system has none)."""
    if not hasattr(os, "getpriority"):
        return None
    try:
        return int(os.getpriority(os.PRIO_PROCESS, 0))
    except OSError:
        return None


def _lower_priority(pid: int, target: int | None) -> None:
    """Give process ``pid`` (0: this one) the nice value ``target`` when it runs
    at a higher priority (POSIX; nothing elsewhere, nor for another user's)."""
    if target is None or not hasattr(os, "setpriority"):
        return
    with contextlib.suppress(OSError):
        if os.getpriority(os.PRIO_PROCESS, pid) < target:
            os.setpriority(os.PRIO_PROCESS, pid, target)


def _watch(control: Connection, token: StopToken) -> None:
    """Obey the parent: ``("hold", s)`` pauses the running fit for at most ``s``
    seconds, ``"release"`` lets it go on; ``"stop"`` (or a parent that is gone,
    its end of the pipe closed) stops the study."""
    deadline: float | None = None
    with contextlib.suppress(EOFError, OSError):
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not control.poll(wait):  # the hold ran out without a release
                token.resume()
                deadline = None
                continue
            message = control.recv()
            if isinstance(message, tuple) and message and message[0] == "hold":
                token.pause()
                deadline = time.monotonic() + min(float(message[1]), HOLD_MAX_S)
            elif message == "release":
                token.resume()
                deadline = None
            else:
                break
    token.stop()


def _child_main(
    config: TuneConfig, out: str, results: Connection, control: Connection, priority: int | None
) -> None:
    """The child: run the study, report through ``results``, obey ``control``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the window's to handle
    _lower_priority(0, priority)  # when the parent could not
    token = StopToken()
    threading.Thread(
        target=_watch, args=(control, token), name="smoe-tune-stop", daemon=True
    ).start()
    observer = _PipeObserver(results, Path(out), token, float(config.time_budget))
    try:
        from .study import run_tune

        summary = run_tune(replace(config, processes=False), out, observer=observer, stop=token)
    except Exception as exc:  # noqa: BLE001  (one line to the parent, never a traceback)
        observer.send("error", one_line(exc) or type(exc).__name__)
    else:
        observer.send("done", summary)
    finally:
        with contextlib.suppress(OSError):
            results.close()


class StudyProcess:
    """One study run by :func:`run_tune` in a spawned child process.

    Parameters
    ----------
    config : TuneConfig
        The study; ``workers`` must be 1 and ``dask_scheduler`` None (the child
        runs its trials itself); ``threads`` threads per trial; the child runs
        ``nice`` lower than this process.
    out : path
        The study's folder (as for :func:`run_tune`).

    Raises
    ------
    ValueError
        One line for bad input (:func:`smoe_gui.core.tune.study.check_config`)
        or several workers; the study file and the images are checked in the
        child (an ``error`` message).
    """

    def __init__(self, config: TuneConfig, out: str | os.PathLike[str]) -> None:
        check_config(config)
        if config.workers != 1 or config.dask_scheduler is not None:
            raise ValueError(
                "a study in a child process runs its trials there, one at a time: "
                "give one worker and no Dask scheduler"
            )
        self.config, self.out = config, Path(out)
        self.process: Any = None
        self._results: Connection | None = None
        self._control: Connection | None = None
        self._final = False

    @property
    def pid(self) -> int | None:
        """The child's process id (None before :meth:`start`)."""
        return None if self.process is None else self.process.pid

    @property
    def running(self) -> bool:
        """Whether the run started and its final message has not been read yet."""
        return self.process is not None and not self._final

    def start(self) -> None:
        """Start the child (it returns at once; the child's start-up takes seconds)."""
        if self.process is not None:
            raise RuntimeError("a StudyProcess starts once")
        ctx = parallel.spawn_context()
        results_r, results_w = ctx.Pipe(duplex=False)
        control_r, control_w = ctx.Pipe(duplex=False)
        mine = _priority()
        target = None if mine is None or self.config.nice <= 0 else min(19, mine + self.config.nice)
        self.process = ctx.Process(
            target=_child_main,
            name="smoe-tune",
            args=(self.config, str(self.out), results_w, control_r, target),
            daemon=True,
        )
        self.process.start()
        # at once, so that the child's start-up (its imports) runs at the lower priority too
        _lower_priority(self.process.pid, target)
        results_w.close()  # the child's ends: a dead child then reads as the pipe's end
        control_r.close()
        self._results, self._control = results_r, control_w

    def poll(self) -> list[tuple[str, Any]]:
        """The messages that arrived, without waiting; after the last one (a
        ``done`` or an ``error``, one for a child that died without a word)
        nothing more comes.  The child's exit is not waited for here (the end of
        an interpreter that ran torch takes a while): :meth:`close` does."""
        if self._results is None or self._final:
            return []
        alive = self.process.is_alive()
        messages: list[tuple[str, Any]] = []
        try:
            while self._results.poll():
                messages.append(self._results.recv())
        except (EOFError, OSError):
            alive = False
        if any(kind in FINAL for kind, _ in messages):
            self._finish()
        elif not alive:
            self.process.join(1.0)  # it has ended: no wait
            code = self.process.exitcode
            messages.append(
                (
                    "error",
                    f"the tuning process ended without a result "
                    f"(exit status {code}); the finished trials are kept",
                )
            )
            self._finish()
        return messages

    def hold(self, seconds: float = 1.0) -> None:
        """Pause the running fit before its next training step for ``seconds``
        (at most :data:`HOLD_MAX_S`; another hold starts the time again), or until
        :meth:`release`: the window holds the study while it computes and draws
        the stages, so that they get every core.  The time held counts neither
        against the trial's budget nor in its ``seconds``; an initialisation or
        an evaluation runs on.  Nothing happens before :meth:`start` or after the
        end."""
        self._send(("hold", float(seconds)))

    def release(self) -> None:
        """End a :meth:`hold` now."""
        self._send("release")

    def _send(self, message: Any) -> None:
        if self._control is not None and not self._final:
            with contextlib.suppress(OSError):
                self._control.send(message)

    def stop(self) -> None:
        """Ask the child to stop: the running trial ends within one training step,
        the finished ones are kept, then the child writes the outputs and sends
        ``done``."""
        self._send("stop")

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the child and wait up to ``timeout_s`` seconds for it to end, then
        terminate it (no process is left behind; unread messages are dropped)."""
        process = self.process
        if process is None:
            return
        self.stop()
        process.join(timeout_s)
        for end in (process.terminate, process.kill):
            if not process.is_alive():
                break
            end()
            process.join(2.0)
        self._finish()

    def _finish(self) -> None:
        self._final = True
        for conn in (self._results, self._control):
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.close()
        self._results = self._control = None
