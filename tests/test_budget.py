"""The kernel-budget planner (core/budget.py): between 0.95·N and N initial kernels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smoe_gui.core.io.image import load_image
from smoe_gui.core.methods.budget import (
    FILL_TARGET,
    PLANNERS,
    background_spacing_for,
    plan_budget,
    plan_kernels,
)
from smoe_gui.core.methods.pipeline import initialize
from smoe_gui.core.params import Params

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"


@pytest.fixture(scope="module", params=["flowers", "parrots"])
def sample(request: pytest.FixtureRequest) -> np.ndarray:
    return load_image(SAMPLES / f"{request.param}.png")


@pytest.mark.parametrize("budget", [500, 1000, 2000])
def test_edge_and_grid_get_between_95_percent_and_all_of_the_budget(
    sample: np.ndarray, budget: int
) -> None:
    params = Params(expert_iters=1)
    for method in ("edge", "grid"):
        planned = plan_kernels(sample, params, method, budget)
        init = initialize(sample, planned, method)
        assert FILL_TARGET * budget <= init.model.n_kernels <= budget, (
            method,
            init.model.n_kernels,
        )
        # only the two planned fields change
        assert (
            planned.replace(max_pts=params.max_pts, background_spacing=params.background_spacing)
            == params
        )


def test_grid_plan_is_the_edge_plan(synthetic_image: np.ndarray) -> None:
    edge = plan_budget(synthetic_image, Params(), "edge", 60)
    grid = plan_budget(synthetic_image, Params(), "grid", 60)
    assert (
        grid.params == edge.params and grid.n_kernels == edge.n_kernels and grid.n_background == 0
    )
    assert initialize(synthetic_image, grid.params, "grid").model.n_kernels == edge.n_kernels


def test_plan_reports_the_count_it_found(synthetic_image: np.ndarray) -> None:
    plan = plan_budget(synthetic_image, Params(), "edge", 80)
    init = initialize(synthetic_image, plan.params, "edge")
    assert init.model.n_kernels == plan.n_kernels <= 80
    assert init.n_background == plan.n_background
    assert plan.max_pts == plan.params.max_pts and plan.tries >= 1


def test_background_spacing_grows_for_small_budgets() -> None:
    params = Params(background_spacing=10.0)
    assert background_spacing_for((512, 768), params, 100_000) == 10.0
    spacing = background_spacing_for((512, 768), params, 500)
    # a full background grid would hold at most a quarter of the budget
    assert (512 / spacing) * (768 / spacing) <= 0.25 * 500 + 1e-9
    assert spacing > background_spacing_for((512, 768), params, 2000)


def test_a_single_pair_fits_a_tiny_budget(synthetic_image: np.ndarray) -> None:
    plan = plan_budget(synthetic_image, Params(background_spacing=4.0), "edge", 2)
    assert 1 <= plan.n_kernels <= 2


def test_bad_budgets_and_methods_are_value_errors(synthetic_image: np.ndarray) -> None:
    for bad in (1, 0, -5, 2.5, True, "500"):
        with pytest.raises(ValueError, match="kernel budget"):
            plan_kernels(synthetic_image, Params(), "edge", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no kernel-budget planner"):
        plan_kernels(synthetic_image, Params(), "nonsense", 100)
    assert {"edge", "grid"} <= set(PLANNERS)
