"""The stages composed: :func:`initialize` (and :func:`fit`, from training).

:func:`initialize` runs the edge-aligned initialisation of Determann & Fleig
stage by stage (Canny, segment scan, importance scores, DBSCAN reduction,
kernel placement with background kernels, expert initialisation), or the
regular-grid baseline with the same number of kernels, and returns every
stage's output with its timing.  The readings of the paper it takes are in
``docs/paper-readings.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..model import SmoeModel
from ..params import Params, check_method
from .edge.stages import edge_stages

#: Stage names of the edge and grid methods, in order, as keys of
#: :attr:`Initialization.timings_ms`.
STAGES: tuple[str, ...] = ("edges", "segments", "scores", "reduction", "placement", "experts")
#: The methods that start from a superpixel segmentation.
SEGMENT_METHODS: tuple[str, ...] = ("s-smoe", "as-smoe")
#: Stage names of every method, in order, as keys of :attr:`Initialization.timings_ms`.
STAGES_BY_METHOD: dict[str, tuple[str, ...]] = {
    "edge": STAGES,
    "grid": STAGES,
    "s-smoe": ("superpixels", "allocation", "placement", "experts"),
    "as-smoe": ("superpixels", "segment_fits", "placement", "experts"),
}

__all__ = ["SEGMENT_METHODS", "STAGES", "STAGES_BY_METHOD", "Initialization", "initialize"]


@dataclass(frozen=True, eq=False)
class Initialization:
    """Result of :func:`initialize`: every stage's output.

    Attributes
    ----------
    method : str
        One of :data:`smoe_gui.core.params.METHODS`.
    params : Params
    image : (H, W) float32, or (H, W, 3) for ``channels = "rgb"``
        The image the model was fitted to (its luma went to Canny).
    edges : (H, W) bool
        Canny edge mask (all False for the other methods).
    segments : (N, 4) float64
        Raw segments: centre x, centre y (px), θ in degrees (0, 90, 45, -45),
        run length in pixels.  Ordered by direction (0, 90, 45, -45), then by
        start pixel in row-major order.
    scores : (N,) float64
        Importance score of each raw segment (eq. 6-8).
    reduced : (M, 3) float64
        Reduced segments: x, y, θ.  Kernels ``2i`` and ``2i+1`` of ``model``
        belong to ``reduced[i]``.
    salient : (M,) bool
        Which reduced segments were kept as isolated salient segments.
    model : SmoeModel
        Initial model: ``2M`` pair kernels, then ``n_background`` background
        kernels (edge method); or the grid kernels (grid method); or the
        segments' kernels (segment methods; ``kernel_segment`` says whose).
        Its experts are ``(K,)`` for a gray image, ``(K, 3)`` for an RGB one.
    n_background : int
        Number of background kernels at the end of the model.
    expert_psnr : list of float
        PSNR (dB, :func:`smoe_gui.core.metrics.psnr_from_mse`, over all
        channels) of the whole reconstruction after sampling the experts
        (entry 0), then after each refinement iteration made (see
        :func:`smoe_gui.core.methods.experts.initialize_experts`: with the default
        ``expert_stop = "mse"`` the model holds the best of them).
    timings_ms : dict of str to float
        Wall-clock milliseconds per stage (:data:`STAGES_BY_METHOD`).
    notes : tuple of str
        Messages for the user (e.g. "no edges found: background kernels only").
    reduction_eps : float
        DBSCAN radius ε (px) of the reduction; 0 when nothing was clustered.
    segment_owner : (N,) intp
        For each raw segment, the row of ``reduced`` it went into (-1: dropped).
    reconstruction : (H, W) or (H, W, 3) float32, or None
        The initial model rendered at the image's size (computed by the expert
        stage in the same pass as ``expert_psnr``; equals ``render(model)`` to
        float32 rounding).
    segment_map : (H, W) int32 or None
        Superpixel labels ``0 .. S-1`` (segment methods; None otherwise):
        every pixel labelled, every segment 4-connected.
    kernel_segment : (K,) intp
        For the segment methods, the segment each kernel belongs to (empty
        otherwise).
    """

    method: str
    params: Params
    image: NDArray[np.float32]
    edges: NDArray[np.bool_]
    segments: NDArray[np.float64]
    scores: NDArray[np.float64]
    reduced: NDArray[np.float64]
    salient: NDArray[np.bool_]
    model: SmoeModel
    n_background: int
    expert_psnr: list[float]
    timings_ms: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    reduction_eps: float = 0.0
    segment_owner: NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    reconstruction: NDArray[np.float32] | None = None
    segment_map: NDArray[np.int32] | None = None
    kernel_segment: NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))

    @property
    def expert_kept(self) -> int:
        """Index into :attr:`expert_psnr` of the experts the model holds: the best
        entry (``expert_stop = "mse"``), else the last (``fixed``, ``lstsq``)."""
        if not self.expert_psnr:
            return 0
        if self.params.experts == "refine" and self.params.expert_stop == "mse":
            return int(np.argmax(self.expert_psnr))
        return len(self.expert_psnr) - 1

    @property
    def luma(self) -> NDArray[np.float32]:
        """(H, W) float32: the image's BT.601 luma (the image itself when gray),
        what the edge stages saw."""
        from ..io.image import luma

        return luma(self.image)

    @property
    def n_kernels(self) -> int:
        """Number of kernels of the initial model."""
        return self.model.n_kernels

    @property
    def n_pair_kernels(self) -> int:
        """Number of edge-pair kernels (``2M``; 0 for the grid method)."""
        return self.model.n_kernels - self.n_background if self.method == "edge" else 0

    def summary(self) -> dict[str, Any]:
        """Counts and timings as a plain dict (for logs and the CLI)."""
        return {
            "method": self.method,
            "edge_pixels": int(self.edges.sum()),
            "segments": int(self.segments.shape[0]),
            "reduced": int(self.reduced.shape[0]),
            "salient": int(self.salient.sum()),
            "kernels": self.n_kernels,
            "background_kernels": self.n_background,
            "reduction_eps_px": self.reduction_eps,
            "superpixels": 0 if self.segment_map is None else int(self.segment_map.max()) + 1,
            "psnr_db": self.expert_psnr[self.expert_kept] if self.expert_psnr else float("nan"),
            "timings_ms": dict(self.timings_ms),
        }


def _segment_stages(
    image: NDArray[np.float32], params: Params, method: str, timings: dict[str, float],
    workers: int | None,
) -> tuple[NDArray[np.int32], Any, list[str]]:
    """Superpixels and kernels of the segment methods; fills ``timings`` (ms)."""
    from .segment.segment_init import LocalFitConfig, as_smoe_kernels, s_smoe_kernels
    from .segment.superpixels import mdbscan_superpixels

    h, w = image.shape
    budget = min(params.n_kernels, h * w)
    cap = budget  # both methods give every segment at least one kernel of the budget
    start = time.perf_counter()
    labels = mdbscan_superpixels(
        image, params.superpixel_threshold, params.superpixel_min_size,
        params.superpixel_blur, max_segments=cap,
    )
    n_seg = int(labels.max()) + 1
    timings["superpixels"] = (time.perf_counter() - start) * 1000.0
    notes = [f"{method}: {n_seg} superpixels"]
    start = time.perf_counter()
    if method == "s-smoe":
        kernels = s_smoe_kernels(image, labels, budget)
        timings["allocation"] = (time.perf_counter() - start) * 1000.0
    else:
        config = LocalFitConfig(
            params.as_target_db, params.as_initial_kernels, params.as_doublings,
            params.as_steps, params.seed,
        )
        kernels = as_smoe_kernels(image, labels, config, budget, workers)
        timings["segment_fits"] = (time.perf_counter() - start) * 1000.0
    timings["placement"] = 0.0  # steering is part of the allocation / local fits
    notes.extend(kernels.notes)
    return labels, kernels, notes


def _planned(image: NDArray[np.float32], params: Params, method: str) -> Params:
    """Edge and grid: ``params`` with ``max_pts`` and the background spacing
    chosen by the kernel-budget planner for ``params.n_kernels`` kernels."""
    from .budget import plan_kernels

    planned = plan_kernels(image, params, method, params.n_kernels)
    return planned.replace(n_kernels=params.n_kernels)


def initialize(
    image: NDArray[Any], params: Params | None = None, method: str = "edge",
    *, workers: int | None = None,
) -> Initialization:
    """Initialise an SMoE model of ``image``.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) array
        Image in [0, 1], at least 8x8 and at most 4096x4096 pixels.  It is
        taken as ``params.channels`` says (:func:`smoe_gui.core.io.image.as_channels`):
        ``gray`` models the BT.601 luma of a colour image; ``rgb`` models the
        three channels (a gray image gives three equal ones).  Canny and the
        segments always run on the luma.
    params : Params, optional
        Parameters (default: ``Params()``).
    method : str
        One of :data:`smoe_gui.core.params.METHODS`.
        ``"edge"``: the edge-aligned initialisation (Canny, segments, scores,
        reduction, kernel pairs, background kernels, experts).  ``"grid"``:
        the baseline, a regular grid with as many kernels as the edge method
        gives for the same image and parameters, experts initialised the same
        way.  ``"s-smoe"``: one kernel per DBSCAN superpixel, steered by the
        segment's shape (Li et al., VCIP 2023).  ``"as-smoe"``: per-segment
        SMoE fits with kernel sparsification, exported into one model (Li et
        al., arXiv 2409.10101).  See :mod:`smoe_gui.core.methods.segment.segment_init`.
        With ``params.n_kernels = N > 0`` every method yields between
        ``0.95·N`` and ``N`` kernels: the segment methods exactly ``N`` (by
        construction), edge and grid through the planner
        ``budget.plan_kernels`` (which chooses ``max_pts`` and the background
        spacing; the returned ``params`` carry its choice).
    workers : int, optional
        Processes for the AS-SMoE local fits (default: in this process).

    Returns
    -------
    Initialization
        Every stage's output, the model, the expert PSNR history and the time
        of each stage (ms).  Same input, same output, bit for bit.

    Raises
    ------
    ValueError
        For a bad image (shape, size, values), a bad ``params`` or an unknown
        ``method``.
    """
    from ..io.image import as_channels, check_image, luma
    from .edge.placement import grid_kernels
    from .experts import initialize_experts

    if params is None:
        params = Params()
    if not isinstance(params, Params):
        raise ValueError(f"params must be a Params, got {type(params).__name__}")
    check_method(method)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 3:
        check_image(arr, colour=True)  # the message names the input, not a converted copy
        arr = as_channels(arr, params.channels)
    elif arr.ndim == 2 and params.channels == "rgb":
        arr = as_channels(check_image(arr), "rgb")
    img = check_image(arr, colour=True)
    h, w = img.shape[:2]
    if params.n_kernels > 0 and method not in SEGMENT_METHODS:
        params = _planned(luma(img), params, method)
    timings: dict[str, float] = {}
    segment_map: NDArray[np.int32] | None = None
    kernel_segment = np.zeros(0, dtype=np.intp)
    targets: NDArray[np.float64] | None = None
    if method in SEGMENT_METHODS:
        segment_map, kernels, notes = _segment_stages(luma(img), params, method, timings, workers)
        mu, A, log_alpha = kernels.mu, kernels.A, kernels.log_alpha
        # gray: each kernel's mean over its pixels; colour: the samples at the centres
        targets = kernels.values if img.ndim == 2 else None
        kernel_segment = kernels.segment
        edges = np.zeros((h, w), dtype=bool)
        segments = np.zeros((0, 4), dtype=np.float64)
        scores = np.zeros(0, dtype=np.float64)
        reduced = np.zeros((0, 3), dtype=np.float64)
        salient = np.zeros(0, dtype=bool)
        owner = np.zeros(0, dtype=np.intp)
        n_background, eps = 0, 0.0
    else:
        stages = edge_stages(luma(img), params, timings)
        notes = list(stages.notes)
    if method == "edge":
        edges, segments, scores = stages.edges, stages.segments, stages.scores
        reduced, salient, owner = stages.reduced, stages.salient, stages.owner
        mu, A, log_alpha = stages.mu, stages.A, stages.log_alpha
        n_background, eps = stages.n_background, stages.eps
    elif method == "grid":
        start = time.perf_counter()
        count = stages.mu.shape[0]
        mu, A, log_alpha = grid_kernels(count, h, w)
        timings["placement"] += (time.perf_counter() - start) * 1000.0
        notes = [f"grid baseline: {count} kernels, as many as the edge method gives"]
        edges = np.zeros((h, w), dtype=bool)
        segments = np.zeros((0, 4), dtype=np.float64)
        scores = np.zeros(0, dtype=np.float64)
        reduced = np.zeros((0, 3), dtype=np.float64)
        salient = np.zeros(0, dtype=bool)
        owner = np.zeros(0, dtype=np.intp)
        n_background, eps = 0, 0.0
    start = time.perf_counter()
    m, history, reconstruction = initialize_experts(
        img, mu, A, log_alpha, params.expert_eta, params.expert_iters, targets=targets,
        stop=params.expert_stop, method=params.experts,
    )
    timings["experts"] = (time.perf_counter() - start) * 1000.0
    model = SmoeModel(mu, A, m, log_alpha, h, w)
    return Initialization(
        method=method,
        params=params,
        image=img,
        edges=edges,
        segments=segments,
        scores=scores,
        reduced=reduced,
        salient=salient,
        model=model,
        n_background=int(n_background),
        expert_psnr=[float(v) for v in history],
        timings_ms={name: float(timings[name]) for name in STAGES_BY_METHOD[method]},
        notes=tuple(notes),
        reduction_eps=float(eps),
        segment_owner=owner,
        reconstruction=reconstruction,
        segment_map=segment_map,
        kernel_segment=kernel_segment,
    )
