"""Benchmark of the edge-aligned initialisation.

Prints
1. ``initialize`` on parrots (768x512) with ``max_pts=500``: the median wall time
   of the whole call over ``--runs`` runs after a warm-up, and the median of each
   stage (edges, segments, scores, reduction, placement, experts).  Target:
   whole call <= 30 ms on the 2-core development machine.
2. The reduction of a noise image's ~100,000 raw segments to ``max_pts=500``:
   median of scores and of the reduction (exact EMST radius).  Target <= 1 s.

Usage: ``python benchmarks/bench_initialize.py [--runs 20] [--images PATH] [--grid]``
(the image: parrots from ``--images``, a file or folder, else ``../shared/images``
next to the checkout, else the bundled sample; ``benchmarks/_images.py``)

``OMP_WAIT_POLICY`` defaults to ``PASSIVE`` here: with the default (active)
policy, numba's OpenMP workers spin after each parallel expert pass and, on a
busy 2-core machine, slow the following single-threaded stages by an order of
magnitude.  Set it explicitly to measure the other behaviour.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before numba starts its threads

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _images import find_images  # noqa: E402

from smoe_gui.core import Params, initialize, load_image  # noqa: E402
from smoe_gui.core.methods.edge.edges import canny_edges  # noqa: E402
from smoe_gui.core.methods.edge.reduction import importance_scores, reduce_segments  # noqa: E402
from smoe_gui.core.methods.edge.segments import scan_segments  # noqa: E402
from smoe_gui.core.methods.pipeline import STAGES  # noqa: E402


def bench_initialize(path: Path, runs: int, method: str) -> None:
    image = load_image(path)
    params = Params(max_pts=500)
    initialize(image, params, method)  # warm-up (JIT, caches)
    totals: list[float] = []
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = initialize(image, params, method)
        totals.append((time.perf_counter() - start) * 1000.0)
        for s in STAGES:
            stages[s].append(result.timings_ms[s])
    assert result is not None
    h, w = image.shape
    print(f"initialize(method={method!r}) on {path.name} {w}x{h}, max_pts=500, "
          f"median of {runs} runs after warm-up")
    print(f"  segments {result.segments.shape[0]}, reduced {result.reduced.shape[0]}, "
          f"kernels {result.model.n_kernels} ({result.n_background} background), "
          f"PSNR {result.expert_psnr[0]:.2f} -> {result.expert_psnr[-1]:.2f} dB")
    for s in STAGES:
        print(f"  {s:<10} {statistics.median(stages[s]):8.2f} ms")
    non_expert = [
        sum(result_t)
        for result_t in zip(*(stages[s] for s in STAGES if s != "experts"), strict=True)
    ]
    print(f"  {'(no experts)':<10} {statistics.median(non_expert):8.2f} ms")
    print(f"  {'TOTAL':<10} {statistics.median(totals):8.2f} ms   (target <= 30 ms)")


def bench_noise_reduction(runs: int) -> None:
    rng = np.random.default_rng(0)
    noise = rng.random((512, 768)).astype(np.float32)
    defaults = Params()
    edges = canny_edges(noise, defaults.canny_sigma, defaults.canny_low, defaults.canny_high)
    segments = scan_segments(edges)
    n = segments.shape[0]
    score_t: list[float] = []
    reduce_t: list[float] = []
    red = None
    for _ in range(runs):
        start = time.perf_counter()
        scores = importance_scores(segments, 0.1, 512, 768)
        mid = time.perf_counter()
        red = reduce_segments(segments, scores, 500, 0.2)
        end = time.perf_counter()
        score_t.append((mid - start) * 1000.0)
        reduce_t.append((end - mid) * 1000.0)
    assert red is not None
    print(
        f"noise image 768x512: {int(edges.sum())} edge pixels, {n} raw segments -> "
        f"{red.reduced.shape[0]} reduced (eps {red.eps:.3f} px), median of {runs} runs"
    )
    print(f"  scores     {statistics.median(score_t):8.1f} ms")
    print(f"  reduction  {statistics.median(reduce_t):8.1f} ms")
    total = statistics.median([a + b for a, b in zip(score_t, reduce_t, strict=True)])
    print(f"  TOTAL      {total:8.1f} ms   (target <= 1000 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--images",
        nargs="+",
        default=None,
        metavar="PATH",
        help="an image file, or a folder holding parrots (default: ../shared/images, "
        "else the bundled sample)",
    )
    parser.add_argument("--grid", action="store_true", help="also time the grid baseline")
    parser.add_argument("--noise-only", action="store_true", help="only the 100k-segment reduction")
    args = parser.parse_args()
    path = next(iter(find_images(["parrots"], args.images)), None)  # a file given comes first
    if path is None:
        parser.error(f"no image found in {' '.join(args.images)}")
    print(
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, load average "
        f"{', '.join(f'{v:.2f}' for v in os.getloadavg())} (figures are noisy on a shared machine)"
    )
    if not args.noise_only:
        bench_initialize(path, args.runs, "edge")
        if args.grid:
            bench_initialize(path, args.runs, "grid")
    bench_noise_reduction(max(3, args.runs // 4))


if __name__ == "__main__":
    main()
