"""``smoe init``: run the initialisation stages and write each one to a folder.

``smoe init IMAGE [--params F.json] [--set NAME=VALUE ...] [--method M]
[--max-size N] --out DIR`` (``M`` one of :data:`smoe_gui.core.params.METHODS`)
writes, atomically:

* ``DIR/stages.npz``: ``image, edges, segments, scores, reduced, salient, mu,
  A, m, log_alpha, expert_psnr``;
* ``DIR/model.npz``: the initial model with its parameters;
* ``DIR/params.json``: the parameters used;
* ``DIR/edges.png``, ``segments.png``, ``reduced.png``, ``kernels.png``
  (and ``superpixels.png`` for a segment method): one picture per stage in the
  window's colours, the image upscaled by :func:`~smoe_gui.core.methods.drawing.auto_scale`
  with a legend strip below (:func:`~smoe_gui.core.methods.drawing.with_legend`);
  ``reconstruction.png``: the initial model at the image's size;

and prints the counts and the time of each stage.  AS-SMoE's local fits show
a progress bar on stderr (:class:`smoe_gui.cli.progress.WorkProgress`), warn
there before fitting thousands of kernels without a budget, and stop within a
second on Ctrl-C (exit status 130, nothing written).  Every input, and that
``DIR`` can be written, is checked before the work starts; the files appear
all together or none (:func:`smoe_gui.core.io.fileio.output_group`), so bad
input or a full disk leaves nothing behind.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ..core.errors import show_path
from ..core.params import METHODS
from . import add_param_options, max_size_option, methods_text, params_from_args, print_note

__all__ = ["OUTPUT_FILES", "register", "run"]

#: Files written into ``--out``.
OUTPUT_FILES: tuple[str, ...] = (
    "stages.npz",
    "model.npz",
    "params.json",
    "edges.png",
    "segments.png",
    "reduced.png",
    "kernels.png",
    "reconstruction.png",
)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``init`` sub-command."""
    parser = subparsers.add_parser(
        "init",
        help=f"run an initialisation ({methods_text()}) and write every stage",
        description=(
            f"Run the initialisation --method ({methods_text()}; default {METHODS[0]}) on "
            "IMAGE and write its stages, the initial model and one PNG per stage (in the "
            "window's colours, with a legend) into --out."
        ),
    )
    parser.add_argument("image", metavar="IMAGE", help="input image (PNG, JPEG, TIFF, ...)")
    add_param_options(parser)
    parser.add_argument(
        "--method", choices=METHODS, default=METHODS[0],
        help=f"kernel initialisation: {methods_text()} (default: {METHODS[0]})",
    )
    parser.add_argument(
        "--max-size", default=None, metavar="N",
        help="downscale the image so that its longer side is at most N pixels",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``smoe init``; raises ValueError on bad input (before writing anything)."""
    from ..core.io.fileio import check_output_dir, output_group, write_npz, write_png, write_text
    from ..core.io.image import load_image
    from ..core.io.modelio import save_model
    from ..core.methods.drawing import (
        auto_scale,
        draw_edges,
        draw_kernels,
        draw_reconstruction,
        draw_reduced,
        draw_segments,
        draw_superpixels,
        initial_kinds,
        stage_legend,
        with_legend,
    )
    from ..core.methods.pipeline import initialize
    from ..core.metrics import format_psnr
    from ..core.work import reporting
    from .progress import WorkProgress

    # -- validate everything first ------------------------------------------
    params = params_from_args(args)
    out = check_output_dir(args.out)
    max_size = max_size_option(args.max_size)
    image = load_image(args.image, max_size=max_size, channels=params.channels,
                       on_message=print_note)
    # AS-SMoE's local fits take minutes: a bar, a warning without a budget, Ctrl-C within 1 s
    with WorkProgress() as work, reporting(progress=work, note=work.note):
        result = initialize(image, params, method=args.method)
    model = result.model
    h, w = image.shape[:2]
    scale = auto_scale(h, w)
    kinds = initial_kinds(result)
    # the window's colours, a legend strip below each overlay (the reconstruction as it is)
    pictures = {
        # no edge stage (grid, segment methods): the image dimmed, as the window's view 1
        "edges.png": with_legend(
            draw_edges(result.edges, None if result.edges.any() else image, scale),
            stage_legend("edges"),
        ),
        "segments.png": with_legend(draw_segments(image, result.segments, scale),
                                    stage_legend("segments")),
        "reduced.png": with_legend(draw_reduced(image, result.reduced, result.salient, scale),
                                   stage_legend("reduced")),
        "kernels.png": with_legend(draw_kernels(image, model, scale=scale, kinds=kinds),
                                   stage_legend("kernels", kinds)),
        "reconstruction.png": draw_reconstruction(model, reconstruction=result.reconstruction),
    }
    extra: dict[str, np.ndarray] = {}
    if result.segment_map is not None:  # segment methods: the superpixels and whose kernel is whose
        pictures["superpixels.png"] = with_legend(
            draw_superpixels(image, result.segment_map, scale), stage_legend("superpixels")
        )
        extra = {"segment_map": result.segment_map, "kernel_segment": result.kernel_segment}

    # -- write ------------------------------------------------------------------
    with output_group(out) as folder:
        write_npz(
            folder / "stages.npz",
            image=result.image,
            edges=result.edges,
            segments=result.segments,
            scores=result.scores,
            reduced=result.reduced,
            salient=result.salient,
            mu=model.mu,
            A=model.A,
            m=model.m,
            log_alpha=model.log_alpha,
            expert_psnr=np.asarray(result.expert_psnr, dtype=np.float64),
            **extra,
        )
        # the parameters used (with a kernel budget, the planner's max_pts and spacing)
        save_model(model, folder / "model.npz", params=result.params, image=image)
        write_text(folder / "params.json", result.params.to_json())
        for name, picture in pictures.items():
            write_png(folder / name, picture)

    # -- report -------------------------------------------------------------------
    s = result.summary()
    print(f"image        {show_path(args.image)}: {w}x{h} px")
    print(f"method       {result.method}")
    print(f"edge pixels  {s['edge_pixels']}")
    print(f"segments     {s['segments']}")
    print(
        f"reduced      {s['reduced']} ({s['salient']} salient, DBSCAN eps "
        f"{result.reduction_eps:.3f} px)"
    )
    print(f"kernels      {s['kernels']} ({s['background_kernels']} background)")
    psnr = result.expert_psnr
    if params.experts == "lstsq":
        print(
            f"PSNR         {format_psnr(psnr[0])} after sampling, {format_psnr(psnr[-1])} with "
            "least-squares experts"
        )
    else:
        print(
            f"PSNR         {format_psnr(psnr[0])} after sampling, {format_psnr(max(psnr))} "
            f"kept after {len(psnr) - 1} refinement iterations ({params.expert_stop} stop)"
        )
    timing = ", ".join(f"{k} {v:.1f}" for k, v in result.timings_ms.items())
    print(f"time (ms)    {timing}; total {sum(result.timings_ms.values()):.1f}")
    for note in result.notes:
        print(f"note         {note}")
    if result.segment_map is not None:
        print(f"superpixels  {s['superpixels']}")
    written = [*OUTPUT_FILES, *(["superpixels.png"] if result.segment_map is not None else [])]
    print(f"wrote        {', '.join(written)} to {show_path(out)}")
    sys.stdout.flush()
    return 0
