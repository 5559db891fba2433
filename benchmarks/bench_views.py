"""Speed of what the kernel view and the Inspect tool compute and draw.

Run:  .venv/bin/python benchmarks/bench_views.py [--images DIR] [--repeat 7]

Prints (wall-clock medians; the machine may be shared):

* a kernel's weight map ``w_i`` (:func:`smoe_gui.core.rendering.territories.kernel_weight_map`)
  on peppers 512x512 with ~900 kernels (edge initialisation and a trained-like
  perturbation of it), over 25 kernels (target <= 100 ms; the dense window
  the Inspect tool evaluated before took 3-4 s in the window);
* the gate territories (:func:`smoe_gui.core.rendering.territories.gate_territories`) of
  a ~2,000-kernel model of parrots 768x512 at full resolution and at a view's
  resolution (target <= 30 ms), and the gate shares;
* the view 4 redraw: GUI-thread time per frame (new geometry handed to the
  view, then a synchronous repaint of the view) at ~2,000 kernels in each mode,
  offscreen (target <= 10 ms);
* the cost of the whole-image PSNR during the tile phase (``FitEvent.image_psnr``):
  a fit of parrots with ~2,000 kernels, the number of measurements per second
  of tile phase, the time of one measurement (render + MSE) and their share of
  the tile phase.

Images come from ``--images``, else ``../shared/images`` beside the checkout,
else the bundled samples (peppers then falls back to flowers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import smoe_gui  # noqa: E402,F401

# isort: split
import numpy as np  # noqa: E402
from _images import find_images  # noqa: E402

from smoe_gui.core import Params, initialize, load_image  # noqa: E402
from smoe_gui.core.methods.budget import plan_kernels  # noqa: E402
from smoe_gui.core.model import SmoeModel  # noqa: E402
from smoe_gui.core.rendering.territories import (  # noqa: E402
    gate_shares,
    gate_territories,
    kernel_weight_map,
)


def find_image(name: str, option: str | None) -> Path:
    """``name`` by the benchmarks' rule (:mod:`benchmarks._images`), else flowers."""
    found = find_images([Path(name).stem], option)
    return found[0] if found else ROOT / "resources" / "samples" / "flowers.png"


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def trained_like(model: SmoeModel, seed: int) -> SmoeModel:
    """Random perturbations of an initialisation (moved, sheared, reweighted)."""
    rng = np.random.default_rng(seed)
    k = model.n_kernels
    shear = np.eye(2)[None] + rng.normal(0, 0.3, (k, 2, 2))
    return model.replace(
        mu=model.mu + rng.normal(0, 1.0, model.mu.shape), A=model.A @ shear,
        m=np.clip(model.m + rng.normal(0, 0.1, k), 0, 1),
        log_alpha=model.log_alpha + rng.normal(0, 0.7, k),
    )


def model_near(image: np.ndarray, target: int) -> SmoeModel:
    """An edge initialisation of ``image`` with about ``target`` kernels
    (:func:`smoe_gui.core.methods.budget.plan_kernels`)."""
    params = plan_kernels(image, Params(expert_iters=0), "edge", target)
    return initialize(image, params).model


def bench_weight_map(images: str | None, repeat: int) -> None:
    path = find_image("peppers.png", images)
    image = load_image(path)
    base = model_near(image, 900)
    print(f"\n== kernel weight map: {path.name} {image.shape[1]}x{image.shape[0]} "
          f"(target <= 100 ms) ==")
    for label, model in (("edge init", base), ("trained-like", trained_like(base, 1))):
        kernel_weight_map(model, 0)
        ks = np.linspace(0, model.n_kernels - 1, 25).astype(int)
        times = [median_ms(lambda k=k, m=model: kernel_weight_map(m, int(k)), 1) for k in ks]
        print(
            f"{label:14s} K={model.n_kernels:5d}  weight map median "
            f"{statistics.median(times):6.1f} ms, max {max(times):6.1f} ms over {len(ks)} kernels"
        )
    del repeat


