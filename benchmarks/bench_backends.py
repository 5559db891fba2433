"""The renderer's two backends side by side: numba (fused CPU kernels) and torch.

For one image (default parrots, 768x512) initialised in colour with about
``--max-kernels`` kernels (the budget planner), prints per backend, for gray
experts ``(K,)`` (C = 1) and colour experts ``(K, 3)`` (C = 3):

* **fwd+bwd**: one full-image render, MSE and ``backward()`` with the
  parameters held fixed (the culled lists are kept, no rebuild);
* **step**: one full-image training step of :func:`smoe_gui.core.train.training.fit`
  (render, MSE, backward, Adam, the divergence checks), where the parameters
  move, so the lists are checked every call and rebuilt when the check fails.

The cases are measured interleaved (every case once per round) so that the
load of the machine hits all of them alike; medians of wall-clock time are
printed, with a synchronisation after each call on ``--device cuda`` (so the
GPU's work is counted).  With ``--device cuda`` the numba backend copies the
parameters to the CPU and back at every call (its kernels run on the CPU).

Usage::

    .venv/bin/python benchmarks/bench_backends.py                  # CPU, both backends
    .venv/bin/python benchmarks/bench_backends.py --device cuda    # the GPU figure
    .venv/bin/python benchmarks/bench_backends.py --backends torch --rounds 3

Images: ``--images`` (files or folders), else ``../shared/images`` next to the
checkout, else the bundled samples (``benchmarks/_images.py``).
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
import torch  # noqa: E402
from _images import find_images  # noqa: E402

from smoe_gui.core.io.image import load_image, luma  # noqa: E402
from smoe_gui.core.methods.budget import plan_kernels  # noqa: E402
from smoe_gui.core.methods.pipeline import initialize  # noqa: E402
from smoe_gui.core.model import SmoeModel, model_in_channels  # noqa: E402
from smoe_gui.core.params import Params  # noqa: E402
from smoe_gui.core.rendering.culled import SmoeRenderer  # noqa: E402
from smoe_gui.core.train.training import KernelArrays, _Window  # noqa: E402


def colour_model(path: Path, max_kernels: int) -> tuple[SmoeModel, object]:
    """The colour edge initialisation of ``path`` with at most ``max_kernels``
    kernels (planned in gray, as ``bench_colour.py`` does)."""
    image = load_image(path, channels="rgb")
    planned = plan_kernels(luma(image), Params(channels="gray"), "edge", max_kernels)
    return initialize(image, planned.replace(channels="rgb")).model, image


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", nargs="+", default=None, metavar="PATH",
                    help="image files or folders holding parrots (default: ../shared/images, "
                         "else the bundled samples)")
    ap.add_argument("--name", default="parrots", help="image name (file stem)")
    ap.add_argument("--max-kernels", type=int, default=2000)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--backends", nargs="+", choices=["numba", "torch"],
                    default=["numba", "torch"])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--steps", type=int, default=3, help="timed calls per case and round")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_backends: --device cuda but no CUDA device is available")
    paths = find_images([args.name], args.images)
    if not paths:
        raise SystemExit(f"bench_backends: image {args.name!r} not found")
    dev = torch.device(args.device)
    sync: Callable[[], None] = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    model, image = colour_model(paths[0], args.max_kernels)
    gray_image = luma(image)  # type: ignore[arg-type]
    h, w = model.height, model.width
    print(f"{paths[0].stem} {w}x{h}, K = {model.n_kernels}, device {args.device}, "
          f"torch threads {torch.get_num_threads()}")

    cases: dict[str, Callable[[], None]] = {}
    renderers: dict[str, SmoeRenderer] = {}
    for nc in (1, 3):
        mdl = model_in_channels(model, "gray") if nc == 1 else model
        target_np = gray_image if nc == 1 else image
        target = torch.as_tensor(target_np, dtype=torch.float32, device=dev)
        for backend in args.backends:
            ts = [torch.tensor(v, dtype=torch.float32, device=dev, requires_grad=True)
                  for v in (mdl.mu, mdl.A, mdl.m, mdl.log_alpha)]
            r = SmoeRenderer(h, w, device=args.device, backend=backend)

            def fwd_bwd(r: SmoeRenderer = r, ts: list[torch.Tensor] = ts,
                        target: torch.Tensor = target) -> None:
                for t in ts:
                    t.grad = None
                ((r(*ts) - target) ** 2).mean().backward()
                sync()

            window = _Window(KernelArrays.from_model(mdl), None, target_np, 0.0, 0.0,  # type: ignore[arg-type]
                             Params(prune_threshold=0.0), 0.0, 1.0, dev, keep_one=True)
            window.renderer = SmoeRenderer(h, w, device=args.device, backend=backend)

            def step(window: _Window = window) -> None:
                window.step()
                sync()

            cases[f"C={nc} {backend} fwd+bwd"] = fwd_bwd
            cases[f"C={nc} {backend} step"] = step
            renderers[f"C={nc} {backend} fwd+bwd"] = r
            renderers[f"C={nc} {backend} step"] = window.renderer
    for fn in cases.values():  # warm-up: compilation, first lists, allocator
        fn()
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, fn in cases.items():
            for _ in range(args.steps):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)

    print(f"\nmedian wall ms over {args.rounds} interleaved rounds x {args.steps} calls")
    head = f"{'':6s}" + "".join(f"{b + ' ' + kind:>16s}" for kind in ("fwd+bwd", "step")
                                for b in args.backends)
    print(head)
    for nc in (1, 3):
        row = f"C={nc:<4d}"
        for kind in ("fwd+bwd", "step"):
            for b in args.backends:
                row += f"{statistics.median(times[f'C={nc} {b} {kind}']) * 1e3:16.1f}"
        print(row)
    print()
    for name, r in renderers.items():
        if name.endswith("step"):
            print(f"{name:24s} list rebuilds {r.stats['rebuilds']} in {r.stats['calls']} calls, "
                  f"{r.stats['pairs'] / (h * w):.1f} kernels per pixel")
    return 0


if __name__ == "__main__":
    sys.exit(main())
