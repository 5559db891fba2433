"""AS-SMoE (Li et al., arXiv 2409.10101) as a registered method: per-segment SMoE
fits with kernel sparsification, exported into one model
(:func:`.segment_init.as_smoe_kernels`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...params import Params
from ...registry import TRAINING_TEXT, LectureStep
from ..base import BaseMethod
from . import common
from .local_fit import AS_PATCH  # light: the fits themselves load on first use

__all__ = ["LECTURE", "METHOD", "NAME"]

#: AS-SMoE's name.
NAME = "as-smoe"

#: AS-SMoE's lecture.
LECTURE: tuple[LectureStep, ...] = (
    LectureStep(
        "1 Superpixels",
        "AS-SMoE starts from the same DBSCAN superpixels: " + common.SUPERPIXELS_TEXT,
        ("segments",),
    ),
    LectureStep(
        "2 Per-segment SMoE fits",
        "Kernels start where S-SMoE puts them. Each segment (big ones in pieces) is cut out with "
        f"a margin, resized to {AS_PATCH}×{AS_PATCH} and fitted by a small SMoE (Adam) with its "
        "neighbours' kernels fixed; far-apart pieces go together, in rounds; a fit stays only if "
        "it lowers the error.",
        ("segments", "kernels"),
        kernel_mode="centres",
    ),
    LectureStep(
        "3 Kernel sparsification",
        "An L0 (hard-concrete) gate on every kernel switches off the kernels a segment does not "
        "need: the fits decide each segment's kernel count, positions and steering. View 4: the "
        "kernels kept.",
        ("segments", "kernels"),
        kernel_mode="ellipses",
    ),
    LectureStep(
        "4 One global model",
        "The kept kernels of all segments, mapped back to the image (α = their gate), form one "
        "initial model; with a budget N the worst-fitting ones are split until there are N; its "
        "experts are refined (eq. 12). View 5: before any training.",
        common.VIEWS,
    ),
    LectureStep("5 Training", TRAINING_TEXT, common.VIEWS, training=True),
)


def _kernels(
    gray: NDArray[np.float32], labels: NDArray[np.int32], params: Params, budget: int,
    workers: int | None,
) -> Any:
    from .segment_init import LocalFitConfig, as_smoe_kernels

    config = LocalFitConfig(
        params.as_target_db, params.as_initial_kernels, params.as_doublings,
        params.as_steps, params.seed,
    )
    return as_smoe_kernels(gray, labels, config, budget, workers)


#: AS-SMoE.
METHOD = BaseMethod(
    name=NAME,
    label="AS-SMoE (adaptive superpixels)",
    long_name="AS-SMoE",
    reports_progress=True,
    place=common.segment_place(NAME, "segment_fits", _kernels),
    stages=("superpixels", "segment_fits", "placement", "experts"),
    param_groups=common.PARAM_GROUPS,
    reads=(*common.SUPERPIXEL_PARAMS, "as_target_db", "as_initial_kernels", "as_doublings",
           "as_steps"),
    lecture=LECTURE,
    stage_titles=common.STAGE_TITLES,
    no_stage_text=common.no_stage_text(NAME),
    view_counts={"segments": "superpixels"},
    kernel_kinds=(common.KERNEL_KIND,),
    legend=common.LEGEND,
    hue=130,
    plot_style={"color": "tab:purple", "marker": "^"},
    summary=common.summary,
)
