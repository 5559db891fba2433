"""Quality in seconds: `smoe fit` on the paper's test images, edge vs grid.

For each image, the kernel-budget planner (:func:`smoe_gui.core.methods.budget.plan_kernels`)
chooses ``max_pts`` and the background spacing for between 95 % and 100 % of
``--max-kernels`` kernels, the grid baseline gets exactly as many kernels, and both are trained
by the code path of ``smoe fit`` (:func:`smoe_gui.core.train.runs.run_fit` and
:func:`~smoe_gui.core.train.runs.fit_report`) for each time budget.  The PSNR and
SSIM are of the final model rendered with the exact formula.  Then the peak
resident memory of fitting a 768x512 image with 4,000 kernels is measured in a
child process.

Usage::

    .venv/bin/python benchmarks/bench_fit.py                 # everything (~10 min)
    .venv/bin/python benchmarks/bench_fit.py --names peppers --budgets 15
    .venv/bin/python benchmarks/bench_fit.py --images ~/pictures/kodak --names kodim01
    .venv/bin/python benchmarks/bench_fit.py --no-memory --methods edge
    .venv/bin/python benchmarks/bench_fit.py --tiles --budgets 25   # do the tiles compose?

``--tiles`` prints, per image, the tile phase's reading before issue 22
("before": a 32-px loss band at the default 128-px tiles, frozen context the
kernels whose centres lie within 64 px of the tile, no width limit) beside the
reading in use ("after": the same band, the whole current model culled to what
reaches the loss window as context, gates at most half a band wide): the
whole-image PSNR at the start and at the end of the tile phase, the tiles' own
reconstructions stitched, the merge loss (that minus the merged model's PSNR,
target <= 0.3 dB), the final PSNR and the tile phase's seconds.  The verdict
asks for a merge loss <= 0.3 dB and an end of tiles above the start.

Images: ``--images`` (files or folders), else ``../shared/images`` next to the
checkout, else the bundled samples (``benchmarks/_images.py``).  Timings depend
on the load of the machine; the figures are wall-clock.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
from _images import PAPER_IMAGES, find_images, missing  # noqa: E402

from smoe_gui.core.io.image import load_image  # noqa: E402
from smoe_gui.core.methods.budget import plan_kernels  # noqa: E402
from smoe_gui.core.methods.pipeline import Initialization, initialize  # noqa: E402
from smoe_gui.core.params import METHODS, Params  # noqa: E402
from smoe_gui.core.train.runs import fit_report, run_fit  # noqa: E402

#: First round: 30 dB in 15 s, 33.5 dB in 60 s; issue 22 raised the 60 s one to 35 dB.
TARGETS = {("peppers", 15.0): 30.0, ("peppers", 60.0): 35.0}
MEMORY_TARGET_MB = 1536.0


def memory_child(max_kernels: int, budget: float) -> None:
    """Fit a 768x512 image with ``max_kernels`` kernels; print the peak RSS in MB."""
    image = load_image(find_images(["parrots"])[0])
    if image.shape != (512, 768):
        import cv2
        import numpy as np

        image = np.ascontiguousarray(cv2.resize(image, (768, 512), interpolation=cv2.INTER_AREA))
    params = plan_kernels(image, Params(background_spacing=10.0, time_budget=budget), "edge",
                          max_kernels)
    init = initialize(image, params, "edge")
    run = run_fit(image, params, "edge", init=init.model)
    fit_report(run, image, params, "edge")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{image.shape[1]}x{image.shape[0]} {init.model.n_kernels} {run.final.step} "
          f"{peak_kb / 1024.0:.1f}")


def before_context(band: int) -> Callable[..., np.ndarray]:
    """The context of the reading before issue 22, for loss bands of ``band`` px: the
    other kernels whose centres lie within ``2·band`` of the tile, i.e. within ``band``
    of its loss window, whatever their reach (same signature as ``tiles.tile_context``)."""

    def context(mu: np.ndarray, A: np.ndarray, log_alpha: np.ndarray, others: np.ndarray,
                own: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        y0, y1, x0, x1 = box
        near = (others & (mu[:, 0] >= x0 - band - 0.5) & (mu[:, 0] < x1 + band - 0.5)
                & (mu[:, 1] >= y0 - band - 0.5) & (mu[:, 1] < y1 + band - 0.5))
        return np.flatnonzero(near)

    return context


def tile_phase_row(image: np.ndarray, params: Params, init: Initialization) -> dict[str, float]:
    """One fit's tile-phase figures: start, end of tiles, stitched tiles, merge loss, final."""
    import math

    from smoe_gui.core.train.training import fit

    row: dict[str, float] = {}
    for event in fit(image, params, init=init, snapshot_interval_s=math.inf):
        if "start" not in row and event.image_psnr is not None:
            row["start"] = event.image_psnr
        if event.phase == "merge" and not event.final:
            row["tiles_end"] = event.psnr
            row["stitched"] = event.tiles_psnr if event.tiles_psnr is not None else math.nan
            row["merge_loss"] = row["stitched"] - event.psnr
            row["tiles_s"] = event.elapsed_s
        if event.final:
            row["final"] = event.psnr
    return row


