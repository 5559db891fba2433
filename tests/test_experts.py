"""Fast expert initialisation against the plain dense computation."""

from __future__ import annotations

import numpy as np
import pytest

from smoe_gui.core.methods.experts import initialize_experts, sample_bilinear
from smoe_gui.core.metrics import mse, psnr, psnr_from_mse
from smoe_gui.core.model import (
    SmoeModel,
    dense_gate,
    dense_logits,
    dense_render,
    grid_points,
    pixel_grid,
)


def dense_reference(image: np.ndarray, mu: np.ndarray, A: np.ndarray, la: np.ndarray,
                    eta: float, iters: int) -> tuple[np.ndarray, list[float]]:
    """Every kernel at every pixel and at every centre, float64 (a fixed count of
    iterations, the last iterate; gray or colour)."""
    h, w = image.shape[:2]
    target = sample_bilinear(image, mu)
    m = target.copy()
    model = SmoeModel(mu, A, m, la, h, w)
    logits = dense_logits(model, mu)
    gate = np.exp(logits - logits.max(axis=1, keepdims=True))
    gate /= gate.sum(axis=1, keepdims=True)
    history = [psnr(dense_render(model.replace(m=m)), image)]
    for _ in range(iters):
        m = m + eta * (target - gate @ m)
        history.append(psnr(dense_render(model.replace(m=m)), image))
    return m, history


