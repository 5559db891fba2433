"""What every method shares: its result (:class:`Initialization`), what its
placement stages give (:class:`Placement`) and :class:`BaseMethod`, the
:class:`smoe_gui.core.registry.Method` protocol with the shared stages.

A method is a :class:`BaseMethod` whose ``place`` function turns an image into
kernels (centres, steering matrices, gate weights) and, where it has them, the
stage outputs the window draws (edges, segments, superpixels).  ``initialize``
checks the input, asks the method's kernel-budget planner for ``n_kernels``
(when the method plans), runs ``place``, then the expert stage every method
shares (:func:`smoe_gui.core.methods.experts.initialize_experts`), and returns an
:class:`Initialization`.  Stage outputs a method does not make are empty.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..model import SmoeModel
from ..params import Params
from ..registry import TRAINING_TEXT, KernelKind, LectureStep
from .budget import KernelPlan

__all__ = ["BaseMethod", "Initialization", "Placement", "PlaceFunction", "PlanFunction"]


@dataclass(frozen=True, eq=False)
class Initialization:
    """Result of a method's ``initialize``: every stage's output.

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
        """Number of edge-pair kernels (``2M``; 0 for a method without reduced segments)."""
        return self.model.n_kernels - self.n_background if len(self.reduced) else 0

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


@dataclass(frozen=True, eq=False)
class Placement:
    """What a method's placement stages give: the kernels, and the stage
    outputs it has (the others stay None and become empty in the result).

    Attributes
    ----------
    mu : (K, 2) float64
        Kernel centres (x, y) in pixels.
    A : (K, 2, 2) float64
        Steering matrices (lower triangular, the covariance's Cholesky factor inverse).
    log_alpha : (K,) float64
        Log gate weights.
    notes : tuple of str
        Messages for the user.
    targets : (K,) float64 or None
        Start values of the experts (gray images only; None: the image at each centre).
    edges, segments, scores, reduced, salient, owner, eps, n_background :
        The edge method's stage outputs (see :class:`Initialization`).
    segment_map, kernel_segment :
        The segment methods' superpixels and each kernel's segment.
    """

    mu: NDArray[np.float64]
    A: NDArray[np.float64]
    log_alpha: NDArray[np.float64]
    notes: tuple[str, ...] = ()
    targets: NDArray[np.float64] | None = None
    edges: NDArray[np.bool_] | None = None
    segments: NDArray[np.float64] | None = None
    scores: NDArray[np.float64] | None = None
    reduced: NDArray[np.float64] | None = None
    salient: NDArray[np.bool_] | None = None
    owner: NDArray[np.intp] | None = None
    eps: float = 0.0
    n_background: int = 0
    segment_map: NDArray[np.int32] | None = None
    kernel_segment: NDArray[np.intp] | None = None


#: ``place(image, params, timings, workers) -> Placement``: ``image`` is (H, W)
#: or (H, W, 3) float32 in [0, 1] (checked, in ``params.channels``); the
#: function adds each of its stages' wall-clock milliseconds to ``timings``.
PlaceFunction = Callable[[NDArray[np.float32], Params, dict[str, float], "int | None"], Placement]
#: ``plan(image, params, budget) -> KernelPlan``
#: (see :func:`smoe_gui.core.methods.budget.plan_budget`).
PlanFunction = Callable[[NDArray[np.float32], Params, int], KernelPlan]


