"""The kernel-budget planner: parameters that give a method about ``N`` initial kernels.

Qt-free.  One planner for everything that asks for a kernel count (the
experiments, the benchmarks, the command line): :func:`plan_kernels` returns the
parameters, :func:`plan_budget` the same with the counts it found.

The rule (also in ``docs/experiments.md``), for the edge method and a budget of
``N`` kernels:

1. Background spacing.  A full grid of background kernels may hold at most
   :data:`BACKGROUND_SHARE` of ``N``:
   ``s0 = max(background_spacing, sqrt(H·W / (share·N)))`` (rounded up to
   0.1 px, capped at the parameter's upper limit).  Without it the background
   of a small budget on a large image would leave nothing to the edge pairs.
2. ``max_pts``.  The edge model has ``2·M + n_background`` kernels (``M <=
   max_pts`` reduced segments).  Start at ``max_pts = N // 2``; while the model
   is too big, lower ``max_pts`` by half the excess and to at most
   ``(N - n_background) // 2``; if it fits with room to spare, raise it by half
   the room until one does not fit; then bisect between the largest ``max_pts``
   that fits and the smallest that does not.
3. Fill.  The count moves in steps (the reduction's DBSCAN radius merges tied
   pixel distances at once), so the best ``max_pts`` may stop well short of
   ``N``.  If the model has fewer than :data:`FILL_TARGET` ``· N`` kernels and
   background kernels are on, bisect the background spacing between the
   parameter's lower limit and ``s0`` (to 0.1 px) for the finest spacing whose
   model still fits: finer background cells fill the flat regions the edge
   pairs left, up to nearly ``N``.

The largest count that fits wins (ties: the smaller ``max_pts``, then the
larger spacing).  The expert refinement is switched off during the search (it
does not change the count).  The grid baseline places exactly as many kernels
as the edge method with the same parameters (its placement stages,
``edge.stages.edge_stages``, without the expert stage), so
its plan is the edge plan.  S-SMoE and AS-SMoE need no search: the plan sets
``n_kernels = N`` and the methods meet it exactly (``min(N, H·W)`` kernels; the
rule is in :mod:`smoe_gui.core.methods.segment.segment_init`).  Other methods add an entry to
:data:`PLANNERS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..params import Params, spec

__all__ = [
    "BACKGROUND_SHARE",
    "FILL_TARGET",
    "PLANNERS",
    "KernelPlan",
    "background_spacing_for",
    "plan_budget",
    "plan_kernels",
]

#: Largest share of a kernel budget that a full grid of background kernels may take.
BACKGROUND_SHARE = 0.25
#: Share of the budget below which the planner fills with finer background cells.
FILL_TARGET = 0.95
#: Most initialisations of the ``max_pts`` search once a fitting ``max_pts`` is known.
MAX_PTS_TRIES = 10
#: Most initialisations of the background-spacing fill.
FILL_TRIES = 10
#: Resolution (px) of the background-spacing bisection.
SPACING_STEP = 0.1


@dataclass(frozen=True)
class KernelPlan:
    """A method's parameters for a kernel budget, and what they give.

    Attributes
    ----------
    method : str
        Initialisation method planned for.
    budget : int
        Kernels asked for (``N``).
    params : Params
        The parameters to initialise with (``max_pts`` and
        ``background_spacing`` chosen; the rest as given).
    n_kernels : int
        Initial kernel count with ``params`` (``<= budget``).
    n_background : int
        Background kernels among them (0 for the grid baseline).
    tries : int
        Initialisations the search made.
    """

    method: str
    budget: int
    params: Params
    n_kernels: int
    n_background: int
    tries: int

    @property
    def max_pts(self) -> int:
        """``max_pts`` of the plan."""
        return int(self.params.max_pts)

    @property
    def background_spacing(self) -> float:
        """Background spacing of the plan (px)."""
        return float(self.params.background_spacing)


def background_spacing_for(shape: tuple[int, ...], params: Params, budget: int) -> float:
    """Background-kernel spacing (px) for a kernel budget on an image of ``shape``.

    ``max(background_spacing, sqrt(H·W / (share·budget)))`` with share
    :data:`BACKGROUND_SHARE`, rounded up to 0.1 px and capped at the
    parameter's upper limit: a full grid of background kernels holds at most
    that share of the budget.
    """
    height, width = int(shape[0]), int(shape[1])
    needed = math.sqrt(height * width / (BACKGROUND_SHARE * max(1, budget)))
    limit = spec("background_spacing").high
    return float(min(limit, max(params.background_spacing, math.ceil(needed * 10) / 10)))


class _Counter:
    """Edge kernel counts by (max_pts, spacing), each initialisation made once."""

    def __init__(self, image: NDArray[np.float32], params: Params) -> None:
        self.image = image
        self.params = params.replace(expert_iters=0)
        self.counts: dict[tuple[int, float], tuple[int, int]] = {}

    def __call__(self, max_pts: int, spacing: float) -> tuple[int, int]:
        key = (int(max_pts), round(float(spacing), 6))
        if key not in self.counts:
            from .edge.stages import edge_stages

            chosen = self.params.replace(max_pts=key[0], background_spacing=key[1])
            stages = edge_stages(self.image, chosen, {})  # placement only: no expert stage
            self.counts[key] = (int(stages.mu.shape[0]), stages.n_background)
        return self.counts[key]

    def best(self, budget: int) -> tuple[int, float]:
        """The fitting (max_pts, spacing) with the most kernels."""
        fitting = [key for key, (n, _) in self.counts.items() if n <= budget]
        return max(fitting, key=lambda k: (self.counts[k][0], -k[0], k[1]))


def _search_max_pts(count: _Counter, budget: int, spacing: float) -> int:
    """Step 2 of the rule: the largest ``max_pts`` found whose model fits."""
    tries_before = len(count.counts)
    top = int(spec("max_pts").high)  # a budget beyond what max_pts can give stops there
    max_pts = min(max(1, budget // 2), top)
    too_big: int | None = None
    while True:
        n, n_background = count(max_pts, spacing)
        if n <= budget:
            break
        too_big = max_pts
        lower = min(max_pts - max(1, math.ceil((n - budget) / 2)), (budget - n_background) // 2)
        if max_pts <= 1 or lower < 1:
            raise ValueError(
                f"a budget of {budget} kernels is too small for this image: the edge "
                f"initialisation needs {n} with max_pts={max_pts} ({n_background} background "
                f"kernels at {spacing:g} px spacing)"
            )
        max_pts = lower
    fits = max_pts

    def tries() -> int:
        return len(count.counts) - tries_before

    while too_big is None and tries() < MAX_PTS_TRIES and count(fits, spacing)[0] < budget:
        # the reduction may give fewer than max_pts segments: probe upwards
        up = min(fits + max(1, (budget - count(fits, spacing)[0]) // 2), top)
        if up <= fits:
            break
        if count(up, spacing)[0] <= budget:
            fits = up
        else:
            too_big = up
    while too_big is not None and too_big - fits > 1 and tries() < MAX_PTS_TRIES:
        middle = (fits + too_big) // 2
        if count(middle, spacing)[0] <= budget:
            fits = middle
        else:
            too_big = middle
    return fits


def _fill_background(count: _Counter, budget: int, max_pts: int, spacing: float) -> None:
    """Step 3 of the rule: bisect the background spacing below ``spacing``."""
    low = float(spec("background_spacing").low)
    fits, too_fine = spacing, low  # too_fine is assumed, never initialised: it may be costly
    for _ in range(FILL_TRIES):
        if fits - too_fine <= SPACING_STEP or count(max_pts, fits)[0] == budget:
            return
        middle = round((fits + too_fine) / 2, 1)
        if middle in (fits, too_fine):
            return
        if count(max_pts, middle)[0] <= budget:
            fits = middle
        else:
            too_fine = middle


def _plan_edge(image: NDArray[np.float32], params: Params, budget: int) -> KernelPlan:
    spacing = background_spacing_for(image.shape, params, budget)
    count = _Counter(image, params)
    max_pts = _search_max_pts(count, budget, spacing)
    if params.background_kernels and count(max_pts, spacing)[0] < FILL_TARGET * budget:
        _fill_background(count, budget, max_pts, spacing)
    best_pts, best_spacing = count.best(budget)
    n, n_background = count.counts[(best_pts, best_spacing)]
    planned = params.replace(max_pts=best_pts, background_spacing=best_spacing)
    return KernelPlan("edge", budget, planned, n, n_background, len(count.counts))


def _plan_grid(image: NDArray[np.float32], params: Params, budget: int) -> KernelPlan:
    # the grid baseline places as many kernels as the edge method with the same parameters
    edge = _plan_edge(image, params, budget)
    return KernelPlan("grid", budget, edge.params, edge.n_kernels, 0, edge.tries)


def _plan_segments(method: str) -> Callable[[NDArray[np.float32], Params, int], KernelPlan]:
    """S-SMoE and AS-SMoE take the budget as an input (``n_kernels``) and meet
    it exactly (``min(N, H·W)`` kernels; rule in ``segment_init``): nothing to search."""

    def plan(image: NDArray[np.float32], params: Params, budget: int) -> KernelPlan:
        count = min(budget, int(image.shape[0]) * int(image.shape[1]))
        return KernelPlan(method, budget, params.replace(n_kernels=budget), count, 0, 0)

    return plan


#: Planner of each method: ``(image, params, budget) -> KernelPlan``.
PLANNERS: dict[str, Callable[[NDArray[np.float32], Params, int], KernelPlan]] = {
    "edge": _plan_edge,
    "grid": _plan_grid,
    "s-smoe": _plan_segments("s-smoe"),
    "as-smoe": _plan_segments("as-smoe"),
}


def plan_budget(image: NDArray[np.float32], params: Params, method: str, n_kernels: int) -> KernelPlan:
    """Plan ``method``'s parameters for at most ``n_kernels`` initial kernels.

    Parameters
    ----------
    image : (H, W) float32
        Gray image in [0, 1] (as ``pipeline.initialize`` takes it).
    params : Params
        The parameters to start from; the plan changes ``max_pts`` and
        ``background_spacing`` only.
    method : str
        A method with a planner in :data:`PLANNERS`.
    n_kernels : int
        The budget ``N`` (at least 2).

    Returns
    -------
    KernelPlan
        ``n_kernels`` between ``FILL_TARGET·N`` and ``N`` where the image allows
        (the rule is in the module docstring), never above ``N``.

    Raises
    ------
    ValueError
        For a budget below 2, a method without a planner, or a budget too
        small for the image (the background kernels alone exceed it).
    """
    if isinstance(n_kernels, bool) or not isinstance(n_kernels, int | np.integer) or n_kernels < 2:
        raise ValueError(f"a kernel budget must be a whole number of at least 2, got {n_kernels!r}")
    planner = PLANNERS.get(method)
    if planner is None:
        raise ValueError(
            f"no kernel-budget planner for method {method!r}; planned methods: "
            f"{', '.join(PLANNERS)}"
        )
    # the search's own initialisations run with the budget off (max_pts governs)
    return planner(image, params.replace(n_kernels=0), int(n_kernels))


def plan_kernels(image: NDArray[np.float32], params: Params, method: str, n_kernels: int) -> Params:
    """``params`` with ``max_pts`` and ``background_spacing`` chosen so that
    ``method`` initialises at most ``n_kernels`` kernels, and at least
    ``0.95·n_kernels`` where the image allows.

    Shorthand for ``plan_budget(...).params``; see :func:`plan_budget` for the
    parameters and errors.
    """
    return plan_budget(image, params, method, n_kernels).params
