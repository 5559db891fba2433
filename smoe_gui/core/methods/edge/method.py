"""The edge-aligned initialisation of Determann & Fleig, as a registered method.

Stages: Canny edges, the 4-direction segment scan, importance scores, DBSCAN
reduction, kernel pairs across each reduced segment with background kernels
(:func:`.stages.edge_stages`), then the experts every method shares.  Its
kernel-budget planner is :func:`.planner.plan_edge`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ...params import Params
from ...registry import STAGE_VIEWS, TRAINING_TEXT, KernelKind, LectureStep
from ..base import BaseMethod, Initialization, Placement
from . import NAME
from .planner import plan_edge
from .stages import edge_stages

__all__ = ["LECTURE", "METHOD", "STAGES"]

#: The edge method's stage names, in order (keys of ``Initialization.timings_ms``).
STAGES: tuple[str, ...] = ("edges", "segments", "scores", "reduction", "placement", "experts")

_ALL = STAGE_VIEWS

#: The edge method's lecture (the paper's method).
LECTURE: tuple[LectureStep, ...] = (
    LectureStep(
        "1 Canny edges",
        "Canny marks the pixels where the brightness changes fastest: the edges the kernels will "
        "follow.",
        _ALL[:1],
    ),
    LectureStep(
        "2 Raw segments",
        "Edge pixels are scanned in four directions; each straight run becomes a segment "
        "(colour = direction).",
        _ALL[:2],
    ),
    LectureStep(
        "3 Reduced segments",
        "Too many segments: the most important ones stay (magenta), the rest are merged by DBSCAN "
        "into cluster means (cyan).",
        _ALL[:3],
    ),
    LectureStep(
        "4 Kernels",
        "Each reduced segment gets a pair of kernels, one on each side of the edge; flat regions "
        "get background kernels.",
        _ALL[:4],
    ),
    LectureStep(
        "5 Reconstruction",
        "Each pixel is a softmax-weighted mix of the kernels' gray levels: the initial model, "
        "before any training.",
        _ALL,
    ),
    LectureStep("6 Training", TRAINING_TEXT, _ALL, training=True),
)


def place(
    image: NDArray[np.float32], params: Params, timings: dict[str, float], workers: int | None
) -> Placement:
    """Stages 1-4 on the image's luma (``workers`` unused)."""
    from ...io.image import luma

    s = edge_stages(luma(image), params, timings)
    return Placement(
        s.mu, s.A, s.log_alpha, s.notes, edges=s.edges, segments=s.segments, scores=s.scores,
        reduced=s.reduced, salient=s.salient, owner=s.owner, eps=s.eps, n_background=s.n_background,
    )


def _summary(init: Initialization) -> str:
    return (
        f"edge pixels {int(np.count_nonzero(init.edges)):,} · "
        f"segments {len(init.segments):,} · "
        f"reduced {len(init.reduced):,} ({int(np.count_nonzero(init.salient))} salient) · "
        f"kernels {init.model.n_kernels:,} ({int(init.n_background)} background)"
    )


#: The edge method.
METHOD = BaseMethod(
    name=NAME,
    label="edge-aligned (paper)",
    place=place,
    stages=STAGES,
    planner=plan_edge,
    plans_budget=True,
    param_groups=("edges", "reduction", "placement"),
    lecture=LECTURE,
    kernel_kinds=(
        KernelKind("pair", "edge pair", 25),
        KernelKind("background", "background", 260, minor=True),
    ),
    legend=("directions", "clusters", "pair-links", "edge-pixels"),
    hue=25,
    plot_style={"color": "tab:red", "marker": "o"},
    curve_name="edge-aligned init",
    summary=_summary,
)
