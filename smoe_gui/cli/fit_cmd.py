"""``smoe fit`` and ``smoe render``.

``smoe fit IMAGE --out DIR`` initialises a model (any method of
:data:`smoe_gui.core.params.METHODS`), trains
it and measures it (:func:`smoe_gui.core.train.runs.run_fit`) and writes
``DIR/model.npz``, ``DIR/reconstruction.png``, ``DIR/params.json`` and
``DIR/report.json`` (:func:`smoe_gui.core.train.runs.fit_report`), all together or
none (:func:`smoe_gui.core.io.fileio.output_group`).  Every input, and that
``DIR`` can be written, is checked before the work starts.  Ctrl-C stops the
training within one step and writes the best model so far (the report says
``"interrupted": true``); the exit status is then 130.  SIGTERM does the same and
exits 143.  A second Ctrl-C aborts
at once without writing.  Progress goes to stderr
(:class:`smoe_gui.cli.progress.FitProgress`; while AS-SMoE's local fits run,
:class:`~smoe_gui.cli.progress.WorkProgress`).  Ctrl-C during the
initialisation stops it within a second and writes nothing (there is no model
yet); the exit status is 130 (143 after SIGTERM).

``smoe render MODEL.npz --out OUT.png [--scale F | --size WxH]`` renders a
saved model at any size.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import signal
import sys
from pathlib import Path
from typing import Any

from ..core.errors import show_path
from ..core.events import StopToken
from ..core.params import METHODS, Params
from . import (
    add_param_options,
    interrupted_status,
    max_size_option,
    methods_text,
    note_signal,
    params_from_args,
    print_note,
)

__all__ = ["ASPECT_TOLERANCE", "FIT_OUTPUT_FILES", "aspect_note", "parse_size", "register"]

#: Files ``smoe fit`` writes into ``--out``.
FIT_OUTPUT_FILES: tuple[str, ...] = (
    "model.npz",
    "reconstruction.png",
    "params.json",
    "report.json",
)


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


def _cmd_fit(args: argparse.Namespace) -> int:
    from ..core.io.fileio import check_output_dir, output_group, write_png, write_text
    from ..core.io.image import load_image
    from ..core.io.modelio import save_model
    from ..core.metrics import format_psnr
    from ..core.train.runs import fit_report, run_fit
    from ..core.work import Cancelled, reporting
    from .progress import FitProgress, WorkProgress

    # -- validate everything before any work ----------------------------------------
    params = _fit_params(args)
    max_size = max_size_option(args.max_size)
    out = check_output_dir(args.out)
    video = _video_request(args)
    image = load_image(
        args.image, max_size=max_size, channels=params.channels, on_message=print_note
    )

    stop = StopToken()
    bars: list[Any] = []  # the fit's progress bar, once the training has started

    def on_stop_signal(signum: int, frame: object) -> None:
        note_signal(signum)
        stop.stop()
        # a second Ctrl-C (or SIGTERM) aborts at once
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous_term)
        if not args.quiet:
            name = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
            keep = "keeping the best model so far" if bars else "stopping the initialisation"
            print(
                f"\nsmoe: {name}; {keep} (Ctrl-C again to abort)",
                file=sys.stderr,
                flush=True,
            )

    previous = signal.signal(signal.SIGINT, on_stop_signal)
    previous_term = signal.signal(signal.SIGTERM, on_stop_signal)
    try:
        def on_event(event: Any) -> None:
            if not bars:  # the initialisation is over: its bar gives way to the fit's
                work.close()
                bars.append(FitProgress(params.time_budget, quiet=args.quiet))
            bars[0](event)

        with WorkProgress(quiet=args.quiet) as work, reporting(
            progress=work, cancel=lambda: stop.stopped, note=work.note
        ):
            try:
                result = run_fit(
                    image, params, args.method, stop=stop, on_event=on_event,
                    snapshot_interval_s=_snapshot_interval(params) if video else math.inf,
                )
            finally:
                for bar in bars:
                    bar.close()
    except Cancelled:
        print("smoe: interrupted during the initialisation; nothing written", file=sys.stderr)
        return interrupted_status()
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    report = fit_report(result, image, params, args.method, args.image)
    text = json.dumps(report, indent=2, allow_nan=False) + "\n"
    with output_group(out) as folder:
        save_model(result.model, folder / "model.npz", params=params, image=image)
        write_png(folder / "reconstruction.png", result.reconstruction)
        write_text(folder / "params.json", params.to_json())
        write_text(folder / "report.json", text)
        if video is not None:  # inside the group: a failed video leaves no outputs either
            _write_video(args, video, image, result)
    if not args.quiet:
        state = "interrupted" if result.interrupted else "done"
        print(
            f"smoe fit: {state}: PSNR {format_psnr(result.psnr_db)}, SSIM {result.ssim:.4f}, "
            f"{result.model.n_kernels} kernels, {report['phase_times_s']['total']:.1f} s; "
            f"wrote {', '.join(FIT_OUTPUT_FILES)} to {show_path(out)}",
            file=sys.stderr,
        )
    return interrupted_status() if result.interrupted else 0


def _video_request(args: argparse.Namespace) -> tuple[Path, tuple[str, ...]] | None:
    """``--video`` checked before any work: its path and panels, or None."""
    if args.video is None:
        if args.video_panels is not None or args.video_fps is not None:
            raise ValueError("--video-panels and --video-fps need --video OUT.mp4 or OUT.gif")
        return None
    from ..core.train.video import check_video_path, parse_panels

    path = check_video_path(args.video)
    try:
        panels = parse_panels(args.video_panels or ",".join(VIDEO_PANELS_DEFAULT))
    except ValueError as exc:
        raise ValueError(f"--video-panels: {exc}") from None
    return path, panels


#: The panels of ``--video`` by default.
VIDEO_PANELS_DEFAULT = ("reconstruction", "kernels", "psnr")


def _snapshot_interval(params: Params) -> float:
    """Seconds between the model snapshots a ``--video`` is drawn from: about
    150 over the budget, between 0.1 and 2 s."""
    return min(2.0, max(0.1, float(params.time_budget) / 150.0))


def _write_video(args: argparse.Namespace, video: tuple[Path, tuple[str, ...]],
                 image: Any, result: Any) -> None:
    from ..core.methods.drawing import initial_kinds
    from ..core.train.video import DEFAULT_FPS, write_training_video

    path, panels = video
    keys = (initial_kinds(result.initialization)
            if result.initialization is not None else None)
    if not args.quiet:
        print(f"smoe fit: drawing the video of {len(result.snapshots)} snapshots into "
              f"{show_path(path)}", file=sys.stderr, flush=True)  # frames: the line after
    info = write_training_video(
        path, image, result.snapshots, result.history, panels=panels,
        fps=args.video_fps or DEFAULT_FPS, initial_keys=keys,
    )
    if not args.quiet:
        print(f"smoe fit: wrote {show_path(info.path)} ({info.n_frames} frames, "
              f"{info.width}x{info.height}, {info.seconds:.1f} s)", file=sys.stderr)


def _fps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected frames per second, got {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"must be in (0, 60] frames per second, got {text!r}")
    return value


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


#: Relative difference of width/height ratios above which ``--size`` is said to stretch.
ASPECT_TOLERANCE = 0.01


def aspect_note(model_w: int, model_h: int, width: int, height: int) -> str | None:
    """The note that ``--size WIDTHxHEIGHT`` stretches a ``model_w x model_h`` model,
    or None when the ratios agree within :data:`ASPECT_TOLERANCE`."""
    ratio, asked = model_w / model_h, width / height
    if abs(asked / ratio - 1.0) <= ASPECT_TOLERANCE:
        return None
    from fractions import Fraction

    shape = Fraction(model_w, model_h)
    return (
        f"--size {width}x{height} stretches the model: it is {model_w}x{model_h} "
        f"({shape.numerator}:{shape.denominator}); {width}x{round(width / ratio)} keeps its shape"
    )


def _cmd_render(args: argparse.Namespace) -> int:
    from ..core.io.fileio import check_output_dir, write_png
    from ..core.io.modelio import load_model
    from ..core.model import model_in_channels
    from ..core.rendering.culled import output_grid, render

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out {show_path(out)}: the output must be a .png file")
    if out.is_dir():
        raise ValueError(f"--out {show_path(out)}: is a folder")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"--out {show_path(out)}: folder {show_path(folder)} does not exist")
    check_output_dir(folder)
    size = parse_size(args.size) if args.size is not None else None
    model = load_model(args.model)
    if args.channels is not None and (args.channels == "rgb") != model.is_colour:
        model = model_in_channels(model, args.channels)
    if size is not None:
        output_grid(model, height=size[1], width=size[0])  # validates the size
        note = aspect_note(model.width, model.height, *size)
        if note is not None and not args.quiet:
            print_note(note)
        image = render(model, height=size[1], width=size[0])
    else:
        output_grid(model, scale=args.scale)
        image = render(model, scale=args.scale)
    write_png(out, image)
    if not args.quiet:
        print(
            f"smoe render: wrote {show_path(out)} ({image.shape[1]}x{image.shape[0]})",
            file=sys.stderr,
        )
    return 0


# --------------------------------------------------------------------------------------
def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``fit`` and ``render`` sub-commands."""
    fit_parser = subparsers.add_parser(
        "fit",
        help="initialise and train a model of an image",
        description=f"Initialise (--method: {methods_text()}) and train an SMoE model of IMAGE; "
        "write model.npz, reconstruction.png, params.json and report.json into --out. "
        "Ctrl-C keeps the best model so far and exits with status 130.",
    )
    fit_parser.add_argument(
        "image", metavar="IMAGE", help="image file (its luma, or its colours with --channels rgb)"
    )
    add_param_options(fit_parser)
    fit_parser.add_argument(
        "--method",
        choices=METHODS,
        default=METHODS[0],
        help=f"kernel initialisation: {methods_text()} (default: {METHODS[0]})",
    )
    fit_parser.add_argument(
        "--time-budget",
        type=_positive_float,
        metavar="S",
        help="wall-clock budget of the training in seconds (sets time_budget)",
    )
    fit_parser.add_argument(
        "--steps",
        type=_positive_int,
        metavar="N",
        help="largest number of fine-tuning steps (sets max_steps)",
    )
    fit_parser.add_argument(
        "--max-size",
        metavar="N",
        help="downscale the image so that its longer side is at most N px",
    )
    fit_parser.add_argument(
        "--video", metavar="OUT.mp4", default=None,
        help="also write a video of the training for slides: .mp4 (H.264) or .gif; the "
        "reconstruction over the run beside the kernel centres and the PSNR curve",
    )
    fit_parser.add_argument(
        "--video-panels", metavar="LIST", default=None,
        help="panels of --video, comma-separated: reconstruction (always), kernels, psnr "
        "(default: all three)",
    )
    fit_parser.add_argument(
        "--video-fps", type=_fps, metavar="F", default=None,
        help="frames per second of --video (default 10)",
    )
    fit_parser.add_argument("--quiet", action="store_true", help="no progress output")
    fit_parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    fit_parser.set_defaults(func=_cmd_fit)

    render_parser = subparsers.add_parser(
        "render",
        help="render a saved model to a PNG at any size",
        description="Render MODEL.npz (exact formula) to a PNG: gray, or RGB for a colour "
        "model (--channels converts).",
    )
    render_parser.add_argument("model", metavar="MODEL.npz", help="model file")
    render_parser.add_argument("--out", required=True, metavar="OUT.png", help="output image")
    group = render_parser.add_mutually_exclusive_group()
    group.add_argument(
        "--scale",
        type=float,
        metavar="F",
        help="output size relative to the model's image (default 1)",
    )
    group.add_argument("--size", metavar="WxH", help="explicit output size, e.g. 1024x768")
    render_parser.add_argument(
        "--channels",
        choices=("gray", "rgb"),
        default=None,
        help="output gray (BT.601 luma of a colour model) or RGB (default: as the model)",
    )
    render_parser.add_argument("--quiet", action="store_true", help="no output on success")
    render_parser.set_defaults(func=_cmd_render)