def bench_territories(images: str | None, repeat: int) -> SmoeModel:
    path = find_image("parrots.png", images)
    image = load_image(path)
    base = model_near(image, 2000)
    print(
        f"\n== gate territories: {path.name} {image.shape[1]}x{image.shape[0]} (target <= 30 ms) =="
    )
    for label, model in (("edge init", base), ("trained-like", trained_like(base, 2))):
        gate_territories(model)
        full = median_ms(lambda m=model: gate_territories(m), repeat)
        view = median_ms(lambda m=model: gate_territories(m, 400, 600), repeat)
        shares = median_ms(lambda m=model: gate_shares(m, 163, 245), max(3, repeat // 2))
        print(
            f"{label:14s} K={model.n_kernels:5d}  full {full:6.1f} ms, view 600x400 {view:6.1f} "
            f"ms, gate shares (245x163) {shares:6.1f} ms"
        )
    return trained_like(base, 2)


def bench_redraw(model: SmoeModel, repeat: int) -> None:
    from PySide6.QtWidgets import QApplication

    from smoe_gui.ui.control.geometry import KERNEL_MODES, kernel_geometry
    from smoe_gui.ui.theme import current_theme
    from smoe_gui.ui.views.stage_views import StageViews

    app = QApplication.instance() or QApplication([])
    views = StageViews(current_theme())
    views.resize(1200, 700)
    views.show()
    image = np.full((model.height, model.width), 0.5, dtype=np.float32)
    views.set_original(image)
    app.processEvents()
    view = views.views["kernels"]
    print(
        f"\n== view 4 redraw, {model.n_kernels} kernels, view {view.width()}x{view.height()} px "
        "(target <= 10 ms GUI-thread time per frame) =="
    )
    for mode in KERNEL_MODES:
        views.set_kernel_mode(mode)
        geos = [
            kernel_geometry(
                trained_like(model, s),
                None,
                shares=mode == "ellipses",
                territory_size=(300, 450) if mode == "territories" else None,
            )
            for s in range(3)
        ]
        times = []
        for i in range(repeat + 2):
            geo = geos[i % len(geos)]
            t0 = time.perf_counter()
            views.show_kernels(geo)
            view.viewport().repaint()
            times.append(time.perf_counter() - t0)
        print(
            f"{mode:12s} median {1e3 * statistics.median(times[2:]):6.1f} ms, "
            f"max {1e3 * max(times[2:]):6.1f} ms per frame"
        )
    views.close()


def bench_psnr_cost(images: str | None, seconds: float) -> None:
    from smoe_gui.core.rendering.culled import render
    from smoe_gui.core.train.training import fit

    path = find_image("parrots.png", images)
    image = load_image(path)
    params = plan_kernels(image, Params(time_budget=seconds), "edge", 2000)
    init = initialize(image, params)
    tiles: list[float] = []
    measured = 0
    for ev in fit(image, params, init=init, device="cpu", snapshot_interval_s=1e9):
        if ev.phase == "tiles":
            tiles.append(ev.elapsed_s)
            measured += ev.image_psnr is not None
    model = init.model
    render(model)
    cost = median_ms(lambda: float(np.mean((render(model) - image) ** 2)), 5)
    span = tiles[-1] if tiles else 0.0
    share = measured * cost / 1e3 / span if span else 0.0
    print(
        f"\n== whole-image PSNR during the tile phase: {path.name}, K={model.n_kernels}, "
        f"{seconds:g} s fit =="
    )
    print(
        f"{measured} measurements in {span:.1f} s of tiles ({measured / max(span, 1e-9):.1f}/s), "
        f"{cost:.1f} ms each: {100 * share:.1f} % of the tile phase"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", help="folder with peppers.png and parrots.png")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--sections",
        nargs="*",
        default=["weights", "territories", "redraw", "psnr"],
        help="which figures to print (default: all)",
    )
    parser.add_argument("--fit-seconds", type=float, default=20.0)
    args = parser.parse_args()
    import numba

    print(f"numba threads: {numba.get_num_threads()}")
    if "weights" in args.sections:
        bench_weight_map(args.images, args.repeat)
    if {"territories", "redraw"} & set(args.sections):
        model = bench_territories(args.images, args.repeat)
        if "redraw" in args.sections:
            bench_redraw(model, args.repeat)
    if "psnr" in args.sections:
        bench_psnr_cost(args.images, args.fit_seconds)


if __name__ == "__main__":
    main()
