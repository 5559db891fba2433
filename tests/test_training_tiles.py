"""Tiles that compose (issue 22): the tile phase's frozen context, its width
limit, and the merge of the tiles (smoe_gui.core.train.tiles, .phases)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch

from smoe_gui.core.methods.pipeline import initialize
from smoe_gui.core.metrics import psnr
from smoe_gui.core.params import Params
from smoe_gui.core.rendering.culled import render
from smoe_gui.core.train import phases, tiles
from smoe_gui.core.train.training import loss_band, max_tile_sigma, tile_context, train_tiles
from smoe_gui.core.train.window import cap_width, gate_sigma

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def scene(n: int = 128) -> np.ndarray:
    """Shading, a long diagonal edge, a disc and a long bar: long straight edges on
    which tile-trained kernels grow into needles when nothing stops them."""
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64) / n
    img = 0.3 + 0.3 * xx + 0.1 * np.sin(6 * yy)
    img[(yy - 0.3 - 0.4 * xx) > 0] += 0.3
    img[(xx - 0.6) ** 2 + (yy - 0.65) ** 2 < 0.04] = 0.15
    img[(np.abs(xx - 0.25) < 0.02) & (yy > 0.1)] = 0.9
    return np.clip(img, 0, 1).astype(np.float32)


def iso(sigma: float) -> np.ndarray:
    """A steering matrix of an isotropic gate of standard deviation ``sigma`` px."""
    return np.eye(2) / (math.sqrt(2.0) * sigma)


def test_band_and_width_limit_follow_the_tile_size() -> None:
    assert loss_band(128) == 32 and loss_band(16) == 16 and loss_band(256) == 64
    assert max_tile_sigma(128) == 16.0 and max_tile_sigma(16) == 8.0


def test_gate_sigma_and_the_cap_narrow_only_the_wide_axis() -> None:
    rot = np.array([[math.cos(0.3), -math.sin(0.3)], [math.sin(0.3), math.cos(0.3)]])
    # gate covariance (A Aᵀ)⁻¹/2 with standard deviations 40 px and 3 px along rot's axes
    wide = rot @ np.diag([1 / (math.sqrt(2) * 40.0), 1 / (math.sqrt(2) * 3.0)])
    narrow = iso(5.0)
    A = np.stack([wide, narrow])
    assert np.allclose(gate_sigma(A), [40.0, 5.0])
    t = torch.tensor(A, dtype=torch.float32)
    before = t.clone()
    cap_width(t, torch.tensor([10.0, 10.0], dtype=torch.float64))
    cov = np.linalg.inv(t[0].double().numpy() @ t[0].double().numpy().T) / 2
    w, v = np.linalg.eigh(cov)
    assert np.allclose(np.sqrt(w), [3.0, 10.0], rtol=1e-5)  # the short axis is kept
    assert abs(abs(float(v[:, 1] @ rot[:, 0])) - 1.0) < 1e-5  # and the orientation
    assert torch.equal(t[1], before[1])  # a kernel within its cap is untouched


def test_context_is_every_kernel_that_reaches_the_loss_window() -> None:
    # the loss window x, y in [0, 32); own kernel 0 at its centre
    mu = np.array([[16.0, 16.0], [40.0, 16.0], [300.0, 16.0], [300.0, 16.0], [90.0, 16.0]])
    A = np.stack([iso(4.0), iso(4.0), iso(2.0), iso(150.0), iso(2.0)])
    log_alpha = np.zeros(5)
    others = np.array([False, True, True, True, True])
    got = tile_context(mu, A, log_alpha, others, np.array([0]), (0, 32, 0, 32))
    # the near kernel and the far but wide one reach the window; the far narrow ones do not
    assert got.tolist() == [1, 3]
    # a centre within two bands (the earlier reading) does not make a kernel context
    assert 4 not in got.tolist()
    # dead or own kernels are never context
    assert tile_context(mu, A, log_alpha, np.zeros(5, bool), np.array([0]),
                        (0, 32, 0, 32)).size == 0


def test_tiles_compose_where_the_earlier_reading_lost_5_db() -> None:
    # An edge initialisation of a generated image in 4x4 tiles of 32 px.  Measured
    # (loaded machine, 2 cores): before issue 22 (context by centre within 2 bands,
    # no width limit) the tiles' own reconstructions stitched gave 27.9 dB but the
    # merged model 22.7 dB (merge loss 5.2 dB; start 19.5 dB); now the merge gains
    # 0.5 dB and the end of the tiles is 29.6 dB.
    from bench_fit import before_context

    image = scene(128)
    params = Params(tile_size=32)
    model = initialize(image, params, "edge").model
    start = psnr(render(model), image)

    def merge_figures() -> tuple[float, float]:
        merged, outcomes = train_tiles(image, model, params, device="cpu")
        whole = render(merged)
        stitched = whole.copy()
        for out in outcomes:
            y0, y1, x0, x1 = out.window
            stitched[y0:y1, x0:x1] = out.reconstruction
        return psnr(stitched, image) - psnr(whole, image), psnr(whole, image)

    loss, end = merge_figures()
    assert loss <= 0.3
    assert end > start + 5.0
    # the earlier reading, run by the same code, does not compose: the test can fail
    try:
        phases.tile_context = before_context(loss_band(32))
        phases.max_tile_sigma = lambda tile_size: None  # type: ignore[assignment,return-value]
        old_loss, old_end = merge_figures()
    finally:
        phases.tile_context, phases.max_tile_sigma = tiles.tile_context, tiles.max_tile_sigma
    assert old_loss > 1.0 and old_end < end - 3.0
