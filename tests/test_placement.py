"""Kernel pairs across the segments, background kernels, the grid baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

from smoe_gui.core.methods.edge.placement import background_kernels, edge_kernel_pairs, grid_kernels
from smoe_gui.core.model import SmoeModel, ellipse_axes


def test_pair_positions_for_each_direction() -> None:
    reduced = np.array(
        [[10.0, 20.0, 0.0], [10.0, 20.0, 90.0], [10.0, 20.0, 45.0], [10.0, 20.0, -45.0]]
    )
    mu, A, log_alpha = edge_kernel_pairs(reduced, 4.0)
    h = math.sqrt(2.0)
    expected = [
        [10, 22],
        [10, 18],  # θ = 0: t = (1, 0), n = (0, 1)
        [8, 20],
        [12, 20],  # θ = 90: t = (0, 1), n = (-1, 0)
        [10 - h, 20 + h],
        [10 + h, 20 - h],  # θ = 45: n = (-1, 1)/√2
        [10 + h, 20 + h],
        [10 - h, 20 - h],  # θ = -45: n = (1, 1)/√2
    ]
    np.testing.assert_allclose(mu, expected, atol=1e-12)
    assert np.all(log_alpha == 0.0)


def test_pair_geometry_is_across_the_segment() -> None:
    rng = np.random.default_rng(0)
    reduced = np.column_stack(
        [rng.random(20) * 50, rng.random(20) * 50, rng.choice([0.0, 90.0, 45.0, -45.0], 20)]
    )
    dmu = 2.5
    mu, _, _ = edge_kernel_pairs(reduced, dmu)
    a, b = mu[0::2], mu[1::2]
    np.testing.assert_allclose((a + b) / 2, reduced[:, :2], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(a - b, axis=1), dmu, atol=1e-12)
    rad = np.radians(reduced[:, 2])
    t = np.column_stack([np.cos(rad), np.sin(rad)])
    np.testing.assert_allclose(np.sum((a - b) * t, axis=1), 0.0, atol=1e-12)


def test_pair_width_is_delta_mu() -> None:
    mu, A, la = edge_kernel_pairs(np.array([[5.0, 5.0, 0.0]]), 3.0)
    np.testing.assert_allclose(A[0], np.eye(2) / (math.sqrt(2.0) * 3.0))
    model = SmoeModel(mu, A, np.zeros(2), la, 16, 16)
    np.testing.assert_allclose(model.quadratic_form()[0], np.eye(2) / 18.0)
    np.testing.assert_allclose(ellipse_axes(model)[:, :2], 3.0)


def test_no_reduced_segments_gives_no_pairs() -> None:
    mu, A, la = edge_kernel_pairs(np.zeros((0, 3)), 3.0)
    assert mu.shape == (0, 2) and A.shape == (0, 2, 2) and la.shape == (0,)
    with pytest.raises(ValueError, match="delta_mu"):
        edge_kernel_pairs(np.zeros((1, 3)), 0.0)


def test_background_fills_the_image_when_empty() -> None:
    mu, A, _ = background_kernels(np.zeros((0, 2)), 96, 128, 32.0)
    assert mu.shape == (3 * 4, 2)
    assert np.all((mu >= 0) & (mu <= [127, 95]))
    np.testing.assert_allclose(
        ellipse_axes(SmoeModel(mu, A, np.zeros(12), np.zeros(12), 96, 128))[:, :2], 16.0
    )


def test_background_only_where_no_kernel_is_near() -> None:
    occupied = np.array([[64.0, 48.0], [10.0, 10.0]])
    spacing = 24.0
    all_cells, _, _ = background_kernels(np.zeros((0, 2)), 96, 128, spacing)
    mu, _, _ = background_kernels(occupied, 96, 128, spacing)
    d_kept = cKDTree(occupied).query(mu)[0]
    assert np.all(d_kept > spacing)
    dropped = np.array([c for c in all_cells if not any(np.all(c == m) for m in mu)])
    assert len(dropped) > 0
    assert np.all(cKDTree(occupied).query(dropped)[0] <= spacing)


@pytest.mark.parametrize("count", [1, 2, 7, 97, 100, 1000])
@pytest.mark.parametrize("shape", [(512, 768), (100, 30)])
def test_grid_has_exactly_count_kernels(count: int, shape: tuple[int, int]) -> None:
    h, w = shape
    mu, A, la = grid_kernels(count, h, w)
    assert mu.shape == (count, 2) and A.shape == (count, 2, 2) and la.shape == (count,)
    assert np.all((mu >= -0.5) & (mu <= [w - 0.5, h - 0.5]))
    assert len(np.unique(mu, axis=0)) == count
    rows = np.unique(mu[:, 1])
    per_row = np.array([np.sum(mu[:, 1] == r) for r in rows])
    assert per_row.max() - per_row.min() <= 1


def test_grid_width_follows_spacing() -> None:
    mu, A, la = grid_kernels(96, 96, 128)  # spacing sqrt(128·96/96) ≈ 11.3
    axes = ellipse_axes(SmoeModel(mu, A, np.zeros(96), la, 96, 128))
    np.testing.assert_allclose(axes[:, :2], 0.5 * math.sqrt(128.0), rtol=1e-12)
    with pytest.raises(ValueError):
        grid_kernels(0, 10, 10)
