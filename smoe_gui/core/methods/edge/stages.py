"""The edge method's stages 1-4 composed (Canny, segments, scores, reduction,
kernel pairs and background kernels): everything before the experts.

:func:`smoe_gui.core.methods.pipeline.initialize` adds the expert stage; the
kernel-budget planner (:mod:`smoe_gui.core.methods.budget`) counts kernels
with these stages alone, never the expert stage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...params import Params

__all__ = [
    "EdgeFront", "EdgeStages", "edge_front", "edge_placement", "edge_reduction", "edge_stages",
]


@dataclass(frozen=True, eq=False)
class EdgeStages:
    """What the edge method's stages before the experts produce (placement only):
    the edge mask, raw and reduced segments with their scores, and the kernels
    (pairs, then background kernels) as ``mu (K, 2)``, ``A (K, 2, 2)``,
    ``log_alpha (K,)``."""

    edges: NDArray[np.bool_]
    segments: NDArray[np.float64]
    scores: NDArray[np.float64]
    reduced: NDArray[np.float64]
    salient: NDArray[np.bool_]
    owner: NDArray[np.intp]
    eps: float
    mu: NDArray[np.float64]
    A: NDArray[np.float64]
    log_alpha: NDArray[np.float64]
    n_background: int
    notes: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class EdgeFront:
    """Stages 1-2 and the scores: what does not depend on ``max_pts`` or the
    background spacing (the planner computes it once per search)."""

    edges: NDArray[np.bool_]
    segments: NDArray[np.float64]
    scores: NDArray[np.float64]


def edge_front(
    image: NDArray[np.float32], params: Params, timings: dict[str, float]
) -> EdgeFront:
    """Canny, the segment scan and the importance scores; fills ``timings`` (ms)."""
    from .edges import canny_edges
    from .reduction import importance_scores
    from .segments import scan_segments

    h, w = image.shape
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = (now - clock) * 1000.0
        clock = now

    edges = canny_edges(image, params.canny_sigma, params.canny_low, params.canny_high)
    lap("edges")
    segments = scan_segments(edges)
    lap("segments")
    scores = importance_scores(segments, params.lam, h, w)
    lap("scores")
    return EdgeFront(edges, segments, scores)


def edge_reduction(front: EdgeFront, params: Params, timings: dict[str, float]) -> Any:
    """The DBSCAN reduction of ``front``'s segments (``params.max_pts``,
    ``salient_fraction``); fills ``timings["reduction"]`` (ms)."""
    from .reduction import reduce_segments

    start = time.perf_counter()
    red = reduce_segments(front.segments, front.scores, params.max_pts, params.salient_fraction)
    timings["reduction"] = (time.perf_counter() - start) * 1000.0
    return red


def edge_placement(
    shape: tuple[int, int], front: EdgeFront, red: Any, params: Params, timings: dict[str, float]
) -> EdgeStages:
    """Kernel pairs of the reduced segments and background kernels on an image
    of ``shape`` (H, W); fills ``timings["placement"]`` (ms)."""
    from .placement import background_kernels, edge_kernel_pairs

    h, w = shape
    start = time.perf_counter()
    mu, A, log_alpha = edge_kernel_pairs(red.reduced, params.delta_mu, params.segment_steering)
    notes: list[str] = []
    use_background = params.background_kernels
    if red.reduced.shape[0] == 0:
        if front.edges.any():
            notes.append("no segment of 2 or more pixels among the edges: background kernels only")
        else:
            notes.append("no edges found: background kernels only")
        if not use_background:
            notes.append(
                "background kernels switched on although disabled, so the model is not empty"
            )
            use_background = True
    n_background = 0
    if use_background:
        b_mu, b_A, b_la = background_kernels(mu, h, w, params.background_spacing)
        n_background = b_mu.shape[0]
        mu = np.concatenate([mu, b_mu])
        A = np.concatenate([A, b_A])
        log_alpha = np.concatenate([log_alpha, b_la])
    timings["placement"] = (time.perf_counter() - start) * 1000.0
    return EdgeStages(
        front.edges, front.segments, front.scores, red.reduced, red.salient, red.source, red.eps,
        mu, A, log_alpha, n_background, tuple(notes),
    )


def edge_stages(
    image: NDArray[np.float32], params: Params, timings: dict[str, float]
) -> EdgeStages:
    """Every stage of the edge method before the experts; fills ``timings`` (ms)."""
    front = edge_front(image, params, timings)
    red = edge_reduction(front, params, timings)
    return edge_placement(image.shape[:2], front, red, params, timings)
