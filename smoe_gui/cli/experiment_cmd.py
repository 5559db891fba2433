"""``smoe experiment``: the paper's section IV experiments in one command.

``smoe experiment [IMAGES or FOLDERS ...] --out DIR`` runs every (image,
method, kernel budget) with :func:`smoe_gui.core.experiment.run_experiment` and
writes ``DIR/results.csv``, ``DIR/results.md``, the figures and one file set
per run under ``DIR/runs``.  Re-running with the same ``--out`` resumes;
``--report-only`` runs nothing and rewrites the report from the stored runs.
Ctrl-C keeps every finished run and exits 130; a sweep in which some runs
failed (recorded with their error) exits 1; bad arguments exit 2.  See ``docs/experiments.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO, TypeVar

from ..core.errors import show_path
from ..core.events import FitEvent
from ..core.experiment import (
    DEFAULT_BUDGETS,
    PAPER_IMAGES,
    parse_budgets,
    parse_methods,
    run_experiment,
)
from ..core.experiment.report import clock
from ..core.experiment.run import SweepObserver
from ..core.metrics import format_psnr
from ..core.params import METHODS
from . import (
    EXIT_INTERRUPTED,
    add_param_options,
    max_size_option,
    methods_text,
    params_from_args,
)
from .progress import FitProgress, Progress

__all__ = ["EXIT_RUNS_FAILED", "SweepProgress", "register", "run"]

T = TypeVar("T")

#: Exit status when the sweep completed but some runs failed (they are in the report).
EXIT_RUNS_FAILED = 1


class SweepProgress(SweepObserver):
    """The sweep's terminal progress: one :class:`~smoe_gui.cli.progress.Progress`
    bar over the runs (plain lines when not a terminal), with the ETA and the
    current run's fit status; a line per finished run.

    Parameters
    ----------
    stream : text stream, optional
        Where to write (default ``sys.stderr``).
    tty : bool, optional
        Force the bar (True) or plain lines (False); default: whether ``stream``
        is a terminal.
    """

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = tty
        self.total = 0
        self.done = 0
        self.workers = 1
        self.expected_s = 60.0
        self._bar: Progress | None = None
        self._durations: list[float] = []
        self._current = ""
        self._current_since = 0.0
        self._fit = ""

    def start(self, total: int, workers: int, expected_s: float) -> None:
        self.total, self.workers, self.expected_s = total, max(1, workers), expected_s
        self._bar = Progress(
            max(1, total), "experiment", unit="run", stream=self.stream, tty=self.tty
        )
        self.note(f"{total} run(s) to do on {self.workers} worker(s)")
        self._show(force=True)

    def job_started(self, label: str) -> None:
        self._current, self._current_since, self._fit = label, time.monotonic(), ""
        self._show(force=True)

    def event(self, event: FitEvent) -> None:
        self._fit = FitProgress.status_of(event)
        self._show()

    def job_finished(self, record: dict[str, Any]) -> None:
        self.done += 1
        if record.get("wall_s") not in ("", None):
            self._durations.append(float(record["wall_s"]))
        self._current, self._fit = "", ""
        label = f"{record['image']} {record['method']} {record['budget']}"
        if record.get("status") == "ok":
            text = (
                f"{label}: {format_psnr(float(record['psnr_db']))}, SSIM "
                f"{float(record['ssim']):.4f}, {record['final_kernels']} kernels, "
                f"{float(record['wall_s']):.1f} s"
            )
        else:
            text = f"{label}: FAILED ({record.get('error', '')})"
        self.note(f"[{self.done}/{self.total}] {text}")
        self._show(force=True)

    def eta_s(self) -> float:
        """Seconds left, from the finished runs' mean time (before the first: the time budget)."""
        per_run = statistics.fmean(self._durations) if self._durations else self.expected_s
        left = (self.total - self.done) * per_run / self.workers
        if self._current:
            left -= min(per_run, time.monotonic() - self._current_since) / self.workers
        return max(0.0, left)

    def _show(self, force: bool = False) -> None:
        if self._bar is None:
            return
        status = f"{self.done}/{self.total} runs, ETA {clock(self.eta_s())}"
        if self._current:
            status += f" | {self._current}" + (f": {self._fit}" if self._fit else "")
        # plain lines (not a terminal): the finished-run notes, and the status every few seconds
        self._bar.update(self.done, status, force=force and self._bar.tty)

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.note(text)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _positive_int(name: str, text: str, low: int = 1) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"{name} expects a whole number, got {text!r}") from None
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``experiment`` sub-command."""
    parser = subparsers.add_parser(
        "experiment",
        help=f"compare the initialisations ({methods_text()}) over images and kernel budgets",
        description=(
            f"Run every (image, method, kernel budget) -- the methods of --methods, any of "
            f"{methods_text()} -- fit each for the time budget, and write "
            "results.csv, results.md and the figures of the paper's section IV into --out. "
            f"Without images, runs the paper's images ({', '.join(PAPER_IMAGES)}). "
            "Re-running with the same --out resumes where it stopped."
        ),
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="IMAGE_OR_FOLDER",
        help="image files and folders of images (default: the paper's four images)",
    )
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated methods (default: {','.join(METHODS)})",
    )
    parser.add_argument(
        "--budgets",
        default=",".join(str(b) for b in DEFAULT_BUDGETS),
        help="comma-separated kernel budgets (default: %(default)s)",
    )
    parser.add_argument(
        "--time-budget",
        metavar="S",
        default=None,
        help="seconds of training per run (default: the time_budget parameter, 60)",
    )
    parser.add_argument(
        "--workers",
        metavar="N",
        default="1",
        help="local worker processes (default 1: run in this process)",
    )
    parser.add_argument(
        "--threads",
        metavar="N",
        default=None,
        help="torch threads per run (default: cores / workers; 1 on Dask)",
    )
    parser.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        default=None,
        help="run on a Dask distributed cluster (needs smoe-gui[cluster])",
    )
    parser.add_argument(
        "--max-size",
        metavar="PX",
        default=None,
        help="downscale images whose longer side exceeds PX pixels",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: rewrite results.csv, results.md, claims.json and the figures from the "
        "runs stored in --out (give the same images, methods, budgets and parameters); "
        "lists the sweep's runs that are not stored",
    )
    add_param_options(parser)
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (created; resumed if it exists)"
    )
    parser.set_defaults(func=run)


def _option(name: str, parse: Callable[[str], T], text: str) -> T:
    """``parse(text)``; a ValueError's message is prefixed with the option's name."""
    try:
        return parse(text)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    """Run ``smoe experiment``; returns the exit status."""
    from ..core.io.fileio import check_output_dir

    methods = _option("--methods", parse_methods, args.methods)
    budgets = _option("--budgets", parse_budgets, args.budgets)
    params = params_from_args(args)
    if params.n_kernels:  # --kernels N: the sweep's one budget (the experiment plans each method)
        budgets = parse_budgets(str(params.n_kernels))
        params = params.replace(n_kernels=0)
    if args.time_budget is not None:
        params = params.with_assignments([f"time_budget={args.time_budget}"])
    workers = _positive_int("--workers", args.workers)
    threads = None if args.threads is None else _positive_int("--threads", args.threads)
    max_size = max_size_option(args.max_size)
    if args.dask_scheduler is not None and workers > 1:
        raise ValueError("give either --workers or --dask-scheduler, not both")
    check_output_dir(args.out)

    progress = SweepProgress()
    summary = run_experiment(
        args.inputs,
        args.out,
        methods=methods,
        budgets=budgets,
        params=params,
        workers=workers,
        dask_scheduler=args.dask_scheduler,
        threads=threads,
        max_size=max_size,
        observer=progress,
        report_only=args.report_only,
    )
    ok = summary.total - len(summary.failed) - summary.pending
    if args.report_only:
        print(
            f"report rewritten from {summary.total - summary.pending} stored run(s) of "
            f"{summary.total}; {ok} ok, {len(summary.failed)} failed, {summary.pending} not stored"
        )
        for label in summary.missing_runs:
            print(f"  not stored: {label}")
    else:
        print(
            f"{summary.ran} run(s) done now, {summary.resumed} resumed; {ok} of {summary.total} "
            f"ok, {len(summary.failed)} failed, {summary.pending} pending; {summary.elapsed_s:.0f} "
            "s"
        )
    for line in summary.failed:
        print(f"  failed: {line}")
    if summary.skipped_files:
        print(f"skipped {len(summary.skipped_files)} non-image file(s):")
        for path in summary.skipped_files:
            print(f"  {show_path(path)}")
    if summary.missing_images:
        print(f"paper images not found: {', '.join(summary.missing_images)}")
    if summary.files:
        figures = sum(1 for path in summary.files if path.suffix == ".png")
        print(
            f"wrote {show_path(summary.out / 'results.csv')}, "
            f"{show_path(summary.out / 'results.md')}, {show_path(summary.out / 'claims.json')} "
            f"and {figures} figure(s)"
        )
        for claim in summary.claims:
            print(f"paper's claim {claim.line()}")
    if summary.interrupted:
        print(
            "smoe: interrupted; finished runs are saved, re-run the same command to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return EXIT_RUNS_FAILED if summary.failed else 0
