"""Exactness and speed of the fast culled renderer, side by side with dense evaluation.

Run:  .venv/bin/python benchmarks/bench_render.py [--quick] [--images PATH ...]

Prints, in one run:

* exactness: max |image difference| against the dense float64 formula and max
  relative gradient error against autograd of the dense eager-PyTorch
  evaluation in float64, on random anisotropic models and on a "trained-like"
  model (an edge initialisation with random perturbations);
* speed: one full-image training step (forward + backward) with ~2,000 kernels
  on 512x512, the fast path against dense eager PyTorch (every kernel at every
  pixel, chunked over rows to fit in memory, float32) measured in the same run;
  rendering (forward only) likewise; kernel-pixel pairs per second (pairs the
  culled lists evaluate);
* ``initialize()`` on the 768x512 Kodak parrots sample (max_pts = 500) and
  its expert stage.

Images (peppers, parrots): ``--images`` (files or folders), else
``../shared/images`` next to the checkout, else the bundled samples
(``benchmarks/_images.py``); without peppers the speed model is synthetic.
Timings are wall-clock medians on whatever else the machine is running.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

# first: importing smoe_gui sets OMP_WAIT_POLICY before torch starts OpenMP
import smoe_gui  # noqa: E402,F401

# isort: split
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _images import find_images  # noqa: E402

from smoe_gui.core import Params, initialize, load_image  # noqa: E402
from smoe_gui.core.model import SmoeModel, dense_render  # noqa: E402
from smoe_gui.core.rendering.culled import SmoeRenderer, dense_image_torch, render  # noqa: E402

#: The images of this run (set by ``main`` from ``--images``); peppers may be missing.
PEPPERS: Path | None = None
PARROTS: Path = ROOT / "resources" / "samples" / "parrots.png"


def median_time(
    fn: Callable[[], object], repeat: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Median of ``repeat`` runs of ``fn`` by ``clock`` (wall; ``time.process_time``:
    the CPU time of all the process's threads, less sensitive to other jobs)."""
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


# -- models ---------------------------------------------------------------------------


def random_model(seed: int, k: int = 150, h: int = 96, w: int = 128) -> SmoeModel:
    rng = np.random.default_rng(seed)
    mu = rng.uniform([-8, -8], [w + 8, h + 8], (k, 2))
    return SmoeModel(mu, rng.normal(0, 0.3, (k, 2, 2)), rng.uniform(0, 1, k),
                     rng.normal(0, 1.0, k), h, w)


def synthetic_model(h: int, w: int, spacing: float, seed: int) -> SmoeModel:
    """Kernels spaced ~``spacing`` px, anisotropic, 1-σ widths ~ spacing/2."""
    rng = np.random.default_rng(seed)
    g = np.stack(np.meshgrid(np.arange(spacing / 2, w, spacing),
                             np.arange(spacing / 2, h, spacing)), -1).reshape(-1, 2)
    k = len(g)
    mu = g + rng.normal(0, spacing / 5, g.shape)
    sig = rng.uniform(0.3, 0.7, (k, 2)) * spacing
    th = rng.uniform(0, np.pi, k)
    rot = np.stack(
        [np.stack([np.cos(th), -np.sin(th)], 1), np.stack([np.sin(th), np.cos(th)], 1)], 1
    )
    A = rot @ (np.eye(2)[None] / (np.sqrt(2) * sig[:, :, None]))
    return SmoeModel(mu, A, rng.uniform(0, 1, k), rng.normal(0, 0.3, k), h, w)


def edge_model(max_pts: int) -> tuple[SmoeModel, str]:
    if PEPPERS is not None:
        image = load_image(PEPPERS)
        init = initialize(image, Params(max_pts=max_pts))
        return init.model, f"edge init of peppers, max_pts={max_pts}"
    return synthetic_model(512, 512, 11.3, 0), "synthetic (peppers.png not found)"


def trained_like(model: SmoeModel, seed: int) -> SmoeModel:
    """Random perturbations of an initialisation: moved centres, anisotropic
    and rotated kernels, varied weights and experts."""
    rng = np.random.default_rng(seed)
    k = model.n_kernels
    shear = np.eye(2)[None] + rng.normal(0, 0.3, (k, 2, 2))
    return model.replace(
        mu=model.mu + rng.normal(0, 1.0, model.mu.shape),
        A=model.A @ shear,
        m=np.clip(model.m + rng.normal(0, 0.1, k), 0, 1),
        log_alpha=model.log_alpha + rng.normal(0, 0.7, k),
    )


