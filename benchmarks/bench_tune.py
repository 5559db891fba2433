"""The overhead of a tuning sweep: everything but training, as a share of training.

    python benchmarks/bench_tune.py [--images DIR] [--image parrots] [--trials 8]
        [--budget 10] [--param delta_mu=2:6] [--workers 1] [--keep DIR]

Runs ``smoe tune IMAGE --sampler grid --param NAME=LOW:HIGH:TRIALS
--time-budget BUDGET`` in its own process (a grid of ``--trials`` points over
one parameter, so the study holds exactly that many trials, none pruned) and
times it from the moment the process is started to its exit, with a clock
reading at each line it prints (``trial N started``, ``trial N complete``).
The training seconds are the trials' own (``train_s`` of ``trials.csv``: the
fits' training clocks); everything else is overhead:

* **start-up**: from the start of the process to the first trial's start (the
  interpreter, the imports, the image, opening the SQLite study);
* **in the trials, besides training**: each trial's span from its start to its
  completion minus its training seconds: initialising the kernels (of which
  ``seconds - train_s`` of ``trials.csv``), the first trial's imports of the
  training code (torch), rendering the final model exactly, PSNR and SSIM,
  saving its model and telling the study, rewriting ``trials.csv``;
* **between trials**: asking the study for the next one;
* **the end**: from the last trial's completion to the exit: the outputs (the
  figures, the best parameters; to the ``best:`` line) and the interpreter's exit.

Prints each part in seconds and as a percentage of the training seconds; the
issue's target is a total <= 15 % on 8 trials of 10 s on parrots.  Images:
``--images DIR``, else ``../shared/images`` beside the checkout, else the
bundled samples.  Timings on a loaded machine mean more overhead: say the load.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

TARGET_PCT = 15.0


def find_image(name: str, images: str | None) -> Path:
    """``name`` (without suffix) by the benchmarks' one rule (``_images.find_images``)."""
    from _images import find_images

    found = find_images([name], images)
    if not found:
        raise SystemExit(
            f"image {name!r} not found (--images, ../shared/images, resources/samples)"
        )
    return found[0]


def run_sweep(image: Path, out: Path, trials: int, budget: float, param: str,
              workers: int) -> tuple[float, list[tuple[float, str]], list[dict[str, str]]]:
    """Run the sweep; returns (wall seconds, (seconds since start, line) of each
    line printed, the rows of ``trials.csv``)."""
    name, _, span = param.partition("=")
    low, _, high = span.partition(":")
    argv = [
        sys.executable, "-m", "smoe_gui.cli", "tune", str(image),
        "--param", f"{name}={low}:{high}:{trials}", "--sampler", "grid",
        "--time-budget", f"{budget:g}", "--workers", str(workers), "--out", str(out),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("MPLBACKEND", "Agg")
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append((time.perf_counter() - started, line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    status = proc.wait()
    wall = time.perf_counter() - started
    reader.join(5.0)
    if status != 0:
        shown = "\n".join(text for _, text in lines[-20:])
        raise SystemExit(f"smoe tune exited with status {status}:\n{shown}")
    with open(out / "trials.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return wall, lines, rows


_EVENT = re.compile(r"trial (\d+) (started|complete)")


def spans(lines: list[tuple[float, str]]) -> dict[int, dict[str, float]]:
    """``trial -> {"started": t, "complete": t}`` from the printed lines."""
    out: dict[int, dict[str, float]] = {}
    for t, text in lines:
        match = _EVENT.search(text)
        if match:
            out.setdefault(int(match.group(1)), {})[match.group(2)] = t
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", default=None, help="folder or file of the image")
    parser.add_argument("--image", default="parrots", help="image name (default parrots)")
    parser.add_argument("--trials", type=int, default=8, help="trials of the sweep (default 8)")
    parser.add_argument("--budget", type=float, default=10.0,
                        help="training seconds per trial (default 10)")
    parser.add_argument("--param", default="delta_mu=2:6",
                        help="the swept parameter and its range (default delta_mu=2:6)")
    parser.add_argument("--workers", type=int, default=1,
                        help="trials at a time (default 1: in the command's process)")
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="write the study here and keep it (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.trials < 2:
        parser.error("--trials must be at least 2 (a grid has two points or more)")
    if not args.budget > 0:
        parser.error("--budget must be a positive number of seconds")
    image = find_image(args.image, args.images)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        out = Path(args.keep) if args.keep else Path(tmp) / "study"
        wall, lines, rows = run_sweep(image, out, args.trials, args.budget, args.param,
                                      args.workers)
    end_load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    done = [r for r in rows if r["state"] == "complete"]
    train = sum(float(r["train_s"]) for r in done)
    if not done or train <= 0:
        raise SystemExit(f"no trial completed: {rows}")
    init = sum(float(r["seconds"]) - float(r["train_s"]) for r in done)
    times = spans(lines)
    order = sorted(times, key=lambda n: times[n].get("started", math.inf))
    if not order or any({"started", "complete"} - set(times[n]) for n in order):
        raise SystemExit("the sweep's lines do not show every trial's start and end")
    start_up = times[order[0]]["started"]
    in_trials = sum(times[n]["complete"] - times[n]["started"] for n in order) - train
    between = sum(times[b]["started"] - times[a]["complete"]
                  for a, b in zip(order[:-1], order[1:], strict=True))
    end = wall - times[order[-1]]["complete"]
    overhead = wall - train
    pct = 100.0 * overhead / train
    cores = os.cpu_count() or 1

    def line(label: str, seconds: float) -> None:
        print(f"  {label:<38} {seconds:8.2f} s  {100.0 * seconds / train:6.1f} %")

    print(f"smoe tune on {image.name}: {len(done)}/{len(rows)} trials complete, "
          f"{args.budget:g} s of training each, {args.workers} worker(s), {cores} cores, "
          f"load {load:.1f} -> {end_load:.1f}")
    print(f"  {'wall (process start to exit)':<38} {wall:8.2f} s")
    print(f"  {'training (sum of train_s)':<38} {train:8.2f} s  {100.0:6.1f} %")
    line("start-up (to the first trial)", start_up)
    line("in the trials, besides training", in_trials)
    line("  of which initialisation", init)
    by_number = {int(r["trial"]): float(r["train_s"]) for r in done}
    extra = [times[n]["complete"] - times[n]["started"] - by_number[n]
             for n in order if n in by_number]
    if len(extra) > 1:
        line("  the first trial (imports torch)", extra[0])
        line(f"  the others, {len(extra) - 1}, in all", sum(extra[1:]))
    line("between trials (asking the study)", between)
    line("the end (outputs, exit)", end)
    best_at = [t for t, text in lines if "smoe tune: best:" in text]
    if best_at:
        line("  of which the outputs (figures, ...)", best_at[-1] - times[order[-1]]["complete"])
        line("  of which the interpreter's exit", wall - best_at[-1])
    ok = "met" if pct <= TARGET_PCT else "MISSED"
    print(f"overhead {overhead:.2f} s = {pct:.1f} % of the training time "
          f"(target <= {TARGET_PCT:g} %: {ok})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
