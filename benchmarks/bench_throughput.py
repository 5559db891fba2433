"""Training throughput of ``smoe fit`` against a plain ``fit()`` loop, side by side.

    python benchmarks/bench_throughput.py [--images DIR] [--image parrots] [--seconds 10]
        [--rounds 2]

Three ways to train the same image with the same parameters and the same
initial model, each for ``--seconds`` of training, in rounds (plain, run_fit,
CLI, plain, ...) so that a change in the machine's load hits all three alike:

* **plain** -- ``for event in fit(image, params, init=model): pass`` in this
  process (the default model snapshot every 0.2 s, as a user would write it);
* **run_fit + progress** -- :func:`smoe_gui.core.train.runs.run_fit` with the
  ``smoe fit`` progress bar (:class:`smoe_gui.cli.progress.FitProgress`, drawn
  by tqdm into a buffer as on a terminal) attached, in this process;
* **smoe fit** -- the command in its own process (``--quiet``); steps over the
  training seconds of its ``report.json`` (initialisation excluded).

Steps/s are global steps (tile and fine-tuning) over training seconds.  Prints
the median of each and the ratios to the plain loop; the issue's target is
``smoe fit`` >= 90 % of the plain loop.  Images: ``--images DIR``, else
``../shared/images`` beside the checkout, else the bundled samples.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def find_image(name: str, images: str | None) -> Path:
    """``name`` (without suffix) by the benchmarks' one rule (``_images.find_images``)."""
    from _images import find_images

    found = find_images([name], images)
    if not found:
        raise SystemExit(
            f"image {name!r} not found (--images, ../shared/images, resources/samples)"
        )
    return found[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", metavar="DIR", help="folder of test images")
    parser.add_argument("--image", default="parrots", help="image name without suffix")
    parser.add_argument("--seconds", type=float, default=10.0, help="training budget per run")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the three runs")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="parameter override (all runs)",
    )
    args = parser.parse_args(argv)

    import torch

    from smoe_gui.cli.progress import FitProgress
    from smoe_gui.core.io.image import load_image
    from smoe_gui.core.methods.pipeline import initialize
    from smoe_gui.core.params import Params
    from smoe_gui.core.train.runs import run_fit
    from smoe_gui.core.train.training import fit

    path = find_image(args.image, args.images)
    image = load_image(path)
    # tol_db 0: no early convergence stop, so every run trains its whole budget
    params = Params(time_budget=args.seconds, tol_db=0.0).with_assignments(args.set)
    init = initialize(image, params, "edge")
    h, w = image.shape
    print(
        f"image {path.name} {w}x{h}; {init.model.n_kernels} kernels; budget {args.seconds:g} s; "
        f"torch threads {torch.get_num_threads()}; {args.rounds} round(s)"
    )

    # compile numba's training kernels first, so no measurement pays for it
    for _ in fit(image[:160, :160].copy(), params.replace(time_budget=2.0, tile_size=64)):
        pass

    def plain() -> float:
        steps, seconds = 0, 1.0
        for event in fit(image, params, init=init.model, method="edge"):
            steps, seconds = event.step, event.elapsed_s
        return steps / seconds

    def with_progress() -> float:
        sink = io.StringIO()
        with FitProgress(params.time_budget, stream=sink, tty=True) as progress:
            result = run_fit(image, params, "edge", init=init.model, on_event=progress)
        return result.final.step / result.final.elapsed_s

    tmp = Path(tempfile.mkdtemp(prefix="smoe-throughput-"))
    params_file = tmp / "params.json"
    params_file.write_text(params.to_json())  # atomic-ok: a scratch file of the benchmark

    def cli(i: int) -> float:
        out = tmp / f"cli-{i}"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "smoe_gui.cli",
                "fit",
                str(path),
                "--params",
                str(params_file),
                "--quiet",
                "--out",
                str(out),
            ],
            check=True,
            cwd=ROOT,
        )
        report = json.loads((out / "report.json").read_text())
        times = report["phase_times_s"]
        return float(report["steps"]) / (float(times["total"]) - float(times["init"]))

    rates: dict[str, list[float]] = {
        "plain fit() loop": [],
        "run_fit + progress": [],
        "smoe fit": [],
    }
    t0 = time.perf_counter()
    for i in range(args.rounds):
        rates["plain fit() loop"].append(plain())
        rates["run_fit + progress"].append(with_progress())
        rates["smoe fit"].append(cli(i))
        print(
            f"round {i + 1}: "
            + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items())
            + " steps/s",
            flush=True,
        )
    base = statistics.median(rates["plain fit() loop"])
    print(f"median steps/s over {args.rounds} round(s) ({time.perf_counter() - t0:.0f} s):")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:20} {rate:7.1f} steps/s  {100 * rate / base:5.0f} % of the plain loop")
    ratio = statistics.median(rates["smoe fit"]) / base
    print(f"smoe fit / plain loop = {100 * ratio:.0f} % (target >= 90 %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