@dataclass(frozen=True, eq=False)
class BaseMethod:
    """A method: its description (the :class:`~smoe_gui.core.registry.Method`
    attributes) and its ``place`` function; ``initialize`` adds the rest.

    Attributes
    ----------
    name, label : str
        See :class:`smoe_gui.core.registry.Method`.
    place : PlaceFunction
        The method's own stages.
    stages : tuple of str
        Stage names in order (``"experts"`` last: ``initialize`` times it).
    planner : PlanFunction or None
        The kernel-budget planner; None: the method takes ``n_kernels`` as
        given and the plan is ``n_kernels = min(N, H·W)``.
    plans_budget : bool
        Whether ``initialize`` asks ``planner`` for ``params.n_kernels`` kernels
        before placing (methods that count their kernels only by placing them).
    param_groups, reads, lecture, stage_titles, kernel_kinds, legend, hue, plot_style :
        See :class:`smoe_gui.core.registry.Method` (``reads`` is checked
        against the parameter table: names of its ``param_groups``).
    no_stage_text : mapping of str to str
        Captions of stage views 1-3 it has no stage for (view name -> text).
    view_counts : mapping of str to str
        Views captioned "name · count" instead (view name -> key of the counts).
    curve_name : str
        Legend text of its training curve ("" gives "<name> init").
    summary : callable or None
        ``summary(init) -> str``: the status bar's counts (None: kernels only).
    long_name : str
        Its short name in running text ("AS-SMoE"); "" gives ``name``.
    reports_progress : bool
        Whether its initialisation is long and reports ``(done, total)`` through
        :mod:`smoe_gui.core.work` (the window then shows progress and Cancel).
    """

    name: str
    label: str
    place: PlaceFunction
    stages: tuple[str, ...] = ("placement", "experts")
    planner: PlanFunction | None = None
    plans_budget: bool = False
    param_groups: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    lecture: tuple[LectureStep, ...] = ()
    stage_titles: Mapping[str, str] = field(default_factory=dict)
    no_stage_text: Mapping[str, str] = field(default_factory=dict)
    view_counts: Mapping[str, str] = field(default_factory=dict)
    kernel_kinds: tuple[KernelKind, ...] = ()
    legend: tuple[str, ...] = ()
    hue: int = 0
    plot_style: Mapping[str, str] = field(default_factory=dict)
    curve_name: str = ""
    summary: Callable[[Initialization], str] | None = None
    long_name: str = ""
    reports_progress: bool = False

    def __post_init__(self) -> None:
        if not self.stages or self.stages[-1] != "experts":
            raise ValueError(f"method {self.name!r}: its stages must end with 'experts'")
        if self.reads:
            from ..params import PARAM_SPECS

            groups = {spec.name: spec.group for spec in PARAM_SPECS}
            stray = [n for n in self.reads if groups.get(n) not in self.param_groups]
            if stray:
                raise ValueError(
                    f"method {self.name!r}: reads {', '.join(stray)}, not parameters of its "
                    f"groups {', '.join(self.param_groups) or '(none)'}"
                )
        if not self.curve_name:
            object.__setattr__(self, "curve_name", f"{self.name} init")
        if not self.kernel_kinds:
            object.__setattr__(self, "kernel_kinds", (KernelKind(self.name, self.name, self.hue),))
        if not self.lecture:  # a plain lecture: its kernels, the reconstruction, the training
            views = ("kernels", "reconstruction")
            object.__setattr__(self, "lecture", (
                LectureStep("1 Kernels", f"{self.label}: the initial kernels.", views[:1]),
                LectureStep(
                    "2 Reconstruction",
                    "Each pixel is a softmax-weighted mix of the experts: the initial model, "
                    "before any training.",
                    views,
                ),
                LectureStep("3 Training", TRAINING_TEXT, views, training=True),
            ))

    def plan(self, image: NDArray[Any], params: Params, budget: int) -> KernelPlan:
        """Parameters for at most ``budget`` initial kernels: the planner's, or
        ``n_kernels = budget`` (``min(budget, H·W)`` kernels) without one."""
        if self.planner is not None:
            return self.planner(image, params, budget)
        count = min(int(budget), int(image.shape[0]) * int(image.shape[1]))
        planned = params.replace(n_kernels=int(budget))
        return KernelPlan(self.name, int(budget), planned, count, 0, 0)

    def caption(self, view: str, stages: str, counts: Mapping[str, int]) -> str:
        """Caption of stage view ``view`` for a result of this method (see
        :class:`smoe_gui.core.registry.Method`)."""
        if view in self.view_counts:
            return f"{self.name} · {int(counts.get(self.view_counts[view], 0)):,}"
        return self.no_stage_text.get(view, stages)

    def summary_text(self, init: Initialization) -> str:
        """The status bar's counts of ``init``."""
        if self.summary is not None:
            return self.summary(init)
        return f"{self.name}: kernels {init.model.n_kernels:,}"

    def initialize(
        self, image: NDArray[Any], params: Params | None = None, *, workers: int | None = None
    ) -> Initialization:
        """Initialise an SMoE model of ``image`` with this method (see
        :func:`smoe_gui.core.methods.pipeline.initialize` for the parameters,
        the result and the errors)."""
        from ..io.image import as_channels, check_image, luma
        from .experts import initialize_experts

        if params is None:
            params = Params()
        if not isinstance(params, Params):
            raise ValueError(f"params must be a Params, got {type(params).__name__}")
        arr = np.asarray(image)
        if arr.ndim == 3 and arr.shape[2] == 3:
            check_image(arr, colour=True)  # the message names the input, not a converted copy
            arr = as_channels(arr, params.channels)
        elif arr.ndim == 2 and params.channels == "rgb":
            arr = as_channels(check_image(arr), "rgb")
        img = check_image(arr, colour=True)
        h, w = img.shape[:2]
        if params.n_kernels > 0 and self.plans_budget:
            # the planner's own initialisations run with the budget off (as plan_budget does)
            planned = self.plan(luma(img), params.replace(n_kernels=0), params.n_kernels)
            params = planned.params.replace(n_kernels=params.n_kernels)
        timings: dict[str, float] = {}
        start = time.perf_counter()
        placed = self.place(img, params, timings, workers)
        if not timings and len(self.stages) > 1:  # an untimed place: its time is the first stage's
            timings[self.stages[0]] = (time.perf_counter() - start) * 1000.0
        start = time.perf_counter()
        model_arrays = initialize_experts(
            img, placed.mu, placed.A, placed.log_alpha, params.expert_eta, params.expert_iters,
            targets=placed.targets, stop=params.expert_stop, method=params.experts,
        )
        m, history, reconstruction = model_arrays
        timings["experts"] = (time.perf_counter() - start) * 1000.0
        model = SmoeModel(placed.mu, placed.A, m, placed.log_alpha, h, w)

        def given(value: Any, empty: Any) -> Any:
            return empty if value is None else value

        return Initialization(
            method=self.name,
            params=params,
            image=img,
            edges=given(placed.edges, np.zeros((h, w), dtype=bool)),
            segments=given(placed.segments, np.zeros((0, 4), dtype=np.float64)),
            scores=given(placed.scores, np.zeros(0, dtype=np.float64)),
            reduced=given(placed.reduced, np.zeros((0, 3), dtype=np.float64)),
            salient=given(placed.salient, np.zeros(0, dtype=bool)),
            model=model,
            n_background=int(placed.n_background),
            expert_psnr=[float(v) for v in history],
            timings_ms={name: float(timings.get(name, 0.0)) for name in self.stages},
            notes=tuple(placed.notes),
            reduction_eps=float(placed.eps),
            segment_owner=given(placed.owner, np.zeros(0, dtype=np.intp)),
            reconstruction=reconstruction,
            segment_map=placed.segment_map,
            kernel_segment=given(placed.kernel_segment, np.zeros(0, dtype=np.intp)),
        )