def tiles_table(paths: list[Path], base: Params, budgets: list[float], max_kernels: int) -> None:
    """Print the tile-phase figures of both readings side by side (see the module doc)."""
    from smoe_gui.core.train import phases, tiles

    band = tiles.loss_band(base.tile_size)
    readings = {"before": (before_context(band), lambda tile_size: None),
                "after": (tiles.tile_context, tiles.max_tile_sigma)}
    print(f"{'image':8} {'budget':>6} {'reading':7} {'start':>6} {'tiles':>6} {'stitch':>6} "
          f"{'merge':>6} {'final':>6} {'t tiles':>7}  verdict")
    for path in paths:
        image = load_image(path)
        p0 = plan_kernels(image, base, "edge", max_kernels)
        init = initialize(image, p0, "edge")
        for budget in budgets:
            for name, (context, sigma) in readings.items():
                phases.tile_context, phases.max_tile_sigma = context, sigma  # type: ignore
                try:
                    r = tile_phase_row(image, p0.replace(time_budget=budget), init)
                finally:
                    phases.tile_context = tiles.tile_context
                    phases.max_tile_sigma = tiles.max_tile_sigma
                ok = r["tiles_end"] > r["start"] and r["merge_loss"] <= 0.3
                print(f"{path.stem:8} {budget:6g} {name:7} {r['start']:6.2f} {r['tiles_end']:6.2f} "
                      f"{r['stitched']:6.2f} {r['merge_loss']:6.2f} {r['final']:6.2f} "
                      f"{r['tiles_s']:7.1f}  {'ok' if ok else 'MISS'}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", nargs="+", default=None, metavar="PATH",
                        help="image files or folders (default: ../shared/images, "
                        "else the bundled samples)")
    parser.add_argument("--names", nargs="+", default=None, metavar="STEM",
                        help="image names to run (default: the paper's four, or every image given)")
    parser.add_argument("--budgets", nargs="+", type=float, default=[15.0, 60.0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--max-kernels", type=int, default=2000)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="parameter override for every run")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    parser.add_argument("--memory-kernels", type=int, default=4000)
    parser.add_argument("--memory-budget", type=float, default=20.0)
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tiles", action="store_true",
                        help="tile phase: merge loss and whole-image PSNR, before/after readings")
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_kernels, args.memory_budget)
        return 0

    import torch

    print(f"torch threads {torch.get_num_threads()}; budgets {args.budgets} s; "
          f"at most {args.max_kernels} kernels")
    names = args.names if args.names is not None else (None if args.images else list(PAPER_IMAGES))
    paths = find_images(names, args.images)
    if names and missing(names, paths):
        print(f"images not found (skipped): {', '.join(missing(names, paths))}")
    if not paths:
        print("no images found")
        return 1
    base = Params().with_assignments(args.set)
    if args.tiles:
        tiles_table(paths, base, args.budgets, args.max_kernels)
        return 0
    rows = []
    header = (f"{'image':8} {'size':>8} {'method':6} {'K':>5} {'budget':>6} {'PSNR':>7} "
              f"{'SSIM':>6} {'init':>5} {'steps':>6} {'K end':>5} {'target':>8}  stop")
    print(header)
    for path in paths:
        name = path.stem
        image = load_image(path)
        planned = {m: plan_kernels(image, base, m, args.max_kernels) for m in args.methods}
        inits: dict[str, Initialization] = {}
        init_time: dict[str, float] = {}
        for method in args.methods:
            t0 = time.perf_counter()
            inits[method] = initialize(image, planned[method], method)
            init_time[method] = time.perf_counter() - t0
        for budget in args.budgets:
            for method in args.methods:
                p = planned[method].replace(time_budget=budget)
                init = inits[method]
                run = run_fit(image, p, method, init=init.model)
                report = fit_report(run, image, p, method, str(path))
                target = TARGETS.get((name, budget))
                verdict = ""
                if target is not None and method == "edge":
                    ok = run.psnr_db >= target
                    verdict = f">={target:g} {'ok' if ok else 'MISS'}"
                init_s = init_time[method]
                rows.append((name, method, budget, run.psnr_db))
                print(f"{name:8} {image.shape[1]:>4}x{image.shape[0]:<3} {method:6} "
                      f"{init.model.n_kernels:5d} {budget:6g} {run.psnr_db:7.2f} "
                      f"{report['ssim']:6.4f} {init_s:5.2f} {report['steps']:6d} "
                      f"{report['n_kernels']:5d} {verdict:>8}  "
                      f"{(report['stop_reason'] or '').split(':')[0]}", flush=True)
    if set(args.methods) == set(METHODS):
        print("\nedge - grid (dB), equal kernels and time:")
        for budget in args.budgets:
            wins = 0
            parts = []
            for name in (p.stem for p in paths):
                e = next(r[3] for r in rows if r[0] == name and r[1] == "edge" and r[2] == budget)
                g = next(r[3] for r in rows if r[0] == name and r[1] == "grid" and r[2] == budget)
                wins += e > g
                parts.append(f"{name} {e - g:+.2f}")
            print(f"  {budget:g} s: " + ", ".join(parts) + f"  -> edge wins {wins}/{len(paths)}")

    if not args.no_memory:
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child",
             "--memory-kernels", str(args.memory_kernels),
             "--memory-budget", str(args.memory_budget)],
            capture_output=True, text=True, check=False,
        )
        if out.returncode != 0:
            print(f"\nmemory run failed:\n{out.stderr}")
            return 1
        size, k, steps, peak = out.stdout.split()[-4:]
        verdict = "ok" if float(peak) <= MEMORY_TARGET_MB else "MISS"
        print(f"\npeak RSS fitting {size} with {k} kernels ({steps} steps, "
              f"{args.memory_budget:g} s budget, {time.perf_counter() - t0:.0f} s wall): "
              f"{float(peak):.0f} MB (target <= {MEMORY_TARGET_MB:.0f} MB) {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
