"""initialize(): the stages composed, the grid baseline, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from smoe_gui.core import Params, initialize
from smoe_gui.core.methods.pipeline import STAGES
from smoe_gui.core.model import dense_logits
from smoe_gui.core.params import METHODS

FAST = Params(max_pts=40, expert_iters=3, background_spacing=16.0)


@pytest.fixture()
def small_image() -> np.ndarray:
    """48x64: a bright disc, a dark bar and a ramp (small, for the dense expert stage)."""
    h, w = 48, 64
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 0.2 + 0.3 * xx / w
    img[(xx - 20) ** 2 + (yy - 24) ** 2 < 10**2] = 0.9
    img[8:14, 36:60] = 0.05
    return img.astype(np.float32)


def test_edge_method_fills_every_stage(small_image: np.ndarray) -> None:
    r = initialize(small_image, FAST)
    h, w = small_image.shape
    assert r.method == "edge" and r.params is FAST
    assert r.image.dtype == np.float32 and r.image.shape == (h, w)
    assert r.edges.shape == (h, w) and r.edges.dtype == bool and r.edges.any()
    n = r.segments.shape[0]
    assert r.segments.shape == (n, 4) and n > FAST.max_pts
    assert r.scores.shape == (n,)
    m = r.reduced.shape[0]
    assert 0 < m <= FAST.max_pts and r.salient.shape == (m,)
    assert r.salient.sum() == round(0.2 * FAST.max_pts)
    assert r.model.n_kernels == 2 * m + r.n_background
    assert (r.model.height, r.model.width) == (h, w)
    # kernels 2i and 2i+1 sit across reduced[i], Δμ apart
    mu = r.model.mu[: 2 * m]
    np.testing.assert_allclose((mu[0::2] + mu[1::2]) / 2, r.reduced[:, :2], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(mu[0::2] - mu[1::2], axis=1), FAST.delta_mu)
    assert 1 <= len(r.expert_psnr) <= FAST.expert_iters + 1  # expert_stop = "mse" may end early
    fixed = initialize(small_image, FAST.replace(expert_stop="fixed"))
    assert len(fixed.expert_psnr) == FAST.expert_iters + 1
    assert list(r.timings_ms) == list(STAGES) and all(v >= 0 for v in r.timings_ms.values())
    assert r.segment_owner.shape == (n,) and r.segment_owner.max() == m - 1
    assert r.reduction_eps > 0
    assert r.summary()["kernels"] == r.model.n_kernels


def test_is_deterministic_bit_for_bit(small_image: np.ndarray) -> None:
    a = initialize(small_image, FAST)
    b = initialize(small_image.copy(), FAST)
    for name in ("edges", "segments", "scores", "reduced", "salient"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name
    for name in ("mu", "A", "m", "log_alpha"):
        assert getattr(a.model, name).tobytes() == getattr(b.model, name).tobytes(), name
    assert a.expert_psnr == b.expert_psnr


def test_background_kernels_are_switchable(small_image: np.ndarray) -> None:
    on = initialize(small_image, FAST)
    off = initialize(small_image, FAST.replace(background_kernels=False))
    assert on.n_background > 0 and off.n_background == 0
    assert off.model.n_kernels == on.model.n_kernels - on.n_background


def test_constant_image_gives_background_model() -> None:
    flat = np.full((40, 56), 0.6, np.float32)
    r = initialize(flat, FAST)
    assert not r.edges.any() and r.segments.shape == (0, 4) and r.reduced.shape == (0, 3)
    assert r.model.n_kernels == r.n_background > 0
    assert any("no edges" in note for note in r.notes)
    np.testing.assert_allclose(r.model.m, 0.6, atol=1e-6)
    off = initialize(flat, FAST.replace(background_kernels=False))
    assert off.model.n_kernels == off.n_background > 0
    assert any("disabled" in note for note in off.notes)


def test_grid_baseline_has_as_many_kernels(small_image: np.ndarray) -> None:
    edge = initialize(small_image, FAST)
    grid = initialize(small_image, FAST, method="grid")
    assert grid.method == "grid"
    assert grid.model.n_kernels == edge.model.n_kernels
    assert not grid.edges.any() and grid.segments.shape == (0, 4) and grid.reduced.shape == (0, 3)
    assert 1 <= len(grid.expert_psnr) <= FAST.expert_iters + 1
    assert any("grid" in note for note in grid.notes)


def test_expert_refinement_converges_at_the_centres(small_image: np.ndarray) -> None:
    """m ← m + η(L[μ] - L̂[μ]) drives the reconstruction at the centres to the samples."""
    from smoe_gui.core.methods.experts import sample_bilinear

    def residual(iters: int) -> float:
        r = initialize(small_image, FAST.replace(expert_iters=iters, expert_eta=1.0,
                                                 expert_stop="fixed"))
        logits = dense_logits(r.model, r.model.mu)
        gate = np.exp(logits - logits.max(axis=1, keepdims=True))
        gate /= gate.sum(axis=1, keepdims=True)
        target = sample_bilinear(small_image, r.model.mu)
        return float(np.abs(gate @ r.model.m - target).max())

    r0, r40 = residual(0), residual(40)
    assert r40 < 0.2 * r0


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((2, 2), np.float32), "at least"),
        (np.zeros((16, 16, 4), np.float32), "RGB"),
        (np.zeros((16, 16, 3, 1), np.float32), "RGB"),
        (np.full((16, 16), np.nan, np.float32), "NaN"),
        (np.full((16, 16), 2.0, np.float32), r"\[0, 1\]"),
    ],
)
def test_bad_images_raise(image: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        initialize(image, FAST)


def test_bad_method_and_params_raise(small_image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="method"):
        initialize(small_image, FAST, method="random")
    with pytest.raises(ValueError, match="Params"):
        initialize(small_image, {"max_pts": 3})  # type: ignore[arg-type]


@pytest.mark.parametrize("method", METHODS)
def test_reconstruction_is_the_initial_model_rendered(
    synthetic_image: np.ndarray, method: str
) -> None:
    from smoe_gui.core.metrics import psnr
    from smoe_gui.core.rendering.culled import render

    init = initialize(synthetic_image, Params(max_pts=40), method=method)
    assert init.reconstruction is not None and init.reconstruction.shape == synthetic_image.shape
    np.testing.assert_allclose(init.reconstruction, render(init.model), atol=1e-5)
    # the model holds the best iterate (expert_stop = "mse"): one PSNR definition
    assert psnr(init.reconstruction, synthetic_image) == pytest.approx(
        max(init.expert_psnr), abs=1e-3
    )
    assert init.expert_psnr[init.expert_kept] == max(init.expert_psnr)
    assert init.summary()["psnr_db"] == max(init.expert_psnr)


def test_colour_initialisation_shares_the_gray_stages(small_image: np.ndarray) -> None:
    h, w = small_image.shape
    yy, xx = np.mgrid[0:h, 0:w]
    colour = np.stack([small_image, 0.3 + 0.4 * xx / w, 1.0 - small_image], axis=2).astype(
        np.float32
    )
    from smoe_gui.core.io.image import luma
    from smoe_gui.core.metrics import psnr
    from smoe_gui.core.rendering.culled import render

    rgb = initialize(colour, FAST.replace(channels="rgb"))
    gray = initialize(luma(colour), FAST)
    as_gray = initialize(colour, FAST)  # channels = "gray": the luma is modelled
    assert rgb.image.shape == (h, w, 3) and as_gray.image.shape == (h, w)
    np.testing.assert_array_equal(as_gray.image, luma(colour))
    np.testing.assert_array_equal(rgb.luma, luma(colour))
    # Canny and the segments run on the luma: the same kernels, colour experts
    np.testing.assert_array_equal(rgb.edges, gray.edges)
    np.testing.assert_array_equal(rgb.model.mu, gray.model.mu)
    assert rgb.model.m.shape == (rgb.model.n_kernels, 3) and gray.model.m.ndim == 1
    assert rgb.reconstruction is not None and rgb.reconstruction.shape == (h, w, 3)
    np.testing.assert_allclose(rgb.reconstruction, render(rgb.model), atol=1e-5)
    assert psnr(rgb.reconstruction, colour) == pytest.approx(max(rgb.expert_psnr), abs=1e-3)
    grid = initialize(colour, FAST.replace(channels="rgb", experts="lstsq"), method="grid")
    assert grid.model.m.shape == (grid.model.n_kernels, 3) and len(grid.expert_psnr) == 2
    # a gray image asked for in colour gives three equal channels
    tripled = initialize(small_image, FAST.replace(channels="rgb"))
    np.testing.assert_allclose(tripled.model.m[:, 0], tripled.model.m[:, 2])
