"""Running a sweep: one job, the executors (this process, local processes, Dask)
and :func:`run_experiment`, which plans, runs, stores and reports.

Qt-free and silent: progress goes to a :class:`SweepObserver` (the terminal
display is the command line's, ``smoe_gui.cli``).

Time to converge: the fit's elapsed time (s, from the start of the fit) at
which the whole-image PSNR first came within :data:`.curves.CONVERGE_TOL_DB` of its
final value.  The tile phase reports per-tile PSNR, so the whole-image history
starts with the initial model's PSNR at time 0 and continues from the merge.
"""

from __future__ import annotations

import math
import os
import platform
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import parallel
from ..errors import one_line
from ..events import FitEvent
from ..io import fileio
from ..params import METHODS, Params
from ..threads import default_threads, set_threads
from .curves import time_to_converge, whole_image_curve
from .lifetime import DASK_CONNECT_TIMEOUT_S, connect_dask, follow_parent
from .plan import (
    DEFAULT_BUDGETS,
    Job,
    collect_images,
    default_image_folders,
    default_images,
    load_sources,
    plan_jobs,
    rows_for,
)
from .store import (
    RunOutput,
    csv_text,
    finished_keys,
    load_records,
    record_outputs,
    save_run,
)

if TYPE_CHECKING:
    from .claims import Claim

__all__ = [
    "DASK_CONNECT_TIMEOUT_S",
    "ExperimentSummary",
    "SweepObserver",
    "run_experiment",
    "run_job",
]



class SweepObserver:
    """Receives a sweep's progress from :func:`run_experiment`; every method
    does nothing here.  A display subclasses it (``smoe experiment`` draws a
    progress bar on a terminal, plain lines otherwise)."""

    def start(self, total: int, workers: int, expected_s: float) -> None:
        """A sweep of ``total`` runs to do on ``workers`` workers, about ``expected_s`` s each."""

    def job_started(self, label: str) -> None:
        """A run (``"<image> <method> <budget>"``) started in this process."""

    def event(self, event: FitEvent) -> None:
        """A fit event of the run in this process."""

    def job_finished(self, record: dict[str, Any]) -> None:
        """A run finished, ok or failed (``record``: its CSV row)."""

    def note(self, text: str) -> None:
        """A one-line note for the user (missing images, resuming, planning)."""

    def close(self) -> None:
        """The sweep ended (finished, failed or interrupted)."""


