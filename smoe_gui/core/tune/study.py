"""A tuning study: Optuna in SQLite storage, the trial loop and its executors.

:func:`run_tune` checks every input, opens (or creates) the study
``DIR/study.db`` (Optuna's RDB storage on SQLite), asks it for trials (a grid
over one or two parameters, or Optuna's TPE sampler, single- or
multi-objective), runs each trial (:func:`smoe_gui.core.tune.trial.run_trial`)
in this process, in local worker processes or on a Dask cluster, and tells the
study each result.  Every finished trial is in the study at once, so a run that
is killed (even by SIGKILL) resumes without running a finished trial again:
the trials it left running are marked failed (``stale``) and run anew.
Several processes may share one study; each asks and tells through the file.

Qt-free and silent: progress goes to a :class:`TuneObserver`.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import parallel
from ..errors import one_line, show_path
from ..events import FitEvent, StopToken
from ..io import fileio
from ..params import METHODS, Params, check_method, spec
from .space import (
    GRID_SAMPLER,
    MAX_GRID_TRIALS,
    ParamRange,
    check_ranges,
    distributions,
    grid_points,
)
from .trial import STOPPED, TrialJob, TrialOutput, prune_thresholds, run_trial

__all__ = [
    "DEFAULT_SEARCH_TRIALS",
    "OBJECTIVES",
    "SAMPLERS",
    "STUDY_FILE",
    "STUDY_NAME",
    "TuneConfig",
    "TuneObserver",
    "TuneSummary",
    "check_study_file",
    "close_study",
    "open_study",
    "load_trials",
    "run_tune",
]

#: The study's file in the output folder.
STUDY_FILE = "study.db"
#: The study's name inside it.
STUDY_NAME = "smoe-tune"
#: Samplers: ``grid`` (every point of 1-2 parameters) and ``tpe`` (Optuna's search).
SAMPLERS = (GRID_SAMPLER, "tpe")
#: Objectives and their directions.
OBJECTIVES: dict[str, str] = {
    "psnr": "maximize", "ssim": "maximize", "kernels": "minimize", "seconds": "minimize",
}
#: Trials of a search without ``trials``.
DEFAULT_SEARCH_TRIALS = 20
#: Seconds to wait for a Dask scheduler to answer.
DASK_CONNECT_TIMEOUT_S = 15.0
#: Parameters the kernel budget's planner sets (tuning them with a budget does nothing).
PLANNED = ("max_pts", "background_spacing")


class TuneObserver:
    """Receives a study's progress from :func:`run_tune`; every method does nothing here."""

    def start(self, total: int, done: int, workers: int) -> None:
        """``total`` trials in the study, ``done`` of them finished before, on ``workers``."""

    def trial_started(self, number: int, values: dict[str, Any]) -> None:
        """Trial ``number`` started with these values of the tuned parameters."""

    def event(self, event: FitEvent) -> None:
        """A fit event of a trial running in this process."""

    def trial_finished(self, row: dict[str, Any]) -> None:
        """A trial finished (``row``: its row of ``trials.csv``)."""

    def note(self, text: str) -> None:
        """A one-line note (resuming, stale trials)."""

    def close(self) -> None:
        """The study's run ended (finished, stopped or interrupted)."""


@dataclass
class TuneConfig:
    """What a study tunes and how.

    Attributes
    ----------
    images : list of path
        The images every trial fits (its objectives are means over them).
    ranges : list of ParamRange
        The tuned parameters.
    method : str
        Initialisation method (:data:`smoe_gui.core.params.METHODS`).
    kernels : int
        Kernel budget N of every fit (0: off; the planner then does not run).
    time_budget : float
        Training seconds of every fit (s).
    trials : int or None
        Trials in the study (None: every grid point, or :data:`DEFAULT_SEARCH_TRIALS`).
    sampler : str
        ``"grid"`` or ``"tpe"``.
    objectives : tuple of str
        Keys of :data:`OBJECTIVES`; more than one: a multi-objective search.
    params : Params
        Every other parameter.
    workers : int
        Trials at a time in local processes (1: in this process unless ``processes``).
    processes : bool
        Run trials in worker processes even with one worker (the window does).
    dask_scheduler : str or object, optional
        Run the trials on this Dask scheduler instead.
    threads : int or None
        Threads per trial (default: all cores here, cores // workers in processes, 1 on Dask).
    prune : bool or None
        Prune hopeless trials (default: a single-objective ``tpe`` search does).
    seed : int
        The sampler's seed.
    max_size : int or None
        Downscale images whose longer side exceeds it.
    nice : int
        Lower the worker processes' scheduling priority by this much (POSIX
        ``nice``, 0-19; ignored where the system has none), so that a window in
        this process keeps the CPU when it needs it.
    """

    images: Sequence[str | os.PathLike[str]]
    ranges: Sequence[ParamRange]
    method: str = field(default_factory=lambda: METHODS[0])
    kernels: int = 0
    time_budget: float = 25.0
    trials: int | None = None
    sampler: str = "tpe"
    objectives: tuple[str, ...] = ("psnr",)
    params: Params = field(default_factory=Params)
    workers: int = 1
    processes: bool = False
    dask_scheduler: Any = None
    threads: int | None = None
    prune: bool | None = None
    seed: int = 0
    max_size: int | None = None
    nice: int = 0

    def base_params(self) -> Params:
        """``params`` with the kernel budget and the time budget applied."""
        return self.params.replace(n_kernels=int(self.kernels), time_budget=float(self.time_budget))

    def pruning(self) -> bool:
        """Whether trials are pruned."""
        if self.prune is not None:
            return bool(self.prune) and len(self.objectives) == 1
        return self.sampler == "tpe" and len(self.objectives) == 1


