"""Overheads of ``smoe experiment`` and the projected time of the default run.

Runs the default sweep (the paper's images x edge, grid x 500, 1000, 2000
kernels) with a short time budget, measures everything that is not the fit's
own time budget (budget planning, initialisation, the fit's overrun past its
budget, evaluation and saving, the report) and projects the wall-clock time of
the default run with 60 s per fit.  The default run must finish within 30
minutes on the 2-core reference machine.

    .venv/bin/python benchmarks/bench_experiment.py [--time-budget 3] [--keep DIR]
        [--images PATH ...]

Images: the paper's four from ``--images`` (files or folders), else
``../shared/images`` next to the checkout, else the bundled samples
(``benchmarks/_images.py``).

Timings are noisy when other processes share the cores; say so when quoting.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _images import PAPER_IMAGES, find_images, missing  # noqa: E402

from smoe_gui.cli.experiment_cmd import SweepProgress  # noqa: E402
from smoe_gui.core.experiment import DEFAULT_BUDGETS, run_experiment  # noqa: E402
from smoe_gui.core.params import Params  # noqa: E402

DEFAULT_TIME_BUDGET_S = 60.0
LIMIT_S = 30 * 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--time-budget", type=float, default=3.0, help="seconds per fit in this measurement"
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep the sweep's output here")
    parser.add_argument(
        "--images",
        nargs="+",
        default=None,
        metavar="PATH",
        help="image files or folders (default: ../shared/images, else the bundled samples)",
    )
    args = parser.parse_args()

    images = find_images(PAPER_IMAGES, args.images)
    if missing(PAPER_IMAGES, images):
        print(
            f"paper images missing: {', '.join(missing(PAPER_IMAGES, images))}; "
            f"measuring {', '.join(p.stem for p in images)}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp) / "out"
        params = Params(time_budget=args.time_budget)
        start = time.perf_counter()
        summary = run_experiment(
            images, out, params=params, observer=SweepProgress(stream=sys.stderr, tty=False)
        )
        total = time.perf_counter() - start
        with (out / "results.csv").open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))

    ok = [r for r in rows if r["status"] == "ok"]
    n = len(rows)
    runs_s = sum(float(r["wall_s"]) for r in rows)
    fits_s = sum(float(r["fit_s"]) for r in ok)
    init_s = sum(float(r["init_s"]) for r in ok)
    overrun_s = sum(float(r["fit_s"]) - args.time_budget for r in ok)
    evaluation_s = runs_s - fits_s - init_s
    outside_s = total - runs_s  # planning, loading, report
    print(
        f"\nsweep of {n} runs ({len(ok)} ok) at {args.time_budget:g} s per fit: "
        f"{total:.1f} s wall-clock"
    )
    print(
        f"  fits {fits_s:.1f} s (overrun past the budget: {overrun_s:+.1f} s in all, "
        f"{overrun_s / max(1, len(ok)):+.2f} s per run)"
    )
    print(f"  initialisation {init_s:.1f} s ({init_s / max(1, len(ok)):.2f} s per run)")
    print(
        f"  evaluation and saving {evaluation_s:.1f} s ({evaluation_s / max(1, n):.2f} s per run)"
    )
    print(f"  planning, loading and report {outside_s:.1f} s")
    per_run_overhead = (init_s + evaluation_s + max(0.0, overrun_s)) / max(1, n)
    projected = n * (DEFAULT_TIME_BUDGET_S + per_run_overhead) + outside_s
    print(
        f"projected default run ({n} runs x {DEFAULT_TIME_BUDGET_S:g} s, budgets "
        f"{','.join(map(str, DEFAULT_BUDGETS))}): {projected / 60:.1f} min "
        f"(limit {LIMIT_S / 60:.0f} min) -> {'OK' if projected <= LIMIT_S else 'TOO SLOW'}"
    )
    if summary.failed:
        print("failed runs:", *summary.failed, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
