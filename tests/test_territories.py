"""Gate territories, gate shares and single-kernel weight maps against the
dense gate of :mod:`smoe_gui.core.model`."""

from __future__ import annotations

import numpy as np
import pytest

from smoe_gui.core.labels import label_boundaries
from smoe_gui.core.model import SmoeModel, dense_gate, dense_logits, grid_points
from smoe_gui.core.rendering.culled import output_grid
from smoe_gui.core.rendering.territories import (
    gate_shares,
    gate_territories,
    kernel_weight_map,
    territory_outline,
)


def random_model(k: int, h: int, w: int, seed: int = 0, spread: float = 1.0) -> SmoeModel:
    """Anisotropic kernels of mixed widths and weights (some wide, some needles)."""
    rng = np.random.default_rng(seed)
    mu = np.stack([rng.uniform(-3, w + 3, k), rng.uniform(-3, h + 3, k)], axis=1)
    scale = rng.uniform(0.05, 0.6, (k, 2)) * spread
    scale[: k // 10] *= 0.1  # a tenth of the kernels are wide
    angle = rng.uniform(0, np.pi, k)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.stack([np.stack([c, -s], 1), np.stack([s, c], 1)], 1)
    A = rot * scale[:, None, :]
    return SmoeModel(mu, A, rng.uniform(0, 1, k), rng.normal(0, 1.0, k), h, w)


def dense_reference(model: SmoeModel, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = output_grid(model, height=h, width=w)
    logits = dense_logits(model, grid_points(xs, ys))
    return logits, np.argmax(logits, axis=1).reshape(h, w)


@pytest.mark.parametrize(("k", "h", "w", "oh", "ow"), [
    (60, 40, 56, None, None),
    (300, 70, 90, None, None),
    (300, 70, 90, 33, 47),  # a view smaller than the image
    (120, 50, 50, 101, 99),  # and a larger one
])
def test_territories_equal_the_dense_argmax(
    k: int, h: int, w: int, oh: int | None, ow: int | None
) -> None:
    model = random_model(k, h, w, seed=k + h)
    terr = gate_territories(model, oh, ow)
    gh, gw = (h, w) if oh is None else (oh, ow)
    assert terr.label.shape == (gh, gw) and terr.label.dtype == np.int32
    logits, ref = dense_reference(model, gh, gw)
    top2 = np.sort(logits, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0] > 1e-9).reshape(gh, gw)
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(terr.label[clear], ref[clear])
    # where two kernels tie, the label is one of the tied kernels
    lab = terr.label.ravel()
    best = logits.max(axis=1)
    assert np.all(logits[np.arange(lab.size), lab] >= best - 1e-9)


def test_a_wide_heavy_kernel_owns_more_than_its_ellipse() -> None:
    """The point of the view: territories are not ellipses."""
    mu = np.array([[20.0, 20.0], [30.0, 20.0]])
    A = np.stack([np.eye(2) * 0.05, np.eye(2) * 1.0])  # wide, and narrow
    model = SmoeModel(mu, A, np.array([0.2, 0.8]), np.array([-2.0, 0.0]), 40, 50)
    terr = gate_territories(model)
    areas = terr.areas()
    assert areas.sum() == pytest.approx(40 * 50)
    # the narrow kernel, although heavier, owns only a small disc around its centre
    assert areas[1] < 40
    assert terr.label[20, 30] == 1 and terr.label[0, 0] == 0


def test_areas_fill_and_boundaries() -> None:
    model = random_model(40, 30, 40, seed=3)
    terr = gate_territories(model, 15, 20)
    assert terr.pixel_area == pytest.approx(4.0)
    assert terr.areas().sum() == pytest.approx(30 * 40)
    fill = terr.fill(model.m)
    assert fill.dtype == np.float32
    np.testing.assert_allclose(fill, model.m[terr.label].astype(np.float32))
    with pytest.raises(ValueError, match="one value per kernel"):
        terr.fill(np.zeros(3))
    b = label_boundaries(terr.label)
    lab = terr.label
    expect = np.zeros_like(b)
    for j in range(lab.shape[0]):
        for i in range(lab.shape[1]):
            right = i + 1 < lab.shape[1] and lab[j, i + 1] != lab[j, i]
            down = j + 1 < lab.shape[0] and lab[j + 1, i] != lab[j, i]
            expect[j, i] = right or down
    np.testing.assert_array_equal(b, expect)


def test_outline_of_one_territory() -> None:
    lab = np.zeros((8, 9), dtype=np.int32)
    lab[2:6, 3:8] = 4
    out = territory_outline(lab, 4)
    assert out.sum() == 2 * 5 + 2 * 2  # the ring of a 4x5 rectangle
    assert not out[3:5, 4:7].any() and out[2, 3] and out[5, 7]
    full = territory_outline(np.zeros((3, 3), dtype=np.int32), 0)
    assert full.sum() == 8  # touches the border everywhere but the centre
    with pytest.raises(ValueError, match="2-D"):
        territory_outline(np.zeros(5), 0)


@pytest.mark.parametrize(("oh", "ow"), [(None, None), (23, 31)])
def test_weight_map_equals_the_dense_gate(oh: int | None, ow: int | None) -> None:
    h, w = 45, 60
    model = random_model(200, h, w, seed=11)
    gh, gw = (h, w) if oh is None else (oh, ow)
    xs, ys = output_grid(model, height=gh, width=gw)
    gate = dense_gate(model, grid_points(xs, ys))
    for k in (0, 7, 150, 199):
        wmap = kernel_weight_map(model, k, oh, ow)
        assert wmap.shape == (gh, gw) and wmap.dtype == np.float32
        np.testing.assert_allclose(wmap, gate[:, k].reshape(gh, gw), atol=2e-6)
    with pytest.raises(ValueError, match="does not exist"):
        kernel_weight_map(model, 200)


def test_gate_shares_are_the_mean_weights() -> None:
    h, w = 40, 52
    model = random_model(150, h, w, seed=5)
    shares = gate_shares(model)
    gate = dense_gate(model, grid_points(*output_grid(model)))
    np.testing.assert_allclose(shares, gate.mean(axis=0), atol=1e-6)
    assert shares.sum() == pytest.approx(1.0, abs=1e-6)
    small = gate_shares(model, 20, 26)
    assert small.sum() == pytest.approx(1.0, abs=1e-6)


def test_a_single_kernel_owns_everything() -> None:
    model = SmoeModel(
        np.array([[5.0, 5.0]]), np.eye(2)[None] * 0.3, np.array([0.4]), np.array([0.0]), 12, 10
    )
    terr = gate_territories(model)
    assert (terr.label == 0).all()
    assert not terr.boundaries().any()
    np.testing.assert_allclose(kernel_weight_map(model, 0), 1.0)
    np.testing.assert_allclose(gate_shares(model), [1.0])