def _interrupted(exc: BaseException) -> bool:
    """Whether a Ctrl-C hides in the exception's chain (compiled code such as
    numba's turns a KeyboardInterrupt into a SystemError caused by it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _set_threads(threads: int) -> None:
    """Torch and numba threads for the runs (0: leave them as they are)."""
    if threads > 0:
        set_threads(threads)


def _initialize(job: Job) -> Any:
    """The job's initialisation: the planned ``max_pts``; the grid baseline places
    as many kernels as the edge method gives with it (see ``initialize``)."""
    from ..methods.pipeline import initialize

    assert job.image is not None
    init = initialize(job.image, job.params, method=job.method)
    n = init.model.n_kernels
    if n != job.target_kernels:
        raise RuntimeError(
            f"the {job.method} initialisation made {n} kernels, the plan expected "
            f"{job.target_kernels}"
        )
    return init


def run_job(job: Job, on_event: Callable[[FitEvent], None] | None = None) -> RunOutput:
    """Run one job: initialise, fit and evaluate with :func:`smoe_gui.core.train.runs.run_fit`.

    Never raises for a failing run (the output's record says ``status =
    failed`` with the error), except :class:`KeyboardInterrupt`.

    Parameters
    ----------
    job : Job
    on_event : callable, optional
        Called with every fit event (progress display in the same process).
    """
    start = time.perf_counter()
    out = RunOutput(record=job.base_record(), host=platform.node())
    try:
        if job.error is not None:
            raise ValueError(job.error)
        if job.image is None:
            raise ValueError("no image")
        _set_threads(job.threads)
        from ..io.modelio import image_digest
        from ..metrics import psnr_json
        from ..train.runs import run_fit

        t0 = time.perf_counter()
        init = _initialize(job)
        init_s = time.perf_counter() - t0
        out.init_model = init.model
        out.image_digest = image_digest(job.image)
        out.expert_psnr = [float(p) for p in init.expert_psnr]
        # the model holds the best iterate (expert_stop = "mse"), not always the last
        out.initial_psnr = max(out.expert_psnr) if out.expert_psnr else math.nan
        out.notes.extend(init.notes)
        out.record.update(init_kernels=init.model.n_kernels, init_s=round(init_s, 4))

        result = run_fit(job.image, job.params, job.method, init=init, on_event=on_event)
        for message in result.messages:
            if message not in out.notes and len(out.notes) < 50:
                out.notes.append(message)
        out.final_model = result.model
        out.reconstruction = np.round(np.clip(result.reconstruction, 0.0, 1.0) * 255.0).astype(
            np.uint8
        )
        out.history = result.history
        times, psnrs = whole_image_curve(result.history, out.initial_psnr)
        out.record.update(
            final_kernels=result.model.n_kernels,
            psnr_db=psnr_json(
                round(result.psnr_db, 4) if math.isfinite(result.psnr_db) else result.psnr_db
            ),
            ssim=round(result.ssim, 5),
            converge_s=round(time_to_converge(times, psnrs, result.psnr_db), 3),
            fit_s=round(float(result.final.elapsed_s), 3),
            steps=int(result.final.step),
            status="ok",
        )
    except Exception as exc:  # a failing run is a result, not the end of the sweep
        if _interrupted(exc):
            raise KeyboardInterrupt from exc
        out.record.update(status="failed", error=one_line(exc))
    out.record["wall_s"] = round(time.perf_counter() - start, 3)
    return out


def _init_pool_worker(threads: int, parent: int) -> None:
    """Process-pool initialiser: the parent handles Ctrl-C and SIGTERM; the worker
    ends when the parent is gone (:func:`~.lifetime.follow_parent`); set torch threads."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    follow_parent(parent)
    _set_threads(threads)


def _failed_output(job: Job, exc: BaseException) -> RunOutput:
    out = RunOutput(record=job.base_record())
    out.record.update(status="failed", error=one_line(exc))
    return out


def _run_serial(
    jobs: Sequence[Job], on_done: Callable[[RunOutput], None], observer: SweepObserver
) -> None:
    for job in jobs:
        observer.job_started(job.label)
        on_done(run_job(job, on_event=observer.event))


def _run_processes(
    jobs: Sequence[Job], workers: int, threads: int, on_done: Callable[[RunOutput], None]
) -> None:
    executor = parallel.spawn_pool(workers, _init_pool_worker, (threads, os.getpid()))
    futures: dict[Future[RunOutput], Job] = {}
    try:
        futures = {executor.submit(run_job, job): job for job in jobs}
        pending: set[Future[RunOutput]] = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    output = future.result()
                except Exception as exc:  # a crashed worker process
                    output = _failed_output(futures[future], exc)
                on_done(output)
    except BaseException:
        for future in futures:
            future.cancel()
        parallel.stop_pool(executor)
        raise
    executor.shutdown(wait=True)


def _run_dask(jobs: Sequence[Job], client: Any, on_done: Callable[[RunOutput], None]) -> None:
    """One Dask task per run on a connected client (:func:`connect_dask`).  An
    AS-SMoE run's per-segment fits do not stay in its task:
    :class:`smoe_gui.core.methods.segment.segment_init.LocalFitRunner` sees that it
    runs on a Dask worker and submits them to the same cluster (same results
    as in local processes)."""
    from distributed import as_completed

    try:
        futures = client.map(
            run_job, list(jobs), pure=False, key=[f"smoe-{j.run_id}" for j in jobs]
        )
        by_key = {f.key: job for f, job in zip(futures, jobs, strict=True)}
        try:
            for future in as_completed(futures, loop=client.loop):
                try:
                    output = future.result()
                except Exception as exc:  # a lost worker
                    output = _failed_output(by_key[future.key], exc)
                on_done(output)
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        client.close()


