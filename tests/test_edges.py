"""Canny with thresholds relative to the largest gradient."""

from __future__ import annotations

import numpy as np
import pytest

from smoe_gui.core.methods.edge.edges import canny_edges


def _step(h: int = 40, w: int = 48, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    img = np.full((h, w), low, dtype=np.float32)
    img[:, w // 2 :] = high
    return img


def test_constant_image_has_no_edges() -> None:
    for sigma in (0.0, 1.5):
        mask = canny_edges(np.full((32, 32), 0.4, np.float32), sigma, 0.1, 0.2)
        assert mask.shape == (32, 32) and mask.dtype == bool and not mask.any()


def test_vertical_step_gives_one_vertical_line() -> None:
    mask = canny_edges(_step(), 1.5, 0.1, 0.2)
    cols = np.flatnonzero(mask.any(axis=0))
    # the edge lies on the step, one pixel wide, and runs over every row
    assert set(cols) <= {23, 24}
    assert len(cols) == 1
    assert mask[:, cols[0]].all()


def test_thresholds_are_relative_to_the_largest_gradient() -> None:
    rng = np.random.default_rng(3)
    texture = rng.random((48, 64)).astype(np.float32)
    strong = canny_edges(texture, 1.0, 0.1, 0.3)
    weak = canny_edges((0.2 + 0.1 * texture).astype(np.float32), 1.0, 0.1, 0.3)
    # a contrast change by a factor 10 leaves (up to int16 rounding) the same mask
    assert strong.any()
    assert np.mean(strong != weak) < 0.002


def test_lower_thresholds_give_a_superset() -> None:
    rng = np.random.default_rng(4)
    img = rng.random((40, 40)).astype(np.float32)
    few = canny_edges(img, 1.0, 0.3, 0.5)
    many = canny_edges(img, 1.0, 0.1, 0.2)
    assert few.sum() < many.sum()
    assert np.all(many[few])


def test_high_threshold_one_keeps_at_most_the_peak_chain() -> None:
    img = _step()
    img[:, :10] = 0.5  # a weaker second step
    mask = canny_edges(img, 1.0, 0.9, 0.9)
    assert mask[:, 24].any() or mask[:, 23].any()
    assert not mask[:, 8:12].any()


@pytest.mark.parametrize(
    "args",
    [(-1.0, 0.1, 0.2), (1.0, -0.1, 0.2), (1.0, 0.1, 1.5), (1.0, 0.5, 0.2)],
)
def test_bad_arguments_raise(args: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError):
        canny_edges(_step(), *args)


def test_non_2d_image_raises() -> None:
    with pytest.raises(ValueError, match="2-D"):
        canny_edges(np.zeros((4, 4, 3), np.float32), 1.0, 0.1, 0.2)
