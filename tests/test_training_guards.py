"""Fine-tuning never lets the whole-image PSNR collapse, and the whole-image
PSNR is reported during every phase."""

from __future__ import annotations

import math

import numpy as np
import pytest

from smoe_gui.core.events import FitEvent
from smoe_gui.core.metrics import psnr
from smoe_gui.core.model import SmoeModel
from smoe_gui.core.params import Params
from smoe_gui.core.rendering.culled import render
from smoe_gui.core.train import training
from smoe_gui.core.train.training import fit


def run(image: np.ndarray, params: Params, model: SmoeModel) -> list[FitEvent]:
    return list(fit(image, params, init=model, device="cpu"))


def two_region_case() -> tuple[np.ndarray, SmoeModel]:
    """Left half flat (0.2), governed by ONE wide kernel of tiny α; right half
    a texture of narrow kernels of α = 1; plus one kernel of tiny α hidden
    under a strong neighbour, which governs nothing."""
    h, w = 40, 64
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    image = np.where(xx < 32, 0.2, 0.55 + 0.3 * np.sin(xx / 3.0) * np.cos(yy / 4.0)).astype(np.float32)
    cy, cx = np.mgrid[2:h:5, 34:w:5]
    right = np.stack([cx.ravel(), cy.ravel()], axis=1).astype(np.float64)
    mu = np.concatenate([[[12.0, 20.0]], right, [right[10]]])
    k = len(mu)
    A = np.tile(np.eye(2) * 0.3, (k, 1, 1))
    A[0] = np.eye(2) * 0.02  # wide
    m = np.concatenate([[0.2], image[right[:, 1].astype(int), right[:, 0].astype(int)], [0.9]])
    log_alpha = np.zeros(k)
    log_alpha[0] = math.log(4e-4)  # below the threshold, yet it governs the left half alone
    log_alpha[-1] = math.log(1e-7)  # below the threshold and invisible
    return image, SmoeModel(mu, A, m, log_alpha, h, w)


FINETUNE_ONLY = dict(tile_size=32, tile_steps=0, max_steps=12, time_budget=600.0, patience=1000,
                     lr_mu=0.02, lr_A=0.002, lr_m=0.01, lr_alpha=0.001, prune_threshold=1e-3)


def test_fine_tuning_spares_a_small_alpha_kernel_that_governs_a_region() -> None:
    image, model = two_region_case()
    start = psnr(np.clip(render(model), 0, 1), image)
    events = run(image, Params(**FINETUNE_ONLY), model)  # type: ignore[arg-type]
    final = events[-1].model
    assert final is not None
    # the invisible kernel went, the one that owns the left half stayed
    assert final.n_kernels == model.n_kernels - 1
    assert np.any(np.all(np.isclose(final.mu, model.mu[0], atol=0.5), axis=1))
    ft = [e.psnr for e in events if e.phase == "finetune"]
    assert min(ft) > start - 0.5


def test_the_same_case_collapses_without_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """The failure the guard prevents (so the test above can fail)."""
    image, model = two_region_case()
    start = psnr(np.clip(render(model), 0, 1), image)
    monkeypatch.setattr(training, "PRUNE_MAX_SHARE", math.inf)
    monkeypatch.setattr(training, "JUMP_FACTOR", math.inf)
    events = run(image, Params(**FINETUNE_ONLY), model)  # type: ignore[arg-type]
    ft = [e.psnr for e in events if e.phase == "finetune"]
    assert min(ft) < start - 5.0


def jumpy_case() -> tuple[np.ndarray, SmoeModel, Params]:
    rng = np.random.default_rng(4)
    h, w = 32, 32
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = (0.5 + 0.35 * np.sin(xx / 2.5) * np.sin(yy / 3.0)).astype(np.float32)
    cy, cx = np.mgrid[2:h:4, 2:w:4]
    mu = np.stack([cx.ravel(), cy.ravel()], axis=1).astype(np.float64)
    k = len(mu)
    A = np.tile(np.eye(2) * 0.35, (k, 1, 1))
    m = image[mu[:, 1].astype(int), mu[:, 0].astype(int)].astype(np.float64)
    params = Params(tile_size=32, tile_steps=0, max_steps=40, time_budget=600.0, patience=1000,
                    lr_mu=2.0, lr_A=0.5, lr_m=0.2, lr_alpha=1.0, prune_threshold=0.0, seed=1)
    return image, SmoeModel(mu, A, m, rng.normal(0, 0.1, k), h, w), params


def drops(events: list[FitEvent]) -> float:
    """Largest fall of a fine-tuning event's PSNR below the best so far (dB)."""
    best = -math.inf
    worst = 0.0
    for e in events:
        if e.phase != "finetune" or e.final or not math.isfinite(e.psnr):
            continue
        best = max(best, e.psnr)
        worst = max(worst, best - e.psnr)
    return worst


def test_a_loss_jump_is_undone_and_the_learning_rates_halved() -> None:
    image, model, params = jumpy_case()
    events = run(image, params, model)
    assert drops(events) <= 10 * math.log10(training.JUMP_FACTOR) + 1e-6
    assert any(e.message and "loss jump" in e.message for e in events)
    assert events[-1].lr_scale < 1.0


def test_the_jumpy_case_jumps_without_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    image, model, params = jumpy_case()
    monkeypatch.setattr(training, "JUMP_FACTOR", math.inf)
    events = run(image, params, model)
    assert drops(events) > 10 * math.log10(4.0)


def test_whole_image_psnr_is_reported_in_every_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training, "IMAGE_PSNR_INTERVAL_S", 0.0)
    monkeypatch.setattr(training, "IMAGE_PSNR_MAX_SHARE", 1e9)  # measure at every step
    image, model, _ = jumpy_case()
    params = Params(tile_size=16, tile_steps=6, max_steps=5, time_budget=600.0, patience=1000,
                    lr_mu=0.05, lr_A=0.005, lr_m=0.02, lr_alpha=0.01)
    events = run(image, params, model)
    tiles = [e for e in events if e.phase == "tiles"]
    measured = [e for e in tiles if e.image_psnr is not None]
    assert len(measured) == len(tiles)
    # the first tile's first measurement: that tile after one step, the initial model elsewhere
    assert tiles[0].image_psnr is not None
    assert abs(tiles[0].image_psnr - psnr(np.clip(render(model), 0, 1), image)) < 1.5  # type: ignore[operator]
    merge = next(e for e in events if e.phase == "merge")
    assert merge.image_psnr == pytest.approx(merge.psnr)
    assert all(e.image_psnr == pytest.approx(e.psnr) for e in events if e.phase == "finetune")