@dataclass
class TuneSummary:
    """What a call of :func:`run_tune` did.

    Attributes
    ----------
    out : Path
    total : int
        Trials the study is to hold.
    resumed : int
        Finished trials found in the study at the start.
    ran : int
        Trials finished in this call.
    stale : int
        Trials left running by an earlier, killed run (marked failed, run anew).
    interrupted : bool
        Ctrl-C or a stop ended the call (finished trials are kept).
    best : dict or None
        The best trial: ``number, values, psnr_db, ssim, n_kernels, seconds``.
    files : list of Path
        The output files written.
    elapsed_s : float
    """

    out: Path
    total: int = 0
    resumed: int = 0
    ran: int = 0
    stale: int = 0
    interrupted: bool = False
    best: dict[str, Any] | None = None
    files: list[Path] = field(default_factory=list)
    elapsed_s: float = 0.0


# --------------------------------------------------------------------------------------
# The study file
# --------------------------------------------------------------------------------------
def check_study_file(path: str | os.PathLike[str]) -> None:
    """Check that an existing ``path`` is an Optuna study in SQLite and not locked.

    Raises
    ------
    ValueError
        One line: not an SQLite file, an SQLite file without Optuna's tables,
        or locked by another program for over 2 s.
    """
    p = Path(path)
    if not p.exists():
        return
    shown = show_path(p)
    if not p.is_file():
        raise ValueError(f"{shown}: is not a study file (not a file)")
    try:
        con = sqlite3.connect(f"file:{p}?mode=rw", uri=True, timeout=2.0)
    except sqlite3.Error as exc:
        raise ValueError(f"{shown}: cannot open the study ({exc})") from None
    try:
        query = "SELECT name FROM sqlite_master WHERE type='table'"
        tables = {row[0] for row in con.execute(query)}
        if not {"studies", "trials"} <= tables:
            raise ValueError(f"{shown}: is not a study (an SQLite file without Optuna's tables)")
        con.execute("BEGIN IMMEDIATE")
        con.rollback()
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise ValueError(f"{shown}: the study is locked by another program ({text})") from None
        raise ValueError(f"{shown}: is not a study ({text})") from None
    finally:
        con.close()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """Each connection of a study: write-ahead log, synced at checkpoints only.

    A commit then costs no ``fsync`` (about 5 ms instead of 20-25 ms on a busy
    disk; a trial makes some 40).  A killed process (even by SIGKILL) loses no
    committed trial: SQLite recovers the log when the study is next opened;
    only a power cut or an operating-system crash may lose the last commits.
    """
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _storage(path: Path) -> Any:
    import optuna
    import sqlalchemy

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{path.resolve()}", engine_kwargs={"connect_args": {"timeout": 60}},
    )
    sqlalchemy.event.listen(storage.engine, "connect", _sqlite_pragmas)
    storage.engine.dispose()  # the connections made before the listener
    return storage


def close_study(study: Any) -> None:
    """Close the connections of ``study`` (from :func:`open_study`).

    SQLite then folds the write-ahead log into ``study.db`` and removes it, so
    the one file holds the whole study.  The study still answers afterwards
    (a new connection is made on demand).
    """
    storage = getattr(study, "_storage", None)
    backend = getattr(storage, "_backend", storage)
    engine = getattr(backend, "engine", None)
    if engine is not None:
        engine.dispose()


