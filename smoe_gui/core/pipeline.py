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

from .model import SmoeModel
from .params import Params, check_method

#: Stage names, in order, as keys of :attr:`Initialization.timings_ms`.
STAGES: tuple[str, ...] = ("edges", "segments", "scores", "reduction", "placement", "experts")
__all__ = ["STAGES", "Initialization", "initialize"]


@dataclass(frozen=True, eq=False)
class Initialization:
    """Result of :func:`initialize`: every stage's output.

    Attributes
    ----------
    method : str
        ``"edge"`` or ``"grid"``.
    params : Params
    image : (H, W) float32, or (H, W, 3) for ``channels = "rgb"``
        The image the model was fitted to (its luma went to Canny).
    edges : (H, W) bool
        Canny edge mask (all False for the grid method).
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
        kernels (edge method); or the grid kernels (grid method).  Its experts
        are ``(K,)`` for a gray image, ``(K, 3)`` for an RGB one.
    n_background : int
        Number of background kernels at the end of the model.
    expert_psnr : list of float
        PSNR (dB, :func:`smoe_gui.core.metrics.psnr_from_mse`, over all
        channels) of the whole reconstruction after sampling the experts
        (entry 0), then after each refinement iteration made (see
        :func:`smoe_gui.core.experts.initialize_experts`: with the default
        ``expert_stop = "mse"`` the model holds the best of them).
    timings_ms : dict of str to float
        Wall-clock milliseconds per stage.
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

    @property
    def luma(self) -> NDArray[np.float32]:
        """(H, W) float32: the image's BT.601 luma (the image itself when gray),
        what the edge stages saw."""
        from .image import luma

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
            "psnr_db": self.expert_psnr[-1] if self.expert_psnr else float("nan"),
            "timings_ms": dict(self.timings_ms),
        }


@dataclass(frozen=True, eq=False)
class _EdgeStages:
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


def _edge_stages(image: NDArray[np.float32], params: Params, timings: dict[str, float]) -> _EdgeStages:
    """Every stage of the edge method before the experts; fills ``timings`` (ms)."""
    from .edges import canny_edges
    from .placement import background_kernels, edge_kernel_pairs
    from .reduction import importance_scores, reduce_segments
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
    red = reduce_segments(segments, scores, params.max_pts, params.salient_fraction)
    lap("reduction")
    mu, A, log_alpha = edge_kernel_pairs(red.reduced, params.delta_mu)
    notes: list[str] = []
    use_background = params.background_kernels
    if red.reduced.shape[0] == 0:
        if edges.any():
            notes.append("no segment of 2 or more pixels among the edges: background kernels only")
        else:
            notes.append("no edges found: background kernels only")
        if not use_background:
            notes.append("background kernels switched on although disabled, so the model is not empty")
            use_background = True
    n_background = 0
    if use_background:
        b_mu, b_A, b_la = background_kernels(mu, h, w, params.background_spacing)
        n_background = b_mu.shape[0]
        mu = np.concatenate([mu, b_mu])
        A = np.concatenate([A, b_A])
        log_alpha = np.concatenate([log_alpha, b_la])
    lap("placement")
    return _EdgeStages(
        edges, segments, scores, red.reduced, red.salient, red.source, red.eps,
        mu, A, log_alpha, n_background, tuple(notes),
    )


def initialize(
    image: NDArray[Any], params: Params | None = None, method: str = "edge"
) -> Initialization:
    """Initialise an SMoE model of ``image``.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) array
        Image in [0, 1], at least 8x8 and at most 4096x4096 pixels.  It is
        taken as ``params.channels`` says (:func:`smoe_gui.core.image.as_channels`):
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
        way.

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
    from .experts import initialize_experts
    from .image import as_channels, check_image, luma
    from .placement import grid_kernels

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
    timings: dict[str, float] = {}
    stages = _edge_stages(luma(img), params, timings)
    notes = list(stages.notes)
    if method == "edge":
        edges, segments, scores = stages.edges, stages.segments, stages.scores
        reduced, salient, owner = stages.reduced, stages.salient, stages.owner
        mu, A, log_alpha = stages.mu, stages.A, stages.log_alpha
        n_background, eps = stages.n_background, stages.eps
    else:
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
        img, mu, A, log_alpha, params.expert_eta, params.expert_iters,
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
        timings_ms={name: float(timings[name]) for name in STAGES},
        notes=tuple(notes),
        reduction_eps=float(eps),
        segment_owner=owner,
        reconstruction=reconstruction,
    )
