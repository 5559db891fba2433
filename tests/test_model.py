"""SmoeModel validation and the model math (docs/architecture.md, "The model")."""

from __future__ import annotations

import numpy as np
import pytest

from smoe_gui.core.model import SmoeModel, dense_logits, dense_render, ellipse_axes


def _model(k: int = 3) -> SmoeModel:
    rng = np.random.default_rng(0)
    return SmoeModel(
        mu=rng.uniform(0, 10, (k, 2)),
        A=rng.normal(0, 0.5, (k, 2, 2)),
        m=rng.uniform(0, 1, k),
        log_alpha=rng.normal(0, 0.3, k),
        height=12,
        width=10,
    )


def test_formula_matches_hand_computation() -> None:
    model = _model()
    x = np.array([3.0, 4.0])
    k = model.alpha * np.exp(
        -np.array([np.sum((a.T @ (x - mu)) ** 2) for a, mu in zip(model.A, model.mu, strict=True)])
    )
    expected = float(np.sum(k / k.sum() * model.m))
    assert dense_render(model)[4, 3] == pytest.approx(expected, rel=1e-12)
    assert dense_render(model).shape == (12, 10)


def test_gate_is_finite_far_from_every_kernel() -> None:
    model = SmoeModel(
        mu=[[0.0, 0.0], [1.0, 0.0]],
        A=np.tile(np.eye(2) * 10.0, (2, 1, 1)),
        m=[0.2, 0.8],
        log_alpha=[0.0, 0.0],
        height=8,
        width=8,
    )
    far = np.array([[1e4, 0.0]])
    assert np.all(np.isfinite(dense_logits(model, far)))
    out = dense_render(model, np.array([1e4]), np.array([0.0]))
    # exp(-1e9) underflows, but the log-domain softmax still picks the nearer kernel
    assert out[0, 0] == pytest.approx(0.8)


def test_quadratic_form_and_ellipse_axes() -> None:
    # A = R · diag(1/(√2·a), 1/(√2·b)) gives 1-σ semi-axes a (along R e1) and b
    theta = np.radians(30.0)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    a, b = 6.0, 2.0
    A = rot @ np.diag([1 / (np.sqrt(2) * a), 1 / (np.sqrt(2) * b)])
    model = SmoeModel([[5.0, 5.0]], [A], [0.5], [0.0], 10, 10)
    major, minor, angle = ellipse_axes(model)[0]
    assert (major, minor) == pytest.approx((a, b))
    assert angle == pytest.approx(30.0)
    np.testing.assert_allclose(model.quadratic_form()[0], A @ A.T)


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"mu": np.zeros((3, 3))}, "'mu' has shape"),
        ({"A": np.zeros((3, 2))}, "'A' has shape"),
        ({"log_alpha": np.zeros(2)}, "'log_alpha' has shape"),
        ({"m": [0.1, np.nan, 0.2]}, "NaN"),
        ({"height": 0}, "'height' must be a positive integer"),
        ({"mu": "abc"}, "'mu'"),
    ],
)
def test_invalid_models_are_refused(changes: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        _model().replace(**changes)


def test_empty_model_is_refused() -> None:
    with pytest.raises(ValueError, match="no kernels"):
        SmoeModel(np.zeros((0, 2)), np.zeros((0, 2, 2)), np.zeros(0), np.zeros(0), 8, 8)


def test_arrays_are_read_only_copies() -> None:
    mu = np.zeros((1, 2))
    model = SmoeModel(mu, np.eye(2)[None], [0.5], [0.0], 8, 8)
    mu[0, 0] = 5.0
    assert model.mu[0, 0] == 0.0
    with pytest.raises(ValueError):
        model.mu[0, 0] = 1.0


def test_subset_keeps_selected_kernels() -> None:
    model = _model(4)
    sub = model.subset(np.array([True, False, True, False]))
    assert sub.n_kernels == 2
    np.testing.assert_array_equal(sub.m, model.m[[0, 2]])


def test_colour_experts_share_the_gate() -> None:
    gray = _model(4)
    rng = np.random.default_rng(5)
    m3 = rng.uniform(0, 1, (4, 3))
    colour = gray.replace(m=m3)
    assert (colour.n_channels, colour.is_colour) == (3, True)
    assert (gray.n_channels, gray.is_colour) == (1, False)
    out = dense_render(colour)
    assert out.shape == (12, 10, 3)
    for c in range(3):  # each channel is the gray model with that channel's experts
        np.testing.assert_allclose(out[:, :, c], dense_render(gray.replace(m=m3[:, c])), rtol=1e-12)
    assert colour.subset(np.array([0, 2])).m.shape == (2, 3)


@pytest.mark.parametrize("m", [np.zeros((4, 3, 1)), np.zeros((3, 3)), np.zeros((4, 0))])
def test_bad_expert_shapes_are_refused(m: np.ndarray) -> None:
    with pytest.raises(ValueError, match="has shape"):
        _model(4).replace(m=m)