# --------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------
@dataclass
class ExperimentSummary:
    """What a call of :func:`run_experiment` did.

    Attributes
    ----------
    out : Path
    total : int
        Runs in the sweep.
    resumed : int
        Runs skipped because they had finished before.
    ran : int
        Runs finished in this call (ok or failed).
    failed : list of str
        ``"label: error"`` of every failed run of the sweep.
    skipped_files : list of Path
        Non-image files met in the folders.
    missing_images : list of str
        Paper images not found (default image set only).
    pending : int
        Runs of the sweep not finished (after Ctrl-C).
    interrupted : bool
        Ctrl-C ended the call.
    elapsed_s : float
        Wall-clock seconds of this call.
    files : list of Path
        Report files written.
    missing_runs : list of str
        Labels (``"<image> <method> <budget>"``) of the sweep's runs not
        stored (``report_only``: the runs left out of the report).
    claims : list of Claim
        The paper's claims tested on the sweep
        (:func:`smoe_gui.core.experiment.claims.paper_claims`).
    """

    out: Path
    total: int = 0
    resumed: int = 0
    ran: int = 0
    failed: list[str] = field(default_factory=list)
    skipped_files: list[Path] = field(default_factory=list)
    missing_images: list[str] = field(default_factory=list)
    pending: int = 0
    interrupted: bool = False
    elapsed_s: float = 0.0
    files: list[Path] = field(default_factory=list)
    missing_runs: list[str] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)


def run_experiment(
    inputs: Sequence[str | os.PathLike[str]] | None,
    out: str | os.PathLike[str],
    *,
    methods: Sequence[str] = METHODS,
    budgets: Sequence[int] = DEFAULT_BUDGETS,
    params: Params | None = None,
    workers: int = 1,
    dask_scheduler: Any = None,
    threads: int | None = None,
    max_size: int | None = None,
    observer: SweepObserver | None = None,
    log: Callable[[str], None] | None = None,
    report_only: bool = False,
) -> ExperimentSummary:
    """Run the sweep, resuming from ``out``, and write the report.

    Parameters
    ----------
    inputs : sequence of paths or None
        Image files and folders; None or empty: the paper's four images.
    out : path
        Output folder (created).
    methods, budgets : sequences
        Methods (names of :data:`smoe_gui.core.params.METHODS`) and kernel budgets.
    params : Params, optional
        Parameters of every run (``time_budget`` is each fit's budget).
    workers : int
        1: run in this process; more: that many local processes (spawn).
    dask_scheduler : str or object, optional
        Address of a Dask scheduler (or anything ``distributed.Client``
        accepts, e.g. a ``LocalCluster``): run the jobs there instead.
    threads : int, optional
        Torch threads per run; default: all cores in this process, cores //
        workers in local processes, 1 on Dask (one run per Dask worker thread).
    max_size : int, optional
        Downscale images whose longer side exceeds it.
    observer : SweepObserver, optional
        Receives the sweep's progress (runs started and finished, fit events of
        runs in this process); the terminal display is the CLI's.
    log : callable, optional
        Receives one-line notes (missing images, ...); default: ``observer.note``.
    report_only : bool
        Run nothing: rewrite the report (``results.csv``, ``results.md``,
        ``claims.json``, the figures) from the runs stored in ``out`` that
        belong to this sweep (same images, methods, budgets and parameters);
        the sweep's runs not stored are listed in ``missing_runs`` and in
        ``results.md``.  The model files (``.npz``) are not needed (without
        them the kernel-placement figure is left out).

    Returns
    -------
    ExperimentSummary
        ``interrupted`` is True after Ctrl-C; finished runs are saved either way.

    Raises
    ------
    ValueError
        For bad arguments, no images, an unreachable scheduler; with
        ``report_only``, an output folder without stored runs.
    """
    started = time.monotonic()
    params = params if params is not None else Params()
    methods = tuple(methods)
    budgets = tuple(budgets)
    if not methods:
        raise ValueError("no methods to run")
    for method in methods:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; known methods: {', '.join(METHODS)}")
    if not budgets or any(int(b) < 2 for b in budgets):
        raise ValueError("kernel budgets must be whole numbers of at least 2")
    if workers < 1:
        raise ValueError(f"the number of worker processes must be at least 1, got {workers}")
    if dask_scheduler is not None and workers > 1:
        raise ValueError("run either in local worker processes or on a Dask scheduler, not both")
    progress = observer if observer is not None else SweepObserver()
    say = log if log is not None else progress.note
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: exists and is not a folder")
    if report_only and not load_records(out_dir):
        raise ValueError(f"{out_dir}: no stored runs to report (no readable runs/*.json)")

    summary = ExperimentSummary(out=out_dir)
    if inputs:
        paths, summary.skipped_files = collect_images(inputs, outputs=out_dir)
        if not paths:
            raise ValueError("no image files found in " + ", ".join(str(p) for p in inputs))
    else:
        paths, summary.missing_images = default_images()
        if summary.missing_images:
            paper, samples = default_image_folders()
            say(
                f"paper images not found: {', '.join(summary.missing_images)} (looked in {paper} "
                f"and {samples}); running {', '.join(p.stem for p in paths) or 'nothing'}"
            )
        if not paths:
            raise ValueError("none of the paper's images were found; give images or folders")
    # nothing is written before the scheduler answered; one process at a time on out_dir
    client = (
        connect_dask(dask_scheduler) if dask_scheduler is not None and not report_only else None
    )
    try:
        if not report_only:
            fileio.make_folder(out_dir)
        lock = fileio.OutputLock(out_dir).acquire()
    except BaseException:
        if client is not None:
            client.close()
        raise
    try:
        return _sweep(
            summary,
            out_dir,
            paths,
            methods,
            budgets,
            params,
            workers,
            client,
            dask_scheduler,
            threads,
            max_size,
            progress,
            say,
            report_only,
            started,
        )
    finally:
        lock.release()
        if client is not None:
            client.close()