def params_of(model: SmoeModel, dtype: torch.dtype) -> list[torch.Tensor]:
    return [
        torch.tensor(v, dtype=dtype, requires_grad=True)
        for v in (model.mu, model.A, model.m, model.log_alpha)
    ]


# -- exactness ---------------------------------------------------------------------------


def dense_window_grads(
    model: SmoeModel, xs: np.ndarray, ys: np.ndarray, g: torch.Tensor, rows: int
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Image and gradients of ``Σ g·image`` by dense float64 autograd, in row chunks."""
    ts = params_of(model, torch.float64)
    grads = [torch.zeros_like(t) for t in ts]
    pieces = []
    xt = torch.tensor(xs)
    for start in range(0, len(ys), rows):
        yt = torch.tensor(ys[start : start + rows])
        img = dense_image_torch(*ts, xt, yt)
        for acc, gr in zip(
            grads, torch.autograd.grad((img * g[start : start + rows]).sum(), ts), strict=True
        ):
            acc += gr
        pieces.append(img.detach())
    return torch.cat(pieces, 0), grads


def exactness(
    model: SmoeModel, window: tuple[int, int, int, int], seed: int
) -> tuple[float, float, float, float, float]:
    """(max |Δimage| of render() over the whole image; max |Δimage| and max
    relative gradient error of SmoeRenderer over ``window = (x0, y0, w, h)``
    with float64 parameters, then with float32 ones (the training path, float32
    pixel arithmetic)), all against dense float64.  The parameters are rounded
    to float32 first, so that both runs evaluate the same model."""
    model = model.replace(**{n: getattr(model, n).astype(np.float32).astype(np.float64)
                             for n in ("mu", "A", "m", "log_alpha")})
    full = float(np.max(np.abs(render(model) - dense_render(model))))
    x0, y0, w, h = window
    xs = np.arange(w, dtype=np.float64) + x0
    ys = np.arange(h, dtype=np.float64) + y0
    g = torch.randn(h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    ref, ref_grads = dense_window_grads(
        model, xs, ys, g, rows=max(1, 2_000_000 // (w * model.n_kernels))
    )
    out: list[float] = [full]
    for dtype in (torch.float64, torch.float32):
        ts = params_of(model, dtype)
        img = SmoeRenderer(h, w, x0=x0, y0=y0)(*ts)
        grads = torch.autograd.grad((img * g.to(dtype)).sum(), ts)
        out.append(float((img.detach().double() - ref).abs().max()))
        out.append(max(float((a.double() - b).abs().max() / b.abs().max())
                       for a, b in zip(grads, ref_grads, strict=True)))
    return out[0], out[1], out[2], out[3], out[4]


# -- speed -------------------------------------------------------------------------------


def dense_step(ts: list[torch.Tensor], target: torch.Tensor, rows: int) -> None:
    """One dense training step in eager PyTorch (forward + backward, row chunks)."""
    h, w = target.shape
    xs = torch.arange(w, dtype=torch.float32)
    for t in ts:
        t.grad = None
    for start in range(0, h, rows):
        ys = torch.arange(start, min(start + rows, h), dtype=torch.float32)
        img = dense_image_torch(*ts, xs, ys)
        loss = ((img - target[start : start + rows]) ** 2).sum() / (h * w)
        loss.backward()


def dense_forward(ts: list[torch.Tensor], h: int, w: int, rows: int) -> torch.Tensor:
    xs = torch.arange(w, dtype=torch.float32)
    with torch.no_grad():
        return torch.cat(
            [
                dense_image_torch(*ts, xs, torch.arange(s, min(s + rows, h), dtype=torch.float32))
                for s in range(0, h, rows)
            ],
            0,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument(
        "--images",
        nargs="+",
        default=None,
        metavar="PATH",
        help="image files or folders holding peppers and parrots "
        "(default: ../shared/images, else the bundled samples)",
    )
    args = parser.parse_args()
    global PEPPERS, PARROTS
    PEPPERS = next(iter(find_images(["peppers"], args.images)), None)
    PARROTS = next(iter(find_images(["parrots"], args.images)), PARROTS)
    repeat = 3 if args.quick else 7
    torch.manual_seed(0)
    print(
        f"threads: torch {torch.get_num_threads()}, numba {__import__('numba').get_num_threads()}"
    )

    # warm up the compiled kernels (compiled once per machine, then cached)
    warm = random_model(0, k=20, h=20, w=20)
    render(warm)
    ts = params_of(warm, torch.float32)
    SmoeRenderer(20, 20)(*ts).sum().backward()

    print("\n== exactness (targets: image <= 1e-5, gradients <= 1e-4 relative) ==")
    print("   against dense float64; f64 / f32: the renderer with float64 / float32 parameters")
    print(f"{'model':48s} {'K':>5s} {'render |Δ|':>11s} {'f64 |Δ|':>9s} {'f64 grad':>9s} "
          f"{'f32 |Δ|':>9s} {'f32 grad':>9s}")
    cases = [(random_model(seed), "random anisotropic 128x96 #" + str(seed), (-3, 5, 96, 80), seed)
            for seed in range(3)]
    base, label = edge_model(1000)
    cases += [(trained_like(base, seed), "trained-like (" + label + ")", (200, 180, 128, 128), seed)
             for seed in range(2)]
    for model, name, window, seed in cases:
        full, win, rel, win32, rel32 = exactness(model, window, seed)
        print(
            f"{name:48s} {model.n_kernels:5d} "
            f"{full:11.2e} {win:9.2e} {rel:9.2e} {win32:9.2e} {rel32:9.2e}"
        )

    print("\n== speed: 512x512 (wall-clock medians; the machine is shared) ==")
    models = [(base, label), (trained_like(base, 7), "trained-like (same K, dense time reused)")]
    if PEPPERS is None:
        models = models[:1]
    rows = 16
    print(
        f"{'model':44s} {'K':>5s} {'pairs/px':>8s} {'fast step':>10s} {'dense step':>11s} "
        f"{'speed-up':>8s} {'fast fwd':>9s} {'dense fwd':>10s} {'speed-up':>8s} {'Mpairs/s':>9s}"
    )
    t_dense = t_dense_fwd = 0.0
    for model, name in models:
        h, w = model.height, model.width
        target = torch.rand(h, w)
        ts = params_of(model, torch.float32)
        renderer = SmoeRenderer(h, w)
        opt = torch.optim.Adam(ts, lr=1e-3)

        def fast_step(
            r: SmoeRenderer = renderer,
            p: list[torch.Tensor] = ts,
            o: torch.optim.Optimizer = opt,
            tg: torch.Tensor = target,
        ) -> None:
            o.zero_grad()
            loss = ((r(*p) - tg) ** 2).mean()
            loss.backward()
            o.step()

        fast_step()
        # the fast step is cheap: more repeats for steadier medians
        t_fast = median_time(fast_step, 5 * repeat)
        cpu_fast = median_time(fast_step, 5 * repeat, clock=time.process_time)
        pairs = renderer.stats["pairs"]
        t_render = median_time(lambda m=model: render(m), repeat)
        if t_dense == 0.0:
            # the dense cost depends on K and the image size only, not on the values
            dense_ts = params_of(model, torch.float32)
            t_dense = median_time(lambda d=dense_ts, tg=target: dense_step(d, tg, rows), 1)
            t_dense_fwd = median_time(
                lambda d=dense_ts, hh=h, ww=w: dense_forward(d, hh, ww, rows), 1
            )
        print(
            f"{name[:44]:44s} {model.n_kernels:5d} {pairs / (h * w):8.1f} {t_fast * 1e3:8.1f}ms "
            f"{t_dense:9.2f} s {t_dense / t_fast:7.0f}x {t_render * 1e3:7.1f}ms "
            f"{t_dense_fwd:8.2f} s "
            f"{t_dense_fwd / t_render:7.0f}x {pairs / t_fast / 1e6:9.0f}"
        )
        print(
            f"{'':44s} list rebuilds: {renderer.stats['rebuilds']} in "
            f"{renderer.stats['calls']} Adam steps (lr 1e-3), "
            f"{renderer.stats['lean_rebuilds']} without slack; "
            f"step CPU time (all threads) {cpu_fast * 1e3:.1f} ms"
        )

    print(f"\n== initialize() on {PARROTS.name}, max_pts = 500 ==")
    image = load_image(PARROTS)
    params = Params(max_pts=500)
    initialize(image, params)
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        init = initialize(image, params)
        runs.append((time.perf_counter() - start, init.timings_ms["experts"]))
    total = statistics.median(r[0] for r in runs) * 1e3
    experts = statistics.median(r[1] for r in runs)
    print(
        f"K = {init.model.n_kernels}: initialize() {total:.1f} ms median, "
        f"expert stage ({params.expert_iters} iterations + gate) {experts:.1f} ms median"
    )


if __name__ == "__main__":
    main()
