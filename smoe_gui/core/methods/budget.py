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
rule is in :mod:`smoe_gui.core.methods.segment.segment_init`).  Each method
brings its own planner (its ``plan``, :class:`smoe_gui.core.registry.Method`);
the edge method's search is :mod:`smoe_gui.core.methods.edge.planner`;
:data:`PLANNERS` reads them from the registry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .. import registry
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


class _Planners(Mapping[str, Callable[[NDArray[np.float32], Params, int], KernelPlan]]):
    """The planner of each registered method (``registry.get(name).plan``), read live."""

    def __getitem__(self, name: str) -> Callable[[NDArray[np.float32], Params, int], KernelPlan]:
        try:
            return registry.get(name).plan
        except ValueError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(registry.names())

    def __len__(self) -> int:
        return len(registry.names())


#: Planner of each method: ``(image, params, budget) -> KernelPlan`` (each
#: method's ``plan``; the edge method's is :mod:`smoe_gui.core.methods.edge.planner`).
PLANNERS: Mapping[str, Callable[[NDArray[np.float32], Params, int], KernelPlan]] = _Planners()


def plan_budget(
    image: NDArray[np.float32], params: Params, method: str, n_kernels: int
) -> KernelPlan:
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
