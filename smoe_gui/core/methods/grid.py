"""The regular-grid baseline (the comparison of Determann & Fleig), as a registered method.

As many kernels as the edge method places for the same image and parameters
(its placement stages run to count them, :func:`.edge.stages.edge_stages`),
spread evenly row by row, all round and alike
(:func:`.edge.placement.grid_kernels`); its plan is the edge method's.
"""

from __future__ import annotations

import time

import numpy as np
from numpy.typing import NDArray

from ..params import PARAM_SPECS, Params
from ..registry import TRAINING_TEXT, KernelKind, LectureStep
from .base import BaseMethod, Placement
from .budget import KernelPlan
from .edge.method import METHOD as EDGE
from .edge.stages import edge_stages

__all__ = ["LECTURE", "METHOD", "NAME"]

#: The grid baseline's name.
NAME = "grid"

_VIEWS = ("kernels", "reconstruction")

#: The grid baseline's lecture.
LECTURE: tuple[LectureStep, ...] = (
    LectureStep(
        "1 Grid kernels",
        "The baseline: as many kernels as the edge method would place (or the budget N), spread "
        "evenly row by row, all round and alike (standard deviation half their spacing): blind "
        "to the image's content.",
        ("kernels",),
        kernel_mode="ellipses",
    ),
    LectureStep(
        "2 Reconstruction",
        "Each expert starts from the image at its kernel's centre and is refined (eq. 12); each "
        "pixel is a softmax-weighted mix of the experts: the initial model, before any training.",
        _VIEWS,
    ),
    LectureStep("3 Training", TRAINING_TEXT, _VIEWS, training=True),
)


def place(
    image: NDArray[np.float32], params: Params, timings: dict[str, float], workers: int | None
) -> Placement:
    """The edge method's count of kernels on a regular grid (``workers`` unused)."""
    from ..io.image import luma
    from .edge.placement import grid_kernels

    stages = edge_stages(luma(image), params, timings)
    start = time.perf_counter()
    count = stages.mu.shape[0]
    h, w = image.shape[:2]
    mu, A, log_alpha = grid_kernels(count, h, w)
    timings["placement"] += (time.perf_counter() - start) * 1000.0
    notes = (f"grid baseline: {count} kernels, as many as the edge method gives",)
    return Placement(mu, A, log_alpha, notes)


def plan(image: NDArray[np.float32], params: Params, budget: int) -> KernelPlan:
    """The edge method's plan (the grid places as many kernels), without background kernels."""
    edge = EDGE.plan(image, params, budget)
    return KernelPlan(NAME, budget, edge.params, edge.n_kernels, 0, edge.tries)


#: The grid baseline.
METHOD = BaseMethod(
    name=NAME,
    label="regular grid (baseline)",
    place=place,
    stages=EDGE.stages,
    planner=plan,
    plans_budget=True,
    param_groups=EDGE.param_groups,  # the edge stages' parameters set its kernel count
    # ... all but the steering, which shapes the edge kernels but never counts them
    reads=tuple(
        s.name for s in PARAM_SPECS if s.group in EDGE.param_groups and s.name != "segment_steering"
    ),
    lecture=LECTURE,
    no_stage_text={
        "edges": "grid: no edges used", "segments": "grid: no segments", "reduced": "grid: none",
    },
    kernel_kinds=(KernelKind("grid", "grid", 160, minor=True),),
    hue=160,
    plot_style={"color": "tab:blue", "marker": "s"},
    curve_name="grid init",
)
