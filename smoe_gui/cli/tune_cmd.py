"""``smoe tune``: sweeps and searches over the parameters, judged on the trained model.

``smoe tune IMAGE [IMAGE ...] --param NAME=LOW:HIGH[:STEPS] ... --out DIR`` runs a
study with :func:`smoe_gui.core.tune.run_tune`: each trial is a full fit of every
image; the study lives in ``DIR/study.db`` (Optuna, SQLite), so re-running the
same command resumes it.  Writes ``trials.csv``, ``params.json`` (the best
trial's parameters, for ``smoe fit --params``), ``best.json`` and the figures.
Ctrl-C keeps every finished trial and exits 130; a study in which no trial
finished exits 1; bad input exits 2 with one line.  See ``docs/tuning.md``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from ..core.errors import show_path
from ..core.params import METHODS
from ..core.tune.study import OBJECTIVES, SAMPLERS, TuneObserver
from . import (
    EXIT_INTERRUPTED,
    add_param_options,
    max_size_option,
    methods_text,
    params_from_args,
)
from .fit_cmd import _positive_float, _positive_int

__all__ = ["EXIT_NO_TRIAL", "TuneLines", "register"]

#: Exit status when the study ended without one complete trial.
EXIT_NO_TRIAL = 1


def _number(value: Any, fmt: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{fmt}}{unit}"


class TuneLines(TuneObserver):
    """One line per started and finished trial on ``stream`` (default stderr)."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.total = 0
        self.done = 0

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(f"smoe tune: {text}", file=self.stream, flush=True)

    def start(self, total: int, done: int, workers: int) -> None:
        self.total, self.done = total, done
        self._say(f"{total - done} of {total} trial(s) to run on {workers} worker(s)")

    def trial_started(self, number: int, values: dict[str, Any]) -> None:
        shown = ", ".join(f"{k}={v:g}" for k, v in values.items())
        self._say(f"trial {number} started: {shown}")

    def trial_finished(self, row: dict[str, Any]) -> None:
        self.done += 1
        head = f"trial {row['trial']} {row['state']} ({self.done}/{self.total})"
        if row["state"] == "complete":
            self._say(f"{head}: PSNR {_number(row['psnr_db'], '.2f', ' dB')}, SSIM "
                      f"{_number(row['ssim'], '.4f')}, {_number(row['n_kernels'], '.0f')} kernels, "
                      f"{_number(row['seconds'], '.1f', ' s')}")
        elif row["state"] == "pruned":
            self._say(f"{head}: below the median of the finished trials at step "
                      f"{row['pruned_step']}")
        else:
            self._say(f"{head}: {row.get('error') or 'no result'}")

    def note(self, text: str) -> None:
        self._say(text)


def _objectives(text: str) -> tuple[str, ...]:
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    for item in items:
        if item not in OBJECTIVES:
            raise argparse.ArgumentTypeError(
                f"unknown objective {item!r}; known objectives: {', '.join(OBJECTIVES)}")
    if not items:
        raise argparse.ArgumentTypeError("no objective given")
    return items


def _cmd_tune(args: argparse.Namespace) -> int:
    from ..core.tune import TuneConfig, parse_range, run_tune

    params = params_from_args(args)
    ranges = []
    for text in args.param:
        try:
            ranges.append(parse_range(text))
        except ValueError as exc:
            raise ValueError(f"--param: {exc}") from None
    config = TuneConfig(
        images=args.images, ranges=ranges, method=args.method, kernels=params.n_kernels,
        time_budget=args.time_budget if args.time_budget is not None else params.time_budget,
        trials=args.trials, sampler=args.sampler, objectives=args.objectives, params=params,
        workers=args.workers or 1, dask_scheduler=args.dask_scheduler, threads=args.threads,
        prune=args.prune, seed=args.seed, max_size=max_size_option(args.max_size),
    )
    lines = TuneLines(quiet=args.quiet)
    summary = run_tune(config, args.out, observer=lines)
    best = summary.best
    if best is None:
        lines._say(f"no trial finished; the study is in {show_path(summary.out)}")
    else:
        shown = ", ".join(f"{k}={v:g}" for k, v in best["values"].items())
        lines._say(f"best: trial {best['trial']} ({shown}): PSNR {best['psnr_db']:.2f} dB, "
                   f"SSIM {best['ssim']:.4f}; wrote trials.csv, params.json, best.json and "
                   f"the figures to {show_path(summary.out)}")
    if summary.interrupted:
        print(f"smoe: interrupted; {summary.resumed + summary.ran} trial(s) kept in "
              f"{show_path(summary.out)} (run the same command to resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0 if best is not None else EXIT_NO_TRIAL


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``tune`` sub-command."""
    parser = subparsers.add_parser(
        "tune",
        help="sweep or search parameters, judged on the trained model",
        description="Tune parameters on the trained model: each trial initialises, trains and "
        "evaluates every IMAGE; a grid over 1-2 parameters or an Optuna TPE search. The study "
        "is stored in DIR/study.db and resumes when the command is run again. Writes "
        "trials.csv, params.json (the best trial's, for smoe fit --params), best.json and "
        "figures into --out. Ctrl-C keeps the finished trials and exits 130.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="image files fitted by every trial")
    parser.add_argument("--param", action="append", required=True, metavar="NAME=LOW:HIGH[:STEPS]",
                        help="a tuned parameter and its range (repeatable; STEPS: grid points)")
    add_param_options(parser)
    parser.add_argument("--method", choices=METHODS, default=METHODS[0],
                        help=f"kernel initialisation: {methods_text()} "
                        f"(default: {METHODS[0]})")
    parser.add_argument("--time-budget", type=_positive_float, metavar="S",
                        help="training seconds of every fit (sets time_budget)")
    parser.add_argument("--trials", type=_positive_int, metavar="T",
                        help="trials in the study (default: every grid point; 20 for tpe)")
    parser.add_argument("--sampler", choices=SAMPLERS, default="tpe",
                        help="grid: every point of 1-2 parameters; tpe: Optuna's search (default)")
    parser.add_argument("--objectives", type=_objectives, default=("psnr",), metavar="LIST",
                        help=f"comma-separated, from {', '.join(OBJECTIVES)} (default psnr; more "
                        "than one: a multi-objective search)")
    prune = parser.add_mutually_exclusive_group()
    prune.add_argument("--prune", dest="prune", action="store_true", default=None,
                       help="stop trials whose PSNR falls below the median (default for tpe)")
    prune.add_argument("--no-prune", dest="prune", action="store_false",
                       help="run every trial to its budget")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive_int, metavar="N",
                       help="trials at a time in local worker processes (default 1: this process)")
    where.add_argument("--dask-scheduler", metavar="ADDR",
                       help="run the trials on this Dask scheduler (e.g. tcp://host:8786)")
    parser.add_argument("--threads", type=_positive_int, metavar="N",
                        help="threads per trial (default: cores / workers; 1 on Dask)")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed (default 0)")
    parser.add_argument("--max-size", metavar="N",
                        help="downscale images so that the longer side is at most N px")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (the study)")
    parser.set_defaults(func=_cmd_tune)
