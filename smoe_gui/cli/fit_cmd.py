"""``smoe fit`` and ``smoe render``.

``smoe fit IMAGE --out DIR`` initialises a model (edge-aligned or grid), trains
it (:func:`smoe_gui.core.training.fit`) and writes ``DIR/model.npz``,
``DIR/reconstruction.png``, ``DIR/params.json`` and ``DIR/report.json``.  Every
input is checked before ``DIR`` is created or written into.  Ctrl-C stops the
training within one step and writes the best model so far (the report says
``"interrupted": true``); the exit status is then 130.  A second Ctrl-C aborts
at once without writing.

``smoe render MODEL.npz --out OUT.png [--scale F | --size WxH]`` renders a
saved model at any size.

:func:`fit_image` and :func:`fit_report` are the code path of ``smoe fit``
without the argument parsing; the benchmark calls them.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from ..core.events import FitEvent, StopToken
from ..core.model import SmoeModel
from ..core.params import Params
from . import EXIT_INTERRUPTED, add_param_options, params_from_args

__all__ = ["FitRun", "fit_image", "fit_report", "parse_size", "register", "write_fit_outputs"]


# --------------------------------------------------------------------------------------
# The code path of `smoe fit`, shared with the benchmark
# --------------------------------------------------------------------------------------
@dataclass
class FitRun:
    """The outcome of :func:`fit_image`.

    Attributes
    ----------
    model : SmoeModel
        The best model of the fit.
    final : FitEvent
        The last event of the fit.
    history : list of dict
        ``{"step", "elapsed_s", "phase", "psnr_db", "n_kernels"}`` per event;
        ``psnr_db`` is the current tile's PSNR during ``tiles`` and the whole
        image's from ``merge`` on.
    init_s : float
        Seconds spent in the initialisation.
    interrupted : bool
        Whether the fit was stopped before its budget or convergence.
    messages : list of str
        Messages of the events (divergence, pruning, convergence).
    n_initial : int
        Number of kernels of the initial model.
    """

    model: SmoeModel
    final: FitEvent
    history: list[dict[str, Any]] = field(default_factory=list)
    init_s: float = 0.0
    interrupted: bool = False
    messages: list[str] = field(default_factory=list)
    n_initial: int = 0


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def fit_image(
    image: NDArray[np.float32],
    params: Params,
    method: str = "edge",
    *,
    stop: StopToken | None = None,
    on_event: Callable[[FitEvent], None] | None = None,
    init_model: SmoeModel | None = None,
    device: str | None = None,
) -> FitRun:
    """Initialise and train a model of ``image``, as ``smoe fit`` does.

    Parameters
    ----------
    image : (H, W) float32 in [0, 1]
    params : Params
    method : {"edge", "grid"}
    stop : StopToken, optional
        Set it to stop the training within one step (the best model is kept).
    on_event : callable, optional
        Called with every :class:`FitEvent`.
    init_model : SmoeModel, optional
        Skip the initialisation and start from this model.
    device : str, optional
        Torch device (default CUDA when available).

    Returns
    -------
    FitRun
    """
    from ..core.training import check_fit_inputs, fit

    check_fit_inputs(image.shape, params)
    t0 = time.perf_counter()
    if init_model is None:
        from ..core.pipeline import initialize

        init_model = initialize(image, params, method=method).model
    init_s = time.perf_counter() - t0
    history: list[dict[str, Any]] = []
    messages: list[str] = []
    final: FitEvent | None = None
    for event in fit(image, params, init=init_model, method=method, stop=stop, device=device):
        history.append(
            {
                "step": event.step,
                "elapsed_s": round(event.elapsed_s, 4),
                "phase": event.phase,
                "psnr_db": _finite_or_none(round(event.psnr, 4)),
                "n_kernels": event.n_kernels,
            }
        )
        if event.message:
            messages.append(event.message)
        if on_event is not None:
            on_event(event)
        if event.final:
            final = event
    if final is None or final.model is None:  # fit always ends with a final event
        raise RuntimeError("the fit ended without a final model")
    return FitRun(
        model=final.model,
        final=final,
        history=history,
        init_s=init_s,
        interrupted=stop is not None and stop.stopped,
        messages=messages,
        n_initial=init_model.n_kernels,
    )


def fit_report(
    run: FitRun,
    image: NDArray[np.float32],
    params: Params,
    method: str,
    image_path: str | None = None,
) -> tuple[dict[str, Any], NDArray[np.float32]]:
    """The report of a fit and the reconstruction it judges.

    The PSNR and SSIM are of the final model rendered with the exact formula
    (:func:`smoe_gui.core.rendering.render`) against ``image``.

    Returns
    -------
    report : dict
        JSON-ready.
    reconstruction : (H, W) float32
    """
    from ..core.metrics import psnr, ssim
    from ..core.rendering import render

    reconstruction = render(run.model)
    times = dict(run.final.phase_times_s or {})
    phase_times = {"init": round(run.init_s, 4)}
    phase_times.update({k: round(v, 4) for k, v in times.items()})
    phase_times["total"] = round(run.init_s + run.final.elapsed_s, 4)
    report: dict[str, Any] = {
        "image": {
            "path": image_path,
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
        },
        "method": method,
        "psnr_db": _finite_or_none(psnr(reconstruction, image)),
        "ssim": _finite_or_none(ssim(reconstruction, image)),
        "n_kernels": run.model.n_kernels,
        "n_kernels_initial": run.n_initial,
        "steps": run.final.step,
        "interrupted": run.interrupted,
        "stop_reason": run.final.message,
        "time_budget_s": params.time_budget,
        "phase_times_s": phase_times,
        "messages": run.messages[-50:],
        "params_digest": params.digest(),
        "psnr_history": run.history,
    }
    return report, reconstruction


def write_fit_outputs(
    out: Path,
    run: FitRun,
    params: Params,
    report: dict[str, Any],
    reconstruction: NDArray[np.float32],
) -> None:
    """Write ``model.npz``, ``reconstruction.png``, ``params.json`` and
    ``report.json`` into the existing folder ``out``, each atomically."""
    from ..core.fileio import write_png, write_text
    from ..core.modelio import save_model

    save_model(run.model, out / "model.npz", params=params)
    write_png(out / "reconstruction.png", reconstruction)
    write_text(out / "params.json", params.to_json())
    write_text(out / "report.json", json.dumps(report, indent=2, allow_nan=False) + "\n")


# --------------------------------------------------------------------------------------
# Progress display
# --------------------------------------------------------------------------------------
class _Progress:
    """A bar on a terminal, plain lines every few seconds otherwise."""

    def __init__(self, stream: TextIO, params: Params, quiet: bool) -> None:
        self.stream = stream
        self.params = params
        self.quiet = quiet
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.last = -math.inf
        self.interval = 0.1 if self.tty else 2.0
        self.phase = ""
        self.open_line = False

    def _line(self, event: FitEvent) -> str:
        where = (
            f"tile {event.tile + 1}/{event.n_tiles}"
            if event.phase == "tiles" and event.tile is not None
            else event.phase
        )
        return (
            f"{where:>11} step {event.step:6d}  PSNR {event.psnr:6.2f} dB  "
            f"K {event.n_kernels:5d}  {event.elapsed_s:6.1f}/{self.params.time_budget:g} s"
        )

    def _end_line(self) -> None:
        if self.open_line:
            self.stream.write("\n")
            self.open_line = False

    def __call__(self, event: FitEvent) -> None:
        if self.quiet:
            return
        now = time.perf_counter()
        changed = event.phase != self.phase
        self.phase = event.phase
        important = event.message is not None and (
            "non-finite" in event.message or event.phase == "merge" or event.final
        )
        if not (changed or important or event.final or now - self.last >= self.interval):
            return
        self.last = now
        if self.tty:
            fraction = min(1.0, event.elapsed_s / self.params.time_budget)
            if event.final:
                fraction = 1.0
            filled = int(round(24 * fraction))
            bar = "#" * filled + "-" * (24 - filled)
            self.stream.write(f"\r[{bar}] {self._line(event)}")
            self.open_line = True
            if important:
                self._end_line()
                self.stream.write(f"  {event.message}\n")
        else:
            self.stream.write(self._line(event) + "\n")
            if important:
                self.stream.write(f"  {event.message}\n")
        if event.final:
            self._end_line()
        self.stream.flush()

    def close(self) -> None:
        if not self.quiet:
            self._end_line()
            self.stream.flush()


# --------------------------------------------------------------------------------------
# `smoe fit`
# --------------------------------------------------------------------------------------
def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return value


def _fit_params(args: argparse.Namespace) -> Params:
    params = params_from_args(args)
    changes: dict[str, Any] = {}
    if args.time_budget is not None:
        changes["time_budget"] = args.time_budget
    if args.steps is not None:
        changes["max_steps"] = args.steps
    return params.replace(**changes) if changes else params


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"--out {out}: {parent} is not a folder")


def _cmd_fit(args: argparse.Namespace) -> int:
    from ..core.image import MIN_SIDE, load_image
    from ..core.training import check_fit_inputs

    # -- validate everything before touching --out ----------------------------------
    params = _fit_params(args)
    if args.max_size is not None and args.max_size < MIN_SIDE:
        raise ValueError(f"--max-size must be at least {MIN_SIDE}, got {args.max_size}")
    image = load_image(args.image, max_size=args.max_size)
    check_fit_inputs(image.shape, params)
    out = Path(args.out)
    _check_out_dir(out)

    progress = _Progress(sys.stderr, params, args.quiet)
    stop = StopToken()

    def on_sigint(signum: int, frame: object) -> None:
        stop.stop()
        # a second Ctrl-C aborts at once
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if not args.quiet:
            print("\nsmoe: interrupted; keeping the best model so far (Ctrl-C again to abort)",
                  file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        run = fit_image(image, params, args.method, stop=stop, on_event=progress)
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.close()
    report, reconstruction = fit_report(run, image, params, args.method, str(args.image))
    out.mkdir(parents=True, exist_ok=True)
    write_fit_outputs(out, run, params, report, reconstruction)
    if not args.quiet:
        state = "interrupted" if run.interrupted else "done"
        print(
            f"smoe fit: {state}: PSNR {report['psnr_db']:.2f} dB, SSIM {report['ssim']:.4f}, "
            f"{run.model.n_kernels} kernels, {report['phase_times_s']['total']:.1f} s; "
            f"wrote {out}/model.npz, reconstruction.png, params.json, report.json",
            file=sys.stderr,
        )
    return EXIT_INTERRUPTED if run.interrupted else 0


# --------------------------------------------------------------------------------------
# `smoe render`
# --------------------------------------------------------------------------------------
_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` to ``(width, height)``.

    Raises
    ------
    ValueError
        When it is not two positive whole numbers joined by ``x``.
    """
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"--size expects WIDTHxHEIGHT (e.g. 1024x768), got {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if width < 1 or height < 1:
        raise ValueError(f"--size must be at least 1x1, got {text!r}")
    return width, height