def _sweep(
    summary: ExperimentSummary,
    out_dir: Path,
    paths: Sequence[Path],
    methods: tuple[str, ...],
    budgets: tuple[int, ...],
    params: Params,
    workers: int,
    client: Any,
    dask_scheduler: Any,
    threads: int | None,
    max_size: int | None,
    progress: SweepObserver,
    say: Callable[[str], None],
    report_only: bool,
    started: float,
) -> ExperimentSummary:
    """:func:`run_experiment` once its arguments are checked, the scheduler (if
    any) connected and ``out_dir`` locked."""
    for stale in fileio.remove_stale_staging(out_dir):
        say(f"removed {stale.name}, left by a writer that was killed")

    cores = default_threads()
    if threads is None:
        if dask_scheduler is not None:
            threads = 1
        elif workers > 1:
            threads = max(1, cores // workers)
        else:
            threads = 0
    sources = load_sources(paths, max_size=max_size, on_message=say, channels=params.channels)
    payloads = load_records(out_dir, on_skip=say)
    done_keys = finished_keys(payloads.values())
    if report_only:  # nothing runs, so nothing is planned
        jobs = plan_jobs(sources, methods, budgets, params, threads=threads, skip=lambda key: True)
        todo: list[Job] = []
    else:
        jobs = plan_jobs(
            sources, methods, budgets, params, threads=threads, skip=done_keys.__contains__, log=say
        )
        todo = [job for job in jobs if job.key not in done_keys]
    summary.total = len(jobs)
    summary.resumed = len(jobs) - len(todo)
    if summary.resumed and not report_only:
        say(f"resuming: {summary.resumed} of {len(jobs)} run(s) already finished in {out_dir}")

    def on_done(output: RunOutput) -> None:
        save_run(out_dir, output)
        payloads[output.record["run_id"]] = {"record": output.record}
        fileio.write_text(out_dir / "results.csv", csv_text(rows_for(jobs, payloads)))
        summary.ran += 1
        progress.job_finished(output.record)

    if report_only:
        _report(summary, out_dir, jobs, methods, budgets, params, sources, started)
        return summary
    fileio.write_text(out_dir / "results.csv", csv_text(rows_for(jobs, payloads)))
    progress.start(len(todo), workers, params.time_budget + 2.0)
    try:
        # runs that cannot start (unreadable image, impossible budget) are recorded at once
        runnable = []
        for job in todo:
            if job.error is not None:
                on_done(run_job(job))
            else:
                runnable.append(job)
        if runnable:
            if client is not None:
                _run_dask(runnable, client, on_done)
            elif workers > 1:
                _run_processes(runnable, workers, threads, on_done)
            else:
                _set_threads(threads)
                _run_serial(runnable, on_done, progress)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        progress.close()

    _report(
        summary,
        out_dir,
        jobs,
        methods,
        budgets,
        params,
        sources,
        started,
        execution={
            "workers": workers,
            "dask_scheduler": None
            if dask_scheduler is None
            else str(getattr(dask_scheduler, "scheduler_address", dask_scheduler)),
            "threads": threads,
        },
    )
    return summary


def _report(
    summary: ExperimentSummary,
    out_dir: Path,
    jobs: Sequence[Job],
    methods: Sequence[str],
    budgets: Sequence[int],
    params: Params,
    sources: Sequence[Any],
    started: float,
    execution: dict[str, Any] | None = None,
) -> None:
    """Fill ``summary`` from the runs stored in ``out_dir`` and write the report
    (``execution`` None: rewritten from the stored runs, nothing ran)."""
    from .claims import paper_claims
    from .report import write_report

    payloads = load_records(out_dir)
    rows = rows_for(jobs, payloads)
    if execution is None and not rows:
        found = sorted({str(p["record"].get("params_hash")) for p in payloads.values()})
        raise ValueError(
            f"{out_dir}: none of the stored runs belong to this sweep (stored parameter hash(es) "
            f"{', '.join(found)}, this sweep's {params.digest()}): give the images, methods, "
            "budgets and parameters of the run"
        )
    stored = {r["run_id"] for r in rows}
    summary.failed = [
        f"{r['image']} {r['method']} {r['budget']}: {r['error']}"
        for r in rows
        if r["status"] != "ok"
    ]
    summary.pending = len(jobs) - len(rows)
    summary.missing_runs = [job.label for job in jobs if job.run_id not in stored]
    summary.claims = paper_claims(rows, payloads)
    summary.elapsed_s = time.monotonic() - started
    meta: dict[str, Any] = {
        "methods": list(methods),
        "budgets": [int(b) for b in budgets],
        "params": params,
        "elapsed_s": summary.elapsed_s,
        "skipped_files": [str(p) for p in summary.skipped_files],
        "missing_images": summary.missing_images,
        "sources": sources,
        "interrupted": summary.interrupted,
        "pending": summary.pending,
        "missing_runs": summary.missing_runs,
        "claims": summary.claims,
        "report_only": execution is None,
        **(execution or {}),
    }
    try:
        summary.files = _write_report_group(out_dir, jobs, payloads, meta, write_report)
    except KeyboardInterrupt:
        summary.interrupted = True


def _write_report_group(
    out_dir: Path,
    jobs: Sequence[Job],
    payloads: dict[str, dict[str, Any]],
    meta: dict[str, Any],
    write_report: Callable[..., list[Path]],
) -> list[Path]:
    """``write_report`` into a staging folder, its files moved into ``out_dir``
    together (:func:`~smoe_gui.core.io.fileio.output_group`): an error or Ctrl-C
    part way leaves the previous report whole.  The staging folder sees the
    stored runs through a link to ``out_dir/runs`` and the previous
    ``sweep.json`` as a copy."""
    import shutil

    from .store import SWEEP_FILE, runs_dir

    with fileio.output_group(out_dir) as staging:
        link = staging / "runs"
        if runs_dir(out_dir).is_dir():
            link.symlink_to(runs_dir(out_dir).resolve(), target_is_directory=True)
        if (out_dir / SWEEP_FILE).is_file():
            shutil.copy2(out_dir / SWEEP_FILE, staging / SWEEP_FILE)
        try:
            written = write_report(staging, jobs, payloads, meta)
        finally:
            if link.is_symlink():
                link.unlink()
        names = [path.relative_to(staging) for path in written]
        record_outputs(staging, [*names, Path(SWEEP_FILE)])
    return [out_dir / name for name in names]