def pair_like_model(h: int, w: int, spacing: float, delta: float, seed: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Isotropic kernels as the edge initialisation places them (A = I/(√2Δμ), α = 1)."""
    rng = np.random.default_rng(seed)
    g = np.stack(np.meshgrid(np.arange(spacing / 2, w, spacing),
                             np.arange(spacing / 2, h, spacing)), -1).reshape(-1, 2)
    mu = g + rng.uniform(-spacing / 3, spacing / 3, g.shape)
    A = np.tile(np.eye(2) / (np.sqrt(2) * delta), (len(mu), 1, 1))
    return mu, A, np.zeros(len(mu))


def test_matches_dense_on_random_anisotropic_kernels(synthetic_image: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    h, w = synthetic_image.shape
    k = 90
    mu = rng.uniform([-3, -3], [w + 2, h + 2], (k, 2))  # some centres outside the image
    A = rng.normal(0, 0.3, (k, 2, 2))
    la = rng.normal(0, 1, k)
    m, hist, _ = initialize_experts(synthetic_image, mu, A, la, 0.5, 6, stop="fixed")
    m_ref, hist_ref = dense_reference(synthetic_image, mu, A, la, 0.5, 6)
    assert len(hist) == 7
    assert np.max(np.abs(m - m_ref)) < 1e-6
    assert np.max(np.abs(np.array(hist) - hist_ref)) < 1e-4


def test_matches_dense_on_an_edge_like_model(synthetic_image: np.ndarray) -> None:
    h, w = synthetic_image.shape
    mu, A, la = pair_like_model(h, w, 9.0, 3.0, 1)
    m, hist, _ = initialize_experts(synthetic_image, mu, A, la, 0.1, 10, stop="fixed")
    m_ref, hist_ref = dense_reference(synthetic_image, mu, A, la, 0.1, 10)
    assert np.max(np.abs(m - m_ref)) < 1e-6
    assert np.max(np.abs(np.array(hist) - hist_ref)) < 1e-4


def test_update_converges_at_the_kernel_centres(synthetic_image: np.ndarray) -> None:
    # L̂[μ] -> L[μ]: the convergent sign of eq. (12)
    h, w = synthetic_image.shape
    mu, A, la = pair_like_model(h, w, 8.0, 3.0, 2)
    target = sample_bilinear(synthetic_image, mu)

    def centre_error(m: np.ndarray) -> float:
        model = SmoeModel(mu, A, m, la, h, w)
        logits = dense_logits(model, mu)
        gate = np.exp(logits - logits.max(axis=1, keepdims=True))
        gate /= gate.sum(axis=1, keepdims=True)
        return float(np.max(np.abs(gate @ m - target)))

    errors = [centre_error(initialize_experts(synthetic_image, mu, A, la, 0.5, n, stop="fixed")[0])
              for n in (0, 5, 50)]
    assert errors[0] > 0.02
    assert errors[1] < errors[0] and errors[2] < 0.1 * errors[0]


def test_zero_iterations_give_the_samples(synthetic_image: np.ndarray) -> None:
    h, w = synthetic_image.shape
    mu, A, la = pair_like_model(h, w, 10.0, 3.0, 4)
    m, hist, _ = initialize_experts(synthetic_image, mu, A, la, 0.1, 0)
    assert len(hist) == 1
    np.testing.assert_array_equal(m, sample_bilinear(synthetic_image, mu))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"eta": -0.1}, "eta"),
        ({"iters": -1}, "iters"),
        ({"mu": np.zeros((3, 3))}, "expected"),
        ({"log_alpha": np.array([np.nan, 0.0, 0.0])}, "NaN"),
        ({"image": np.zeros(5, dtype=np.float32)}, "2-D"),
        ({"stop": "never"}, "stop"),
        ({"method": "magic"}, "method"),
    ],
)
def test_bad_input_is_refused(change: dict, message: str) -> None:
    args = {
        "image": np.full((8, 8), 0.5, dtype=np.float32),
        "mu": np.array([[1.0, 1.0], [4.0, 4.0], [6.0, 2.0]]),
        "A": np.tile(np.eye(2) * 0.3, (3, 1, 1)),
        "log_alpha": np.zeros(3),
        "eta": 0.1,
        "iters": 2,
    }
    args.update(change)
    with pytest.raises(ValueError, match=message):
        initialize_experts(**args)


def mixed_scale_model(h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Isotropic kernels from the narrowest Δμ (0.25 px) to background width (12 px),
    with random weights: rows where a narrow kernel's row factor dwarfs every
    term at some pixel take the exact fallback of the separable evaluation."""
    rng = np.random.default_rng(seed)
    k = 60
    mu = rng.uniform([0, 0], [w, h], (k, 2))
    sigma = np.exp(rng.uniform(np.log(0.25), np.log(12.0), k))
    A = np.eye(2)[None] / (np.sqrt(2) * sigma)[:, None, None]
    return mu, A, rng.normal(0, 2, k)


@pytest.mark.parametrize(("seed", "crop"), [(0, (96, 128)), (1, (90, 121)), (2, (37, 100))])
def test_reconstruction_of_mixed_scale_isotropic_kernels_matches_dense(
    synthetic_image: np.ndarray, seed: int, crop: tuple[int, int]
) -> None:
    # crops that are not whole 16-pixel blocks exercise the partial blocks
    synthetic_image = np.ascontiguousarray(synthetic_image[: crop[0], : crop[1]])
    h, w = synthetic_image.shape
    mu, A, la = mixed_scale_model(h, w, seed)
    m, hist, recon = initialize_experts(synthetic_image, mu, A, la, 0.2, 4, stop="fixed")
    m_ref, hist_ref = dense_reference(synthetic_image, mu, A, la, 0.2, 4)
    expected = dense_render(SmoeModel(mu, A, m_ref, la, h, w))
    assert recon.shape == (h, w) and recon.dtype == np.float32
    assert np.max(np.abs(recon - expected)) < 2e-6
    assert np.max(np.abs(np.array(hist) - hist_ref)) < 1e-4


def test_reconstruction_of_rotated_kernels_matches_dense(synthetic_image: np.ndarray) -> None:
    # anisotropic kernels (s12 != 0) take the full quadratic form in every block
    h, w = synthetic_image.shape
    mu, A, la = mixed_scale_model(h, w, 3)
    rot = np.array([[np.cos(0.4), -np.sin(0.4)], [np.sin(0.4), np.cos(0.4)]])
    A = A @ np.diag([1.0, 0.4]) @ rot
    _, _, recon = initialize_experts(synthetic_image, mu, A, la, 0.2, 3, stop="fixed")
    m_ref, _ = dense_reference(synthetic_image, mu, A, la, 0.2, 3)
    expected = dense_render(SmoeModel(mu, A, m_ref, la, h, w))
    assert np.max(np.abs(recon - expected)) < 2e-6


def test_pixels_far_below_their_rows_best_logit_are_exact() -> None:
    # a narrow kernel with a large weight dominates every row of the first block
    # in the row factor, while at the block's right side two faint wide kernels
    # share the gate: their terms there are e^-90 of the row's best, beyond
    # the range where the separable factors keep their precision
    h, w = 32, 40
    yy, xx = np.mgrid[0:h, 0:w]
    image = (0.1 + 0.8 * yy / h + 0.05 * xx / w).astype(np.float32)
    sig = np.array([0.5, 6.0, 6.0])
    mu = np.array([[2.0, 8.0], [20.0, 5.0], [20.0, 12.0]])
    A = np.eye(2)[None] / (np.sqrt(2) * sig)[:, None, None]
    la = np.array([0.0, -90.0, -90.0])
    m, _, recon = initialize_experts(image, mu, A, la, 0.1, 0)
    expected = dense_render(SmoeModel(mu, A, m, la, h, w))
    assert abs(expected[8, 15] - 0.5 * (m[1] + m[2])) > 1e-3  # B and C do not share evenly
    assert np.max(np.abs(recon - expected)) < 2e-6


def dense_iterates(image: np.ndarray, mu: np.ndarray, A: np.ndarray, la: np.ndarray,
                   eta: float, iters: int) -> tuple[list[np.ndarray], list[float]]:
    """Every iterate of the refinement and its whole-image MSE, dense float64."""
    h, w = image.shape[:2]
    target = sample_bilinear(image, mu)
    model = SmoeModel(mu, A, target, la, h, w)
    logits = dense_logits(model, mu)
    gate = np.exp(logits - logits.max(axis=1, keepdims=True))
    gate /= gate.sum(axis=1, keepdims=True)
    iterates = [target]
    for _ in range(iters):
        iterates.append(iterates[-1] + eta * (target - gate @ iterates[-1]))
    errors = [mse(dense_render(model.replace(m=m)), image) for m in iterates]
    return iterates, errors


def dense_least_squares(image: np.ndarray, mu: np.ndarray, A: np.ndarray, la: np.ndarray
                        ) -> np.ndarray:
    h, w = image.shape[:2]
    model = SmoeModel(mu, A, np.zeros(len(mu)), la, h, w)
    gate = dense_gate(model, grid_points(*pixel_grid(h, w)))
    y = image.reshape(h * w, -1).astype(np.float64)
    return np.linalg.lstsq(gate, y, rcond=None)[0]


def colour_image(synthetic_image: np.ndarray) -> np.ndarray:
    """A colour image whose channels differ (gradients and the synthetic shapes)."""
    h, w = synthetic_image.shape
    yy, xx = np.mgrid[0:h, 0:w]
    return np.ascontiguousarray(np.stack(
        [synthetic_image, 0.2 + 0.6 * xx / w, 1.0 - 0.8 * synthetic_image * yy / h], axis=2
    ).astype(np.float32))


def test_colour_experts_are_the_gray_experts_of_each_channel(synthetic_image: np.ndarray) -> None:
    image = colour_image(synthetic_image)
    h, w = synthetic_image.shape
    mu, A, la = pair_like_model(h, w, 9.0, 3.0, 6)
    m, hist, recon = initialize_experts(image, mu, A, la, 0.3, 5, stop="fixed")
    assert m.shape == (len(mu), 3) and recon.shape == (h, w, 3) and len(hist) == 6
    m_ref, _ = dense_reference(image, mu, A, la, 0.3, 5)
    assert np.max(np.abs(m - m_ref)) < 1e-6
    for c in range(3):  # every channel refines alone on the same gate
        m_c, _, _ = initialize_experts(image[:, :, c], mu, A, la, 0.3, 5, stop="fixed")
        np.testing.assert_allclose(m[:, c], m_c, atol=1e-12)
    expected = dense_render(SmoeModel(mu, A, m_ref, la, h, w))
    assert np.max(np.abs(recon - expected)) < 2e-6
    # PSNR over RGB: the MSE averaged over all channels, as metrics.psnr
    assert hist[-1] == pytest.approx(psnr(expected, image), abs=1e-4)


@pytest.mark.parametrize("colour", [False, True])
def test_mse_stop_keeps_the_best_iterate(synthetic_image: np.ndarray, colour: bool) -> None:
    # the refinement fits the centres, not the whole image: with a large step the
    # whole-image MSE falls for two iterations, then rises
    image = colour_image(synthetic_image) if colour else synthetic_image
    h, w = synthetic_image.shape
    mu, A, la = pair_like_model(h, w, 6.0, 3.0, 2)
    eta, cap = 1.5, 15
    iterates, errors = dense_iterates(image, mu, A, la, eta, cap)
    first_rise = next(i for i in range(1, cap + 1) if errors[i] >= errors[i - 1])
    assert 1 < first_rise < cap  # the case really stops early
    m, hist, recon = initialize_experts(image, mu, A, la, eta, cap)  # the default: stop="mse"
    assert len(hist) == first_rise + 1  # up to and with the first iterate that did not improve
    best = first_rise - 1
    assert np.max(np.abs(m - iterates[best])) < 1e-6
    np.testing.assert_allclose(hist, [psnr_from_mse(e) for e in errors[: first_rise + 1]],
                               atol=1e-4)
    # never worse than the best iterate seen, and the same PSNR as metrics.psnr
    assert max(hist) == pytest.approx(hist[best])
    kept = dense_render(SmoeModel(mu, A, m, la, h, w))
    assert psnr(kept, image) == pytest.approx(max(hist), abs=1e-4)
    assert np.max(np.abs(recon - kept)) < 2e-6
    # the fixed count keeps the last, worse iterate
    m_fixed, hist_fixed, _ = initialize_experts(image, mu, A, la, eta, cap, stop="fixed")
    assert len(hist_fixed) == cap + 1 and hist_fixed[-1] < max(hist)
    assert np.max(np.abs(m_fixed - iterates[-1])) < 1e-6


def test_mse_stop_runs_to_the_cap_while_the_mse_falls(synthetic_image: np.ndarray) -> None:
    h, w = synthetic_image.shape
    mu, A, la = pair_like_model(h, w, 9.0, 3.0, 1)
    _, errors = dense_iterates(synthetic_image, mu, A, la, 0.1, 14)
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False))
    m, hist, _ = initialize_experts(synthetic_image, mu, A, la, 0.1, 14)
    m_fixed, hist_fixed, _ = initialize_experts(synthetic_image, mu, A, la, 0.1, 14, stop="fixed")
    assert len(hist) == 15
    np.testing.assert_array_equal(m, m_fixed)
    np.testing.assert_allclose(hist, hist_fixed, atol=1e-9)


