"""Benchmark of the four initialisations and of the kernel budget.

Prints
1. For each method (edge, grid, S-SMoE, AS-SMoE) at ``--kernels`` (default
   2,000) kernels on parrots (768x512): the median wall time of ``initialize``
   over ``--runs`` runs after a warm-up, every core in use, with its stages.
   For edge and grid the planner (``budget.plan_kernels``) first chooses
   ``max_pts`` and the background spacing; its search time is printed apart,
   since it is not part of the method: first the first method's (edge) search
   at ``--kernels`` kernels, median of ``--runs`` searches after a warm-up
   (target: at most 0.3 s at 2,000 kernels; the search counts kernels by
   placement only, without the expert stage), then each method's first search.
2. Kernel budgets on the paper's images (peppers, barbara, parrots, flowers):
   the kernel count of each method at N = 500, 1000, 2000, 4000 and whether it
   lies between 0.95·N and N.

Images: ``--images DIR``, else ``../shared/images`` relative to the checkout,
else the bundled samples (``benchmarks/_images.py``).

Usage: ``python benchmarks/bench_methods.py [--runs 3] [--kernels 2000]
[--budgets 500,1000,2000,4000] [--methods edge,grid,s-smoe,as-smoe]
[--images DIR] [--skip-timing] [--skip-budgets]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before numba starts its threads

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _images import PAPER_IMAGES, find_images, missing  # noqa: E402

from smoe_gui.core import (  # noqa: E402
    Params,
    initialize,
    load_image,
    registry,  # noqa: E402
)
from smoe_gui.core.params import METHODS  # noqa: E402
from smoe_gui.core.threads import default_threads, set_threads  # noqa: E402


def method_params(image: NDArray[np.float32], method: str, n_kernels: int) -> tuple[Params, float]:
    """Parameters for ``n_kernels`` kernels and the planner's search time (s)."""
    if not getattr(registry.get(method), "plans_budget", False):  # takes n_kernels as given
        return Params(n_kernels=n_kernels), 0.0
    try:
        from smoe_gui.core.methods.budget import plan_kernels
    except ImportError:
        raise SystemExit(
            "the kernel-budget planner (smoe_gui/core/methods/budget.py) is missing"
        ) from None
    start = time.perf_counter()
    params = plan_kernels(image, Params(), method, n_kernels)
    return params, time.perf_counter() - start


def bench_planner(image: NDArray[np.float32], method: str, n_kernels: int, runs: int) -> None:
    """The planner's search time for ``method`` (median after a warm-up)."""
    method_params(image, method, n_kernels)  # warm-up (JIT, caches)
    times = [method_params(image, method, n_kernels)[1] for _ in range(max(1, runs))]
    params, _ = method_params(image, method, n_kernels)
    count = initialize(image, params.replace(expert_iters=0), method).n_kernels
    print(
        f"   planner search ({method}, {n_kernels} kernels): {statistics.median(times):.3f} s "
        f"median of {len(times)} after a warm-up ({count} kernels planned; target <= 0.3 s)",
        flush=True,
    )


def bench_timing(path: Path, methods: list[str], n_kernels: int, runs: int) -> None:
    image = load_image(path)
    h, w = image.shape
    print(
        f"1. initialisation time at {n_kernels} kernels, {path.name} {w}x{h}, "
        f"{default_threads()} threads, median of {runs} run(s) after a warm-up"
    )
    planned = [m for m in methods if getattr(registry.get(m), "plans_budget", False)]
    if planned:
        bench_planner(image, planned[0], n_kernels, runs)
    for method in methods:
        params, plan_s = method_params(image, method, n_kernels)
        initialize(image, params, method)  # warm-up (JIT, caches)
        totals: list[float] = []
        result = None
        for _ in range(runs):
            start = time.perf_counter()
            result = initialize(image, params, method)
            totals.append(time.perf_counter() - start)
        assert result is not None
        stages = ", ".join(f"{k} {v:.0f}" for k, v in result.timings_ms.items())
        planner = f"; planner search {plan_s:.2f} s" if plan_s else ""
        print(
            f"   {method:8s} {statistics.median(totals):8.2f} s  {result.n_kernels:5d} kernels  "
            f"PSNR {result.expert_psnr[-1]:.2f} dB  (ms: {stages}){planner}",
            flush=True,
        )


def bench_budgets(paths: list[Path], methods: list[str], budgets: list[int]) -> None:
    print(
        f"2. kernel counts for budgets {', '.join(map(str, budgets))} (met: 0.95*N <= count <= N)"
    )
    met_all = True
    for path in paths:
        image = load_image(path)
        for method in methods:
            cells = []
            for n in budgets:
                params, _ = method_params(image, method, n)
                count = initialize(image, params, method).n_kernels
                met = 0.95 * n <= count <= n
                met_all &= met
                cells.append(f"{n}: {count} {'met' if met else 'MISSED'}")
            print(f"   {path.stem:8s} {method:8s} " + "; ".join(cells), flush=True)
    print(f"   all budgets met: {'yes' if met_all else 'no'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kernels", type=int, default=2000)
    parser.add_argument("--budgets", default="500,1000,2000,4000")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--images", default=None, nargs="+", help="the paper's images: files or folders"
    )
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-budgets", action="store_true")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            raise SystemExit(f"unknown method {m!r}; known: {', '.join(METHODS)}")
    set_threads(None)  # every core
    if not args.skip_timing:
        parrots = find_images(["parrots"], args.images)
        if not parrots:
            raise SystemExit("parrots.png not found (give --images)")
        bench_timing(parrots[0], methods, args.kernels, args.runs)
    if not args.skip_budgets:
        budgets = [int(v) for v in args.budgets.split(",")]
        paths = find_images(list(PAPER_IMAGES), args.images)
        absent = missing(list(PAPER_IMAGES), paths)
        if absent:
            print(f"   (not found: {', '.join(absent)}; give --images)")
        bench_budgets(paths, methods, budgets)


if __name__ == "__main__":
    main()