def open_study(path: str | os.PathLike[str], config: TuneConfig | None = None) -> Any:
    """The study in ``path`` (an ``optuna.Study``); created from ``config`` when absent.

    Raises
    ------
    ValueError
        When the file is not a study, is locked, holds no smoe-gui study, or
        (with ``config``) holds one made with other settings.
    """
    import optuna

    check_study_file(path)
    exists = Path(path).exists()
    if not exists and config is None:
        raise ValueError(f"{show_path(path)}: no such study")
    storage = _storage(Path(path))
    if exists:
        try:
            study = optuna.load_study(study_name=STUDY_NAME, storage=storage,
                                      sampler=_sampler(config) if config else None)
        except KeyError:
            raise ValueError(f"{show_path(path)}: holds no smoe-gui study "
                             f"(no study named {STUDY_NAME!r})") from None
        if config is not None:
            _check_settings(study, config, path)
        return study
    assert config is not None
    study = optuna.create_study(
        storage=storage, study_name=STUDY_NAME, sampler=_sampler(config),
        directions=[optuna.study.StudyDirection.MAXIMIZE if OBJECTIVES[o] == "maximize"
                    else optuna.study.StudyDirection.MINIMIZE for o in config.objectives],
    )
    study.set_user_attr("settings", _settings(config))
    return study