def _cmd_render(args: argparse.Namespace) -> int:
    from ..core.fileio import write_png
    from ..core.modelio import load_model
    from ..core.rendering import output_grid, render

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out {out}: the output must be a .png file")
    if out.is_dir():
        raise ValueError(f"--out {out}: is a folder")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"--out {out}: folder {folder} does not exist")
    size = parse_size(args.size) if args.size is not None else None
    model = load_model(args.model)
    if size is not None:
        output_grid(model, height=size[1], width=size[0])  # validates the size
        image = render(model, height=size[1], width=size[0])
    else:
        output_grid(model, scale=args.scale)
        image = render(model, scale=args.scale)
    write_png(out, image)
    if not args.quiet:
        print(f"smoe render: wrote {out} ({image.shape[1]}x{image.shape[0]})", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------------------
def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``fit`` and ``render`` sub-commands."""
    fit_parser = subparsers.add_parser(
        "fit",
        help="initialise and train a model of an image",
        description="Initialise (edge-aligned or grid) and train an SMoE model of IMAGE; "
        "write model.npz, reconstruction.png, params.json and report.json into --out. "
        "Ctrl-C keeps the best model so far and exits with status 130.",
    )
    fit_parser.add_argument("image", metavar="IMAGE", help="image file (converted to gray)")
    add_param_options(fit_parser)
    fit_parser.add_argument("--method", choices=("edge", "grid"), default="edge",
                            help="kernel initialisation (default: edge)")
    fit_parser.add_argument("--time-budget", type=_positive_float, metavar="S",
                            help="wall-clock budget of the training in seconds (sets time_budget)")
    fit_parser.add_argument("--steps", type=_positive_int, metavar="N",
                            help="largest number of fine-tuning steps (sets max_steps)")
    fit_parser.add_argument("--max-size", type=int, metavar="N",
                            help="downscale the image so that its longer side is at most N px")
    fit_parser.add_argument("--quiet", action="store_true", help="no progress output")
    fit_parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    fit_parser.set_defaults(func=_cmd_fit)

    render_parser = subparsers.add_parser(
        "render",
        help="render a saved model to a PNG at any size",
        description="Render MODEL.npz (exact formula) to a gray PNG.",
    )
    render_parser.add_argument("model", metavar="MODEL.npz", help="model file")
    render_parser.add_argument("--out", required=True, metavar="OUT.png", help="output image")
    group = render_parser.add_mutually_exclusive_group()
    group.add_argument("--scale", type=float, metavar="F",
                       help="output size relative to the model's image (default 1)")
    group.add_argument("--size", metavar="WxH", help="explicit output size, e.g. 1024x768")
    render_parser.add_argument("--quiet", action="store_true", help="no output on success")
    render_parser.set_defaults(func=_cmd_render)
