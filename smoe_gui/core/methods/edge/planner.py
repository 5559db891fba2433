"""The edge method's kernel-budget planner: the search of ``max_pts`` and the
background spacing (the rule is in :mod:`smoe_gui.core.methods.budget`).

Each probe runs the placement stages only (no expert stage): the count depends
on placement alone.  Canny, the segment scan and the scores run once per
search (:func:`.stages.edge_front`: they depend on neither ``max_pts`` nor the
spacing), the reduction once per ``max_pts``, the placement once per probe.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...params import Params, spec
from ..budget import (
    FILL_TARGET,
    FILL_TRIES,
    MAX_PTS_TRIES,
    SPACING_STEP,
    KernelPlan,
    background_spacing_for,
)
from . import NAME
from .stages import EdgeFront, edge_front, edge_placement, edge_reduction

__all__ = ["plan_edge"]


class _Counter:
    """Edge kernel counts by (max_pts, spacing), each placement made once: the
    edges, segments and scores once per search, the reduction once per max_pts."""

    def __init__(self, image: NDArray[np.float32], params: Params) -> None:
        self.image = image
        self.params = params.replace(expert_iters=0)
        self.counts: dict[tuple[int, float], tuple[int, int]] = {}
        self._front: EdgeFront | None = None
        self._reductions: dict[int, Any] = {}

    def __call__(self, max_pts: int, spacing: float) -> tuple[int, int]:
        key = (int(max_pts), round(float(spacing), 6))
        if key not in self.counts:
            chosen = self.params.replace(max_pts=key[0], background_spacing=key[1])
            if self._front is None:
                self._front = edge_front(self.image, chosen, {})
            red = self._reductions.get(key[0])
            if red is None:
                red = self._reductions[key[0]] = edge_reduction(self._front, chosen, {})
            shape = (int(self.image.shape[0]), int(self.image.shape[1]))
            placed = edge_placement(shape, self._front, red, chosen, {})  # no expert stage
            self.counts[key] = (int(placed.mu.shape[0]), placed.n_background)
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


def plan_edge(image: NDArray[np.float32], params: Params, budget: int) -> KernelPlan:
    """The edge method's plan for ``budget`` kernels (the rule of
    :mod:`smoe_gui.core.methods.budget`); ``params`` as ``plan_budget`` passes them
    (``n_kernels = 0``).  Raises ValueError for a budget too small for the image."""
    spacing = background_spacing_for(image.shape, params, budget)
    count = _Counter(image, params)
    max_pts = _search_max_pts(count, budget, spacing)
    if params.background_kernels and count(max_pts, spacing)[0] < FILL_TARGET * budget:
        _fill_background(count, budget, max_pts, spacing)
    best_pts, best_spacing = count.best(budget)
    n, n_background = count.counts[(best_pts, best_spacing)]
    planned = params.replace(max_pts=best_pts, background_spacing=best_spacing)
    return KernelPlan(NAME, budget, planned, n, n_background, len(count.counts))
