"""What the two segment methods (S-SMoE and AS-SMoE) share: the superpixel
stage, how their results are captioned and drawn, and their lecture's first step."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...params import Params
from ...registry import KernelKind
from ..base import Initialization, Placement

__all__ = [
    "KERNEL_KIND",
    "LEGEND",
    "PARAM_GROUPS",
    "SUPERPIXEL_PARAMS",
    "STAGE_TITLES",
    "SUPERPIXELS_TEXT",
    "VIEWS",
    "no_stage_text",
    "segment_place",
    "summary",
]

#: How the superpixels are made (the lectures' first step).
SUPERPIXELS_TEXT = (
    "from seeds taken row by row, a pixel joins a segment while its gray level stays close to the "
    "seed's and its neighbour's; small segments merge into their most similar neighbour."
)
#: The stage views of their lectures after the first step.
VIEWS = ("segments", "kernels", "reconstruction")
#: View 2 shows the superpixel map, not edge segments.
STAGE_TITLES = {"segments": "2  Superpixels"}
#: Their initial kernels: one kind, drawn alike for both methods.
KERNEL_KIND = KernelKind("segment", "segment (S-SMoE, AS-SMoE)", 300)
#: Legend entries of their results.
LEGEND = ("superpixels",)
#: The parameter-table group of the superpixels and the local fits.
PARAM_GROUPS = ("segments",)
#: The parameters of that group both methods read: the superpixels' (AS-SMoE
#: also reads its local fits' ``as_*``).
SUPERPIXEL_PARAMS = ("superpixel_threshold", "superpixel_min_size", "superpixel_blur")

#: Kernels of a segment method: ``(luma, labels, params, budget, workers) -> SegmentKernels``.
KernelsFunction = Callable[
    [NDArray[np.float32], NDArray[np.int32], Params, int, "int | None"], object
]


def no_stage_text(name: str) -> dict[str, str]:
    """Captions of the views a segment method has no stage for."""
    return {"edges": f"{name}: no edges", "reduced": f"{name}: none"}


def summary(init: Initialization) -> str:
    """The status bar's counts: superpixels and kernels."""
    n_seg = 0 if init.segment_map is None else int(init.segment_map.max()) + 1
    return f"{init.method}: superpixels {n_seg:,} · kernels {init.model.n_kernels:,}"


def _part_colours(
    image: NDArray[np.float32], pixel_kernel: NDArray[np.int64] | None, k: int
) -> NDArray[np.float64] | None:
    """Mean colour of each kernel's part, ``(k, C)``, from the kernel of every pixel
    (``(H·W,)``, row-major); ``None`` without that partition."""
    if pixel_kernel is None or pixel_kernel.shape[0] != image.shape[0] * image.shape[1]:
        return None
    flat = np.asarray(image, dtype=np.float64).reshape(-1, image.shape[2])
    count = np.bincount(pixel_kernel, minlength=k).astype(np.float64)
    if np.any(count == 0):
        return None
    return np.stack(
        [np.bincount(pixel_kernel, flat[:, c], k) / count for c in range(flat.shape[1])],
        axis=1,
    )


def segment_place(
    name: str, stage: str, kernels_of: KernelsFunction
) -> Callable[[NDArray[np.float32], Params, dict[str, float], int | None], Placement]:
    """The place function of segment method ``name``: superpixels (stage
    "superpixels"), then ``kernels_of`` (timed as ``stage``) on the image's luma."""

    def place(
        image: NDArray[np.float32], params: Params, timings: dict[str, float], workers: int | None
    ) -> Placement:
        from ...io.image import luma
        from .superpixels import mdbscan_superpixels

        gray = luma(image)
        h, w = gray.shape
        budget = min(params.n_kernels, h * w)  # every segment gets at least one kernel of it
        start = time.perf_counter()
        labels = mdbscan_superpixels(
            gray, params.superpixel_threshold, params.superpixel_min_size,
            params.superpixel_blur, max_segments=budget,
        )
        n_seg = int(labels.max()) + 1
        timings["superpixels"] = (time.perf_counter() - start) * 1000.0
        start = time.perf_counter()
        kernels: Any = kernels_of(gray, labels, params, budget, workers)
        timings[stage] = (time.perf_counter() - start) * 1000.0
        timings["placement"] = 0.0  # steering is part of the allocation / local fits
        if image.ndim == 2:
            targets = kernels.values
        else:
            targets = _part_colours(image, getattr(kernels, "pixel_kernel", None),
                                    kernels.mu.shape[0])
        return Placement(
            kernels.mu, kernels.A, kernels.log_alpha,
            (f"{name}: {n_seg} superpixels", *kernels.notes),
            # each kernel's mean over its pixels (gray or colour), where the kernels
            # partition them; else (AS-SMoE in colour) the samples at the centres
            targets=targets,
            segment_map=labels, kernel_segment=kernels.segment,
        )

    return place