@pytest.mark.parametrize("colour", [False, True])
def test_least_squares_experts_are_optimal_for_the_gate(synthetic_image: np.ndarray,
                                                        colour: bool) -> None:
    image = colour_image(synthetic_image) if colour else synthetic_image
    h, w = synthetic_image.shape
    mu, A, la = pair_like_model(h, w, 9.0, 3.0, 3)
    m, hist, recon = initialize_experts(image, mu, A, la, 0.1, 10, method="lstsq")
    assert len(hist) == 2 and m.shape == ((len(mu), 3) if colour else (len(mu),))
    expected = dense_render(SmoeModel(mu, A, m, la, h, w))
    assert np.max(np.abs(recon - expected)) < 2e-6
    assert hist[1] == pytest.approx(psnr(expected, image), abs=1e-4)
    reference = dense_least_squares(image, mu, A, la).reshape(m.shape)
    best = mse(dense_render(SmoeModel(mu, A, reference, la, h, w)), image)
    assert mse(expected, image) <= best * (1 + 1e-6) + 1e-12
    # better than (or as good as) every refinement of the same gate
    for stop in ("mse", "fixed"):
        for eta in (0.1, 1.0):
            _, hist_r, _ = initialize_experts(image, mu, A, la, eta, 20, stop=stop)
            assert hist[1] >= max(hist_r) - 1e-6


def test_given_targets_replace_the_samples(synthetic_image: np.ndarray) -> None:
    image = colour_image(synthetic_image)
    h, w = synthetic_image.shape
    mu, A, la = pair_like_model(h, w, 10.0, 3.0, 5)
    targets = np.random.default_rng(0).uniform(0, 1, (len(mu), 3))
    m, hist, _ = initialize_experts(image, mu, A, la, 0.1, 0, targets=targets)
    np.testing.assert_array_equal(m, targets)
    with pytest.raises(ValueError, match="targets"):
        initialize_experts(image, mu, A, la, 0.1, 0, targets=targets[:, 0])