def _sampler(config: TuneConfig) -> Any:
    import optuna

    if config.sampler == GRID_SAMPLER:  # the grid's points are enqueued; this sampler is not asked
        return optuna.samplers.RandomSampler(seed=config.seed)
    total = config.trials or DEFAULT_SEARCH_TRIALS
    return optuna.samplers.TPESampler(
        seed=config.seed, n_startup_trials=max(2, min(10, total // 3)), constant_liar=True,
    )


def _settings(config: TuneConfig) -> dict[str, Any]:
    """What must not change between the runs of one study."""
    return {
        "method": config.method,
        "kernels": int(config.kernels),
        "time_budget": float(config.time_budget),
        "sampler": config.sampler,
        "objectives": list(config.objectives),
        "ranges": [r.text() for r in config.ranges],
        "images": [Path(p).name for p in config.images],
        "params_digest": config.base_params().digest(),
        "params": config.base_params().to_dict(),
    }


def _check_settings(study: Any, config: TuneConfig, path: str | os.PathLike[str]) -> None:
    stored = study.user_attrs.get("settings")
    if not isinstance(stored, dict):
        raise ValueError(f"{show_path(path)}: holds no smoe-gui study settings")
    now = _settings(config)
    for key in ("method", "kernels", "time_budget", "sampler", "objectives", "ranges", "images",
                "params_digest"):
        if stored.get(key) != now[key]:
            raise ValueError(
                f"{show_path(path)}: the study was made with {key} {stored.get(key)!r}, "
                f"not {now[key]!r}; give its settings or another output folder"
            )


def settings_of(study: Any) -> dict[str, Any]:
    """The settings a study was made with (method, kernels, ranges, params, ...)."""
    stored = study.user_attrs.get("settings")
    return dict(stored) if isinstance(stored, dict) else {}


# --------------------------------------------------------------------------------------
# Executors: this process, local processes, Dask
# --------------------------------------------------------------------------------------
def _init_worker(threads: int, nice: int = 0) -> None:
    """Worker-process initialiser: the parent handles Ctrl-C; set the priority and threads."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if nice > 0 and hasattr(os, "nice"):
        os.nice(nice)
    if threads > 0:
        from ..threads import set_threads

        set_threads(threads)


class _Here:
    """Runs each trial in this process when waited for."""

    capacity = 1

    def __init__(self, observer: TuneObserver, stop: StopToken | None) -> None:
        self.observer, self.stop = observer, stop
        self.jobs: list[TrialJob] = []

    def submit(self, job: TrialJob) -> Any:
        self.jobs.append(job)
        return job.number

    def wait_any(self, timeout: float) -> list[tuple[Any, TrialOutput]]:
        job = self.jobs.pop(0)
        return [(job.number, run_trial(job, on_event=self.observer.event, stop=self.stop))]

    def shutdown(self) -> None:
        self.jobs.clear()


class _Processes:
    """Trials in local worker processes (spawned, so the caller's threads stay its own)."""

    def __init__(self, workers: int, threads: int, nice: int = 0) -> None:
        self.capacity = workers
        self.executor = parallel.spawn_pool(workers, _init_worker, (threads, nice))
        self.futures: dict[Future[TrialOutput], int] = {}

    def submit(self, job: TrialJob) -> Any:
        future = self.executor.submit(run_trial, job)
        self.futures[future] = job.number
        return job.number

    def wait_any(self, timeout: float) -> list[tuple[Any, TrialOutput]]:
        done, _ = wait(list(self.futures), timeout=timeout, return_when=FIRST_COMPLETED)
        out = []
        for future in done:
            number = self.futures.pop(future)
            try:
                out.append((number, future.result()))
            except Exception as exc:  # a crashed worker process
                out.append((number, TrialOutput(number, status="failed", error=one_line(exc))))
        return out

    def shutdown(self, cancel: bool = False) -> None:
        if not cancel:
            self.executor.shutdown(wait=True)
            return
        parallel.stop_pool(self.executor)


class _Dask:
    """One Dask task per trial, as the experiment runs its jobs."""

    def __init__(self, client: Any) -> None:
        self.client = client
        nthreads = client.nthreads() if hasattr(client, "nthreads") else {}
        self.capacity = max(1, sum(nthreads.values()) if nthreads else 1)
        self.futures: dict[Any, int] = {}

    def submit(self, job: TrialJob) -> Any:
        future = self.client.submit(run_trial, job, pure=False, key=f"smoe-tune-{job.number}-"
                                    f"{os.getpid()}-{time.time_ns()}")
        self.futures[future] = job.number
        return job.number

    def wait_any(self, timeout: float) -> list[tuple[Any, TrialOutput]]:
        deadline = time.monotonic() + timeout
        done = [f for f in self.futures if f.done()]
        while not done and time.monotonic() < deadline:
            time.sleep(0.05)
            done = [f for f in self.futures if f.done()]
        out = []
        for future in done:
            number = self.futures.pop(future)
            try:
                out.append((number, future.result()))
            except Exception as exc:  # a lost worker
                out.append((number, TrialOutput(number, status="failed", error=one_line(exc))))
        return out

    def shutdown(self, cancel: bool = False) -> None:
        if cancel and self.futures:
            self.client.cancel(list(self.futures))
        self.client.close()


def connect_dask(scheduler: Any) -> Any:
    """A ``distributed.Client`` of ``scheduler``.

    Raises
    ------
    ValueError
        When Dask distributed is missing or the scheduler does not answer.
    """
    try:
        from distributed import Client
    except ImportError:
        raise ValueError(
            "running on a Dask cluster needs Dask distributed: pip install 'smoe-gui[cluster]'"
        ) from None
    try:
        return Client(scheduler, timeout=f"{DASK_CONNECT_TIMEOUT_S}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ValueError(
            f"cannot reach the Dask scheduler at {scheduler}: {one_line(exc)}") from None


# --------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------
def _key(values: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    return tuple(sorted((k, round(float(v), 9)) for k, v in values.items()))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _finished(trial: Any) -> bool:
    """Whether a trial counts as done (complete, pruned or a real failure; not stale)."""
    from optuna.trial import TrialState

    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and not trial.user_attrs.get("stale", False)


def _fail_stale(study: Any) -> int:
    """Mark failed the running trials whose process (on this host) is gone."""
    from optuna.trial import TrialState

    host = platform.node()
    count = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner_host, owner_pid = t.user_attrs.get("host"), t.user_attrs.get("pid")
        if owner_host == host and isinstance(owner_pid, int) and owner_pid != os.getpid() \
                and not _pid_alive(owner_pid):
            study._storage.set_trial_user_attr(t._trial_id, "stale", True)
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            count += 1
    return count


def _load_images(config: TuneConfig) -> list[tuple[str, Any]]:
    from ..io.image import load_image

    images = []
    for path in config.images:
        image = load_image(path, max_size=config.max_size, channels=config.params.channels,
                           on_message=lambda _m: None)
        images.append((Path(path).stem, image))
    return images


def check_config(config: TuneConfig) -> list[dict[str, Any]] | None:
    """Check ``config`` before any work; the grid's points for a grid (else None).

    Raises
    ------
    ValueError
        One line for each bad input (method, sampler, objectives, ranges, trials,
        workers, a tuned parameter the kernel budget's planner sets).
    """
    check_method(config.method)
    if config.sampler not in SAMPLERS:
        raise ValueError(
            f"unknown sampler {config.sampler!r}; known samplers: {', '.join(SAMPLERS)}")
    if not config.objectives:
        raise ValueError("no objective given")
    for name in config.objectives:
        if name not in OBJECTIVES:
            raise ValueError(
                f"unknown objective {name!r}; known objectives: {', '.join(OBJECTIVES)}")
    if len(set(config.objectives)) != len(config.objectives):
        raise ValueError("an objective is given twice")
    check_ranges(config.ranges)
    if not config.images:
        raise ValueError("no image to tune on")
    if config.trials is not None and config.trials < 1:
        raise ValueError(f"the number of trials must be at least 1, got {config.trials}")
    if config.workers < 1:
        raise ValueError(f"the number of workers must be at least 1, got {config.workers}")
    if not 0 <= config.nice <= 19:
        raise ValueError(f"nice must be between 0 and 19, got {config.nice}")
    if config.dask_scheduler is not None and config.workers > 1:
        raise ValueError("run either in local worker processes or on a Dask scheduler, not both")
    spec("time_budget").coerce(config.time_budget)
    spec("n_kernels").coerce(config.kernels)
    if config.kernels:
        for r in config.ranges:
            if r.name in PLANNED:
                raise ValueError(f"parameter '{r.name}' is set by the kernel budget's planner; "
                                 "tune it without a kernel budget")
    config.base_params()  # validated
    if config.sampler == GRID_SAMPLER:
        limit = MAX_GRID_TRIALS if config.trials is None else min(config.trials, MAX_GRID_TRIALS)
        return grid_points(config.ranges, max_trials=limit)
    return None


def run_tune(config: TuneConfig, out: str | os.PathLike[str], *,
             observer: TuneObserver | None = None, stop: StopToken | None = None) -> TuneSummary:
    """Run (or resume) the study in ``out`` until it holds its trials, then write its outputs.

    Parameters
    ----------
    config : TuneConfig
    out : path
        Output folder: ``study.db``, ``trials.csv``, ``best/params.json``,
        ``best.json``, the figures, ``models/trial-NNNN.npz``
        (:func:`smoe_gui.core.tune.outputs.write_outputs`).
    observer : TuneObserver, optional
    stop : StopToken, optional
        Set it (from any thread) to stop: running trials end at once and run
        again on resume; finished ones are kept.

    Returns
    -------
    TuneSummary
        ``interrupted`` after Ctrl-C or ``stop``.

    Raises
    ------
    ValueError
        For bad input, before anything is written (see :func:`check_config`,
        :func:`check_study_file`; unreadable images; a Dask scheduler that does
        not answer; a study made with other settings).
    """
    from optuna.trial import TrialState

    from .outputs import trial_row, write_outputs, write_trials_csv

    started = time.monotonic()
    progress = observer if observer is not None else TuneObserver()
    points = check_config(config)
    out_dir = fileio.check_output_dir(out)
    study_path = out_dir / STUDY_FILE
    check_study_file(study_path)
    images = _load_images(config)
    client = connect_dask(config.dask_scheduler) if config.dask_scheduler is not None else None
    total = len(points) if points is not None else (config.trials or DEFAULT_SEARCH_TRIALS)
    summary = TuneSummary(out=out_dir, total=total)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        study = open_study(study_path, config)
    except BaseException:
        if client is not None:
            client.close()
        raise
    summary.stale = _fail_stale(study)
    if summary.stale:
        progress.note(f"{summary.stale} trial(s) left running by a stopped run will run again")
    dists = distributions(config.ranges)
    base = config.base_params()
    cores = os.cpu_count() or 1
    if client is not None:
        pool: Any = _Dask(client)
        threads = 1 if config.threads is None else config.threads
    elif config.workers > 1 or config.processes:
        threads = max(1, cores // config.workers) if config.threads is None else config.threads
        pool = _Processes(config.workers, threads, config.nice)
    else:
        threads = 0 if config.threads is None else config.threads
        pool = _Here(progress, stop)
    summary.resumed = sum(_finished(t) for t in study.get_trials(deepcopy=False))
    if summary.resumed:
        progress.note(f"resuming: {summary.resumed} of {total} trial(s) already finished")
    progress.start(total, summary.resumed, pool.capacity)
    running: dict[int, tuple[Any, TrialJob]] = {}

    def ask() -> tuple[Any, TrialJob] | None:
        owner = {"host": platform.node(), "pid": os.getpid()}
        if points is not None:
            trials = study.get_trials(deepcopy=False)
            # a point enqueued by a run killed before it asked for it is asked for first
            if not any(t.state == TrialState.WAITING for t in trials):
                taken = {_key(t.params) for t in trials
                         if _finished(t) or t.state == TrialState.RUNNING}
                todo = [p for p in points if _key(p) not in taken]
                if not todo:
                    return None
                study.enqueue_trial(todo[0], user_attrs=owner, skip_if_exists=False)
        trial = study.ask(dists)
        held = trial.user_attrs  # an enqueued point carries them already
        for key, value in owner.items():
            if held.get(key) != value:
                trial.set_user_attr(key, value)
        values = dict(trial.params)
        finished = [
            {int(s): float(v) for s, v in t.user_attrs.get("curve", [])}
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        ]
        job = TrialJob(
            number=trial.number, values=values, params=base, method=config.method,
            images=images, thresholds=prune_thresholds(finished) if config.pruning() else {},
            threads=threads,
        )
        try:
            job.params = base.replace(**values)
        except ValueError as exc:  # e.g. canny_low above canny_high: a failed trial
            job.error = one_line(exc)
        return trial, job

    def record(number: int, output: TrialOutput) -> None:
        trial, job = running.pop(number)
        curve = sorted(output.intermediate.items())
        trial.set_user_attr("curve", [[int(s), float(v)] for s, v in curve])
        if len(config.objectives) == 1:
            for step, value in curve:
                trial.report(value, step)
        for key in ("psnr_db", "ssim", "n_kernels", "seconds", "train_s", "wall_s"):
            value = float(getattr(output, key))
            trial.set_user_attr(key, value if np.isfinite(value) else None)
        trial.set_user_attr("per_image", json.loads(json.dumps(output.per_image, default=float)))
        if output.error:
            trial.set_user_attr("error", output.error)
        if output.pruned_step is not None:
            trial.set_user_attr("pruned_step", int(output.pruned_step))
        if output.model is not None:
            from ..io.modelio import save_model

            path = out_dir / "models" / f"trial-{number:04d}.npz"
            save_model(output.model, path, job.params, digest=output.image_digest or None)
        if output.status == "ok":
            values = {"psnr": output.psnr_db, "ssim": output.ssim,
                      "kernels": output.n_kernels, "seconds": output.seconds}
            study.tell(trial, [values[o] for o in config.objectives])
        elif output.status == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, state=TrialState.FAIL)
        summary.ran += 1
        frozen = study._storage.get_trial(trial._trial_id)
        write_trials_csv(study, out_dir, config.ranges)
        progress.trial_finished(trial_row(frozen, config.ranges))

    try:
        (out_dir / "models").mkdir(exist_ok=True)
        while not (stop is not None and stop.stopped):
            done = sum(_finished(t) for t in study.get_trials(deepcopy=False))
            while len(running) < pool.capacity and done + len(running) < total:
                asked = ask()
                if asked is None:
                    break
                running[asked[0].number] = asked
                pool.submit(asked[1])
                progress.trial_started(asked[0].number, asked[1].values)
            if not running:
                break
            for number, output in pool.wait_any(0.25):
                if stop is not None and stop.stopped and output.error == STOPPED:
                    continue
                record(number, output)
        if stop is not None and stop.stopped:
            summary.interrupted = True
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        cancel = summary.interrupted or bool(running)
        pool.shutdown(cancel) if not isinstance(pool, _Here) else pool.shutdown()
        for trial, _job in list(running.values()):  # run again on resume
            try:
                trial.set_user_attr("stale", True)
                study.tell(trial, state=TrialState.FAIL)
            except Exception:  # noqa: BLE001  (the study stays readable; resume fails it later)
                pass
        running.clear()
        progress.close()
    try:
        summary.files, summary.best = write_outputs(study, out_dir, config.ranges)
    finally:
        close_study(study)
    summary.elapsed_s = time.monotonic() - started
    return summary


def load_trials(out: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of the study in ``out`` (as in ``trials.csv``), for a window or a script.

    Raises
    ------
    ValueError
        When ``out`` holds no readable study.
    """
    from .outputs import trial_row

    path = Path(out) / STUDY_FILE
    if not path.exists():
        raise ValueError(f"{show_path(out)}: holds no study ({STUDY_FILE})")
    study = open_study(path)
    try:
        ranges = [_range_of(text) for text in settings_of(study).get("ranges", [])]
        return [trial_row(t, ranges) for t in study.get_trials(deepcopy=False)]
    finally:
        close_study(study)


def _range_of(text: str) -> ParamRange:
    from .space import parse_range

    return parse_range(text)

