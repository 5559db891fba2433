"""S-SMoE (Li et al., VCIP 2023) as a registered method: one kernel per DBSCAN
superpixel (more for large, busy ones with a budget), steered by its part's
shape (:func:`.segment_init.s_smoe_kernels`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...params import Params
from ...registry import TRAINING_TEXT, LectureStep
from ..base import BaseMethod
from . import common

__all__ = ["LECTURE", "METHOD", "NAME"]

#: S-SMoE's name.
NAME = "s-smoe"

#: S-SMoE's lecture.
LECTURE: tuple[LectureStep, ...] = (
    LectureStep(
        "1 Superpixels",
        "S-SMoE starts from DBSCAN superpixels, not edges: " + common.SUPERPIXELS_TEXT,
        ("segments",),
    ),
    LectureStep(
        "2 Kernels per segment",
        "Each superpixel gets a kernel at its centroid. With a kernel budget N the rest goes to "
        "large, busy segments; a segment with n kernels is cut into n parts along its principal "
        "axis, one kernel per part.",
        ("segments", "kernels"),
        kernel_mode="centres",
    ),
    LectureStep(
        "3 Steering from the segment's shape",
        "Each kernel's steering matrix comes from the covariance C of its part's pixel coordinates "
        "(A Aᵀ = C⁻¹/2): a long, thin segment gives a long, thin ellipse along it.",
        ("segments", "kernels"),
        kernel_mode="ellipses",
    ),
    LectureStep(
        "4 Experts and reconstruction",
        "Each expert starts from its part's mean value and is refined like every method's (eq. "
        "12); each pixel is a softmax-weighted mix of the experts: the initial model, before any "
        "training.",
        common.VIEWS,
    ),
    LectureStep("5 Training", TRAINING_TEXT, common.VIEWS, training=True),
)


def _kernels(
    gray: NDArray[np.float32], labels: NDArray[np.int32], params: Params, budget: int,
    workers: int | None,
) -> Any:
    from .segment_init import s_smoe_kernels

    return s_smoe_kernels(gray, labels, budget)


#: S-SMoE.
METHOD = BaseMethod(
    name=NAME,
    label="S-SMoE (superpixels)",
    place=common.segment_place(NAME, "allocation", _kernels),
    stages=("superpixels", "allocation", "placement", "experts"),
    long_name="S-SMoE",
    param_groups=common.PARAM_GROUPS,
    reads=common.SUPERPIXEL_PARAMS,
    lecture=LECTURE,
    stage_titles=common.STAGE_TITLES,
    no_stage_text=common.no_stage_text(NAME),
    view_counts={"segments": "superpixels"},
    kernel_kinds=(common.KERNEL_KIND,),
    legend=common.LEGEND,
    hue=300,
    plot_style={"color": "tab:green", "marker": "^"},
    summary=common.summary,
)
