"""Resume after SIGKILL mid-sweep: no finished trial run again, none lost.

    python benchmarks/bench_tune_resume.py [--images DIR] [--image parrots] [--trials 6]
        [--kill-after 2] [--rounds 3] [--budget 1] [--max-size 128]

Each round starts ``smoe tune IMAGE --sampler grid --param delta_mu=1:6:TRIALS``
(small settings: ``--max-size``, tiles of 32, ``--budget`` seconds per trial)
in its own process, SIGKILLs it as soon as ``trials.csv`` shows ``--kill-after``
complete trials and a random delay (0 to 1.5 budgets, so the kill lands in the
next trial's fit, its evaluation, its storage or the one after), then runs the same
command again to its end and compares the two tables:

* **lost**: a trial complete before the kill that is not complete, with the
  same values and objectives, after the resume;
* **run again**: grid points with more than one complete trial, and the
  resumed run's ``ran`` count beyond the trials that were not finished;
* **missing**: grid points without a complete trial at the end.

The issue's target is 0 of each in every round.  The kill lands at a random
moment of the running trial (its fit, its evaluation or its storage), which is
why there are several rounds.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _argv(image: Path, out: Path, trials: int, budget: float, max_size: int) -> list[str]:
    return [
        sys.executable, "-m", "smoe_gui.cli", "tune", str(image),
        "--param", f"delta_mu=1:6:{trials}", "--sampler", "grid", "--max-size", str(max_size),
        "--set", "tile_size=32", "--set", "tile_steps=3", "--set", "max_pts=40",
        "--time-budget", f"{budget:g}", "--out", str(out),
    ]


def _rows(out: Path) -> list[dict[str, str]]:
    path = out / "trials.csv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def one_round(image: Path, out: Path, trials: int, kill_after: int, budget: float,
              max_size: int, env: dict[str, str], delay_s: float) -> dict[str, object]:
    """Kill a sweep ``delay_s`` after ``kill_after`` complete trials, resume it; what was
    lost or redone."""
    argv = _argv(image, out, trials, budget, max_size)
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if sum(r["state"] == "complete" for r in _rows(out)) >= kill_after:
                time.sleep(delay_s)  # into the next trial: its fit, evaluation or storage
                break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    before = {r["trial"]: r for r in _rows(out) if r["state"] == "complete"}
    started = time.perf_counter()
    resumed = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, check=False)
    resume_s = time.perf_counter() - started
    if resumed.returncode != 0:
        raise SystemExit(f"the resumed run exited with {resumed.returncode}:\n{resumed.stderr}")
    after = _rows(out)
    by_number = {r["trial"]: r for r in after}
    lost = sum(by_number.get(n) != row for n, row in before.items())
    points: dict[str, int] = {}
    for r in after:
        if r["state"] == "complete":
            points[r["delta_mu"]] = points.get(r["delta_mu"], 0) + 1
    twice = sum(count - 1 for count in points.values() if count > 1)
    ran = re.search(r"(\d+) of (\d+) trial\(s\) to run", resumed.stderr)
    to_run = int(ran.group(1)) if ran else -1
    return {
        "complete_at_kill": len(before), "lost": lost, "twice": twice,
        "missing": trials - len(points), "to_run": to_run,
        "redone": to_run - (trials - len(before)) if to_run >= 0 else -1,
        "stale": sum(r["state"] == "stale" for r in after), "resume_s": resume_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", default=None, help="folder or file of the image")
    parser.add_argument("--image", default="parrots", help="image name (default parrots)")
    parser.add_argument("--trials", type=int, default=6, help="grid points (default 6)")
    parser.add_argument("--kill-after", type=int, default=2,
                        help="complete trials before the SIGKILL (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="kills and resumes (default 3)")
    parser.add_argument("--budget", type=float, default=1.0,
                        help="training seconds per trial (default 1)")
    parser.add_argument("--max-size", type=int, default=128,
                        help="downscale the image to this longer side (default 128)")
    args = parser.parse_args(argv)
    if not 1 <= args.kill_after < args.trials:
        parser.error("--kill-after must be at least 1 and below --trials")
    from bench_tune import find_image

    image = find_image(args.image, args.images)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("MPLBACKEND", "Agg")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    bad = 0
    with tempfile.TemporaryDirectory(prefix="bench-tune-resume-") as tmp:
        for k in range(args.rounds):
            delay = random.Random(k).uniform(0.0, 1.5 * args.budget)
            got = one_round(image, Path(tmp) / f"round-{k}", args.trials, args.kill_after,
                            args.budget, args.max_size, env, delay)
            wrong = int(got["lost"]) + int(got["twice"]) + int(got["missing"]) \
                + max(0, int(got["redone"])) + (int(got["redone"]) < 0)
            bad += wrong
            print(f"round {k + 1}: SIGKILL {delay:.2f} s after {args.kill_after} trials were "
                  f"complete, {got['complete_at_kill']} of {args.trials} "
                  f"trials complete; the resumed run ran {got['to_run']} "
                  f"({got['stale']} left running marked stale) in {got['resume_s']:.1f} s: "
                  f"lost {got['lost']}, run again {max(0, int(got['redone'])) + int(got['twice'])}"
                  f", missing {got['missing']}")
    print(f"resume after SIGKILL on {image.name} ({args.rounds} rounds, load {load:.1f}): "
          f"{'no finished trial lost or run again' if bad == 0 else f'{bad} WRONG'} "
          "(target: 0 lost, 0 run again)")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
