"""Tiled training, pruning, merging, fine-tuning, stopping, divergence
(smoe_gui.core.train.training)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from smoe_gui.core.events import FitEvent, StopToken
from smoe_gui.core.methods.experts import sample_bilinear
from smoe_gui.core.metrics import psnr
from smoe_gui.core.model import SmoeModel
from smoe_gui.core.params import Params
from smoe_gui.core.rendering.culled import render
from smoe_gui.core.train import training
from smoe_gui.core.train import window as train_window
from smoe_gui.core.train.training import (
    KernelArrays,
    fit,
    loss_band,
    prune_kernels,
    tile_index,
    tile_windows,
    train_tiles,
)


def small_image(h: int = 32, w: int = 32) -> np.ndarray:
    """A disc on a ramp: something to fit in a few steps."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 0.2 + 0.4 * xx / w
    img[(xx - w * 0.45) ** 2 + (yy - h * 0.5) ** 2 < (0.3 * min(h, w)) ** 2] = 0.85
    return img.astype(np.float32)


def grid_model(image: np.ndarray, spacing: float = 8.0) -> SmoeModel:
    """Isotropic kernels on a regular grid, experts sampled from the image."""
    h, w = image.shape
    cy, cx = np.mgrid[spacing / 2 : h : spacing, spacing / 2 : w : spacing]
    mu = np.stack([cx.ravel(), cy.ravel()], axis=1)
    k = mu.shape[0]
    A = np.tile(np.eye(2) / (math.sqrt(2.0) * spacing / 2), (k, 1, 1))
    return SmoeModel(mu, A, sample_bilinear(image, mu), np.zeros(k), h, w)


def quick_params(**changes: object) -> Params:
    base = dict(
        tile_size=16, tile_steps=15, max_steps=25, time_budget=600.0, patience=1000,
        lr_mu=0.05, lr_A=0.005, lr_m=0.02, lr_alpha=0.01,
    )
    base.update(changes)
    return Params(**base)  # type: ignore[arg-type]


def run(image: np.ndarray, params: Params, model: SmoeModel, **kw: object) -> list[FitEvent]:
    return list(fit(image, params, init=model, device="cpu", **kw))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# tiles
# --------------------------------------------------------------------------------------
def test_tiles_cover_the_image_once() -> None:
    windows = tile_windows(40, 70, 32)
    cover = np.zeros((40, 70), int)
    for y0, y1, x0, x1 in windows:
        cover[y0:y1, x0:x1] += 1
    assert np.all(cover == 1)
    assert len(windows) == 2 * 3


def test_kernels_belong_to_the_tile_of_their_centre() -> None:
    mu = np.array([[0.0, 0.0], [31.4, 0.0], [31.6, 0.0], [69.0, 39.0], [-5.0, 100.0]])
    # pixel (round(x), round(y)): 31.4 -> column 31 (tile 0), 31.6 -> column 32 (tile 1)
    assert tile_index(mu, 40, 70, 32).tolist() == [0, 0, 1, 5, 3]
    # the loss band is a quarter tile (at least 16 px)
    assert loss_band(128) == 32 and loss_band(16) == 16


# --------------------------------------------------------------------------------------
# pruning
# --------------------------------------------------------------------------------------
def test_prune_removes_exactly_the_kernels_under_the_threshold() -> None:
    k = 7
    threshold = 1e-3
    alpha = np.array([1.0, 0.9e-3, 1.1e-3, 1.001e-3, 1e-9, 0.5, 0.999e-3])
    tensors = [
        torch.arange(2 * k, dtype=torch.float32).reshape(k, 2).requires_grad_(True),
        torch.eye(2).repeat(k, 1, 1).requires_grad_(True),
        torch.linspace(0, 1, k).requires_grad_(True),
        torch.tensor(np.log(alpha), dtype=torch.float32).requires_grad_(True),
    ]
    opt = torch.optim.Adam([{"params": [t], "lr": lr}
                            for t, lr in zip(tensors, (1, 2, 3, 4), strict=True)])
    # one step with zero learning rate to fill the Adam state without moving anything
    for g in opt.param_groups:
        g["lr"], g["_lr"] = 0.0, g["lr"]
    sum(((t * (i + 1)) ** 2).sum() for i, t in enumerate(tensors)).backward()
    opt.step()
    for g in opt.param_groups:
        g["lr"] = g.pop("_lr")
    old_states = [{k2: v.clone() for k2, v in opt.state[t].items()} for t in tensors]

    new, new_opt, keep = prune_kernels(tensors, opt, threshold)

    expected = np.exp(tensors[3].detach().numpy().astype(np.float64)) >= threshold
    assert keep.tolist() == expected.tolist()
    assert keep.tolist() == [True, False, True, True, False, True, False]
    assert new[2].detach().numpy().tolist() == pytest.approx(
        tensors[2].detach().numpy()[keep].tolist()
    )
    assert [g["lr"] for g in new_opt.param_groups] == [1, 2, 3, 4]
    for t_new, st_old in zip(new, old_states, strict=True):
        st = new_opt.state[t_new]
        assert torch.equal(st["exp_avg"], st_old["exp_avg"][torch.from_numpy(keep)])
        assert torch.equal(st["exp_avg_sq"], st_old["exp_avg_sq"][torch.from_numpy(keep)])
        assert t_new.requires_grad and t_new.is_leaf


def test_prune_keeps_everything_at_threshold_zero_and_the_strongest_when_asked() -> None:
    la = torch.tensor([-50.0, -40.0, -60.0], requires_grad=True)
    tensors = [torch.zeros(3, 2, requires_grad=True), torch.zeros(3, 2, 2, requires_grad=True),
               torch.zeros(3, requires_grad=True), la]
    opt = torch.optim.Adam([{"params": [t]} for t in tensors])
    assert prune_kernels(tensors, opt, 0.0)[2].all()
    assert prune_kernels(tensors, opt, 1e-3)[2].tolist() == [False, False, False]
    assert prune_kernels(tensors, opt, 1e-3, keep_one=True)[2].tolist() == [False, True, False]


def test_fit_prunes_the_weak_kernels_and_keeps_the_others() -> None:
    image = small_image()
    model = grid_model(image)
    weak = np.array([1, 6, 11])
    log_alpha = model.log_alpha.copy()
    log_alpha[weak] = math.log(1e-3) - 3.0  # far below: one Adam step cannot lift them
    model = model.replace(log_alpha=log_alpha)
    events = run(image, quick_params(prune_threshold=1e-3), model)
    final = events[-1].model
    # the weak ones went and were re-placed where the error is largest: a budget of N stays N
    assert final is not None and final.n_kernels == model.n_kernels
    assert any(e.message and "pruned" in e.message for e in events)
    merge = next(e for e in events if e.phase == "merge")
    assert merge.message is not None and f"{weak.size} re-placed" in merge.message
    # the others remain, in order: Adam moves a coordinate by at most lr_mu per step
    kept = model.n_kernels - weak.size
    moved = np.abs(final.mu[:kept] - np.delete(model.mu, weak, axis=0))
    assert np.all(moved <= 0.05 * 40 + 1e-3)
    assert np.all(final.log_alpha > math.log(1e-3))


# --------------------------------------------------------------------------------------
# tiles and merging
# --------------------------------------------------------------------------------------
def test_merging_keeps_each_tile_interior() -> None:
    # 4 tiles of 64 px: each tile's kernels are charged for the 16-px band of
    # its neighbours' pixels, so the tiles compose.  Measured (this case): the
    # merge costs 0.03 dB against the tiles' own reconstructions, no interior
    # moves by more than 0.35 dB; with the first reading (an 8-px band) the
    # merge cost 0.73 dB and the first tile's interior lost 2.2 dB.
    image = small_image(128, 128)
    model = grid_model(image, 8.0)
    params = quick_params(tile_size=64, tile_steps=30)
    merged, outcomes = train_tiles(image, model, params, device="cpu")
    assert len(outcomes) == 4
    whole = render(merged)
    stitched = whole.copy()
    inset = loss_band(64)
    for out in outcomes:
        y0, y1, x0, x1 = out.window
        stitched[y0:y1, x0:x1] = out.reconstruction
        assert out.steps == 30
        # the tile's own training improved its pixels
        start = render(model)[y0:y1, x0:x1]
        assert out.psnr > psnr(start, image[y0:y1, x0:x1])
        # later tiles may improve the band of an earlier tile (it is in their
        # loss); inside it, the earlier tile's reconstruction stands
        a = whole[y0 + inset : y1 - inset, x0 + inset : x1 - inset]
        b = out.reconstruction[inset:-inset, inset:-inset]
        target = image[y0 + inset : y1 - inset, x0 + inset : x1 - inset]
        assert np.max(np.abs(a - b)) < 0.05, out.window
        assert abs(psnr(a, target) - psnr(b, target)) < 0.5, out.window
    # the merge costs at most 0.3 dB (issue 22), and the tiles made the whole image better
    assert psnr(stitched, image) - psnr(whole, image) <= 0.3
    assert psnr(whole, image) > psnr(render(model), image) + 1.0


# --------------------------------------------------------------------------------------
# the whole fit
# --------------------------------------------------------------------------------------
def test_short_fit_raises_the_psnr_and_streams_well_formed_events() -> None:
    image = small_image()
    model = grid_model(image)
    before = psnr(render(model), image)
    events = run(image, quick_params(), model, snapshot_interval_s=0.0)
    phases = [e.phase for e in events]
    assert phases[0] == "tiles" and "merge" in phases and phases[-2] == "finetune"
    assert phases.index("merge") < len(phases) - 2
    assert [e.final for e in events].count(True) == 1 and events[-1].final
    steps = [e.step for e in events if e.phase != "merge" and not e.final]
    assert steps == list(range(1, len(steps) + 1))
    assert events[-1].n_tiles == 4
    assert all(e.model is not None for e in events)  # interval 0: every event has one
    final = events[-1].model
    assert final is not None
    after = psnr(render(final), image)
    assert after > before + 2.0
    assert events[-1].psnr == pytest.approx(after, abs=0.05)
    assert events[-1].message == "step budget of 25 fine-tuning steps spent"
    assert set(events[-1].phase_times_s or {}) == {"tiles", "merge", "finetune"}
    elapsed = [e.elapsed_s for e in events]
    assert elapsed == sorted(elapsed)


def test_snapshots_are_independent_numpy_copies() -> None:
    image = small_image()
    model = grid_model(image)
    events = run(image, quick_params(), model, snapshot_interval_s=0.0)
    first = events[0].model
    assert first is not None
    assert isinstance(first.mu, np.ndarray) and not first.mu.flags.writeable
    # a later snapshot differs: the first was not a view of live buffers
    assert not np.array_equal(first.m, events[-2].model.m)  # type: ignore[union-attr]


def test_fine_tuning_stops_when_converged() -> None:
    image = small_image()
    model = grid_model(image)
    params = quick_params(tile_steps=0, max_steps=100_000, patience=5, tol_db=5.0)
    events = run(image, params, model)
    assert events[-1].message is not None and events[-1].message.startswith("converged")
    assert events[-1].step < 50


def test_time_budget_ends_the_fit() -> None:
    image = small_image()
    model = grid_model(image)
    params = quick_params(max_steps=10_000_000, time_budget=0.5, patience=100_000)
    events = run(image, params, model)
    assert events[-1].message == "time budget of 0.5 s spent"
    assert events[-1].elapsed_s < 5.0
    tile_time = max(e.elapsed_s for e in events if e.phase == "tiles")
    assert tile_time <= training.TILE_TIME_SHARE * 0.5 + 0.5


def test_same_seed_same_result_on_cpu() -> None:
    image = small_image()
    model = grid_model(image)
    a = run(image, quick_params(seed=3), model)[-1].model
    b = run(image, quick_params(seed=3), model)[-1].model
    assert a is not None and b is not None
    for name in ("mu", "A", "m", "log_alpha"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


# --------------------------------------------------------------------------------------
# stopping
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("stop_at", [5, 40])  # in the tile phase, in fine-tuning
def test_stop_token_takes_effect_within_one_step(stop_at: int) -> None:
    image = small_image()
    model = grid_model(image)
    token = StopToken()
    events = []
    for event in fit(image, quick_params(), init=model, stop=token, device="cpu"):
        events.append(event)
        if event.step == stop_at and not token.stopped:
            token.stop()
    later = events[[e.step for e in events].index(stop_at) + 1 :]
    assert all(e.step == stop_at for e in later)
    assert events[-1].final and events[-1].message == "stopped on request"
    assert events[-1].model is not None and np.all(np.isfinite(events[-1].model.m))


def test_closing_the_generator_stops_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = train_window.SmoeRenderer

    class Counting(real):  # type: ignore[misc, valid-type]
        def __call__(self, *args: torch.Tensor) -> torch.Tensor:
            calls.append(1)
            return super().__call__(*args)

    monkeypatch.setattr(train_window, "SmoeRenderer", Counting)
    image = small_image()
    gen = fit(image, quick_params(), init=grid_model(image), device="cpu")
    for _ in range(3):
        next(gen)
    n = len(calls)
    assert n == 1 + 3  # the starting point's evaluation, then one render per step
    gen.close()
    assert len(calls) == n
    with pytest.raises(StopIteration):
        next(gen)


# --------------------------------------------------------------------------------------
# divergence
# --------------------------------------------------------------------------------------
def test_a_non_finite_loss_is_undone_and_the_learning_rate_halved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    real = train_window.SmoeRenderer

    class Poisoned(real):  # type: ignore[misc, valid-type]
        def __call__(self, *args: torch.Tensor) -> torch.Tensor:
            calls.append(1)
            out = super().__call__(*args)
            if len(calls) in (4, 30):
                return out * float("nan")
            return out

    monkeypatch.setattr(train_window, "SmoeRenderer", Poisoned)
    image = small_image()
    model = grid_model(image)
    events = run(image, quick_params(), model, snapshot_interval_s=0.0)
    diverged = [e for e in events if e.message and "non-finite loss" in e.message]
    assert len(diverged) == 2
    assert "undone" in diverged[0].message and "x0.5" in diverged[0].message  # type: ignore[operator]
    assert diverged[0].lr_scale == 0.5
    for e in events:
        assert e.model is None or all(
            np.all(np.isfinite(getattr(e.model, n))) for n in ("mu", "A", "m", "log_alpha")
        )
    # the undone step restored the parameters: the next snapshot equals the one before
    i = events.index(diverged[0])
    before = events[i - 2].model  # parameters before the step that led to the NaN loss
    after = events[i].model
    assert before is not None and after is not None
    assert np.array_equal(before.mu, after.mu) and np.array_equal(before.m, after.m)
    assert psnr(render(events[-1].model), image) > psnr(render(model), image)  # type: ignore[arg-type]


def test_a_non_finite_gradient_is_undone(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = train_window.SmoeRenderer

    class Poisoned(real):  # type: ignore[misc, valid-type]
        def __call__(self, mu: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
            calls.append(1)
            out = super().__call__(mu, *rest)
            if len(calls) == 20:  # finite value, NaN gradient (sqrt'(0) * 0)
                return out + 0.0 * torch.sqrt(mu[:, 0] - mu[:, 0].detach()).sum()
            return out

    monkeypatch.setattr(train_window, "SmoeRenderer", Poisoned)
    image = small_image()
    events = run(image, quick_params(), grid_model(image))
    flagged = [e for e in events if e.message and "non-finite gradient" in e.message]
    assert len(flagged) == 1 and flagged[0].lr_scale == 0.5
    final = events[-1].model
    assert final is not None and np.all(np.isfinite(final.mu))


def test_a_fit_on_the_torch_backend_follows_the_numba_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the renderer of a GPU (backend "torch") driven by the training loop on the
    # CPU: the same run to float32 rounding, undo and pruning included
    image = small_image()
    model = grid_model(image)
    log_alpha = model.log_alpha.copy()
    log_alpha[[2, 9]] = math.log(1e-3) - 3.0  # pruned in the first steps
    model = model.replace(log_alpha=log_alpha)
    params = quick_params(prune_threshold=1e-3)
    reference = run(image, params, model)
    assert reference[-1].n_kernels == model.n_kernels  # 2 pruned, 2 re-placed
    real = train_window.SmoeRenderer
    backends = []

    class TorchBackend(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kw: object) -> None:
            super().__init__(*args, **kw, backend="torch")  # type: ignore[arg-type]
            backends.append(self.backend)

    monkeypatch.setattr(train_window, "SmoeRenderer", TorchBackend)
    events = run(image, params, model)
    assert backends and set(backends) == {"torch"}
    assert len(events) == len(reference)
    assert [e.n_kernels for e in events] == [e.n_kernels for e in reference]
    for a, b in zip(events, reference, strict=True):
        assert a.psnr == pytest.approx(b.psnr, abs=0.02)


def test_huge_learning_rates_never_give_a_non_finite_model() -> None:
    image = small_image()
    params = quick_params(lr_mu=10.0, lr_A=1.0, lr_m=1.0, lr_alpha=1.0, prune_threshold=0.0)
    events = run(image, params, grid_model(image), snapshot_interval_s=0.0)
    for e in events:
        assert math.isfinite(e.loss) or (e.message and "non-finite" in e.message)
        assert e.model is None or np.all(np.isfinite(e.model.A))
    assert events[-1].final and events[-1].model is not None


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
def test_tile_size_larger_than_the_image_is_clamped_and_said() -> None:
    image = small_image(20, 12)
    events = run(image, quick_params(tile_size=64, max_steps=3), grid_model(image, spacing=4.0))
    merge = next(e for e in events if e.phase == "merge")
    assert merge.n_tiles == 1
    assert merge.message is not None and "tile size 64 px clamped" in merge.message
    assert "(20 px)" in merge.message
    assert events[-1].final and events[-1].model is not None
    assert training.fit_tile_size((20, 12), quick_params(tile_size=64)) == 20
    assert training.fit_tile_size((200, 300), quick_params(tile_size=64)) == 64


@pytest.mark.parametrize(("height", "width"), [(8, 8), (12, 40), (100, 100)])
def test_every_image_initialize_accepts_is_fitted_with_default_parameters(
    height: int, width: int
) -> None:
    """Default parameters (tile 128 px) on images smaller than a tile, via initialize()."""
    rng = np.random.default_rng(height * width)
    image = np.clip(small_image(height, width) + 0.05 * rng.random((height, width)), 0, 1)
    params = Params().replace(time_budget=0.5)
    events = list(fit(image.astype(np.float32), params, device="cpu"))
    final = events[-1]
    assert final.final and final.model is not None and math.isfinite(final.psnr)
    assert (final.model.height, final.model.width) == (height, width)


@pytest.mark.parametrize("level", [0.0, 0.37, 1.0])
def test_a_constant_image_is_exact_with_infinite_psnr(level: float) -> None:
    image = np.full((24, 24), level, np.float32)
    events = list(fit(image, Params().replace(time_budget=2.0), device="cpu"))
    final = events[-1]
    assert final.final and final.psnr == math.inf and final.model is not None
    assert final.message is not None and "exact" in final.message
    assert np.allclose(render(final.model), level, atol=1e-6)
    assert final.elapsed_s < 1.0  # it stops at once instead of spending the budget


def test_the_best_model_includes_the_starting_point() -> None:
    """Steps that only make the model worse return the initial model, and say so."""
    image = small_image()
    start = grid_model(image)
    start_psnr = psnr(render(start), image)
    params = quick_params(
        lr_mu=10.0, lr_A=1.0, lr_m=1.0, lr_alpha=1.0, tile_steps=5, max_steps=3, patience=1000
    )
    events = run(image, params, start)
    assert any(e.psnr < start_psnr - 1.0 for e in events if e.phase == "finetune")
    final = events[-1]
    assert final.model is not None
    assert psnr(render(final.model), image) >= start_psnr - 1e-4
    np.testing.assert_allclose(final.model.mu, start.mu)
    assert final.message is not None and "no step improved on the initial model" in final.message


def test_a_budget_too_short_to_train_says_so() -> None:
    image = small_image()
    start = grid_model(image)
    params = quick_params(
        lr_mu=10.0, lr_A=1.0, lr_m=1.0, lr_alpha=1.0, time_budget=0.01, max_steps=1000
    )
    final = run(image, params, start)[-1]
    assert final.message is not None
    assert "time budget of 0.01 s was too short to train" in final.message
    assert psnr(render(final.model), image) >= psnr(render(start), image) - 1e-4  # type: ignore[arg-type]


@pytest.mark.parametrize("change", [{"time_budget": 0}, {"time_budget": -1.0}, {"max_steps": 0}])
def test_non_positive_budgets_are_refused(change: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(change))):
        quick_params(**change)


def test_a_model_of_another_image_or_no_model_is_refused() -> None:
    image = small_image()
    other = grid_model(small_image(40, 32))
    with pytest.raises(ValueError, match="32x40 image, but the image is 32x32"):
        fit(image, quick_params(), init=other)
    with pytest.raises(ValueError, match="Initialization or a SmoeModel"):
        fit(image, quick_params(), init=np.zeros(3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method"):
        fit(image, quick_params(), init=grid_model(image), method="random")
    with pytest.raises(ValueError, match="no kernels"):
        SmoeModel(np.zeros((0, 2)), np.zeros((0, 2, 2)), np.zeros(0), np.zeros(0), 32, 32)


def test_a_bad_image_is_refused() -> None:
    image = small_image()
    bad = image.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit(bad, quick_params(), init=grid_model(image))


def test_pruning_every_kernel_gives_a_clear_message() -> None:
    image = small_image()
    model = grid_model(image)
    model = model.replace(log_alpha=np.full(model.n_kernels, -20.0))  # every α under 1e-3
    with pytest.raises(ValueError, match="every kernel was pruned.*prune_threshold"):
        run(image, quick_params(prune_threshold=1e-3), model, snapshot_interval_s=0.0)


def test_kernel_arrays_round_trip() -> None:
    model = grid_model(small_image())
    ks = KernelArrays.from_model(model)
    assert len(ks) == model.n_kernels
    back = ks.to_model(model.height, model.width)
    assert np.array_equal(back.A, model.A)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_runs_on_cuda() -> None:
    image = small_image()
    model = grid_model(image)
    events = list(fit(image, quick_params(), init=model, device="cuda"))
    assert events[-1].model is not None
    assert psnr(render(events[-1].model), image) > psnr(render(model), image) + 2.0


# -- colour: one gate, three experts ----------------------------------------------------


def colour_image(h: int = 32, w: int = 32) -> np.ndarray:
    gray = small_image(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.ascontiguousarray(
        np.stack([gray, 0.3 + 0.5 * yy / h, 1.0 - gray * 0.8], axis=2).astype(np.float32)
    )


def test_colour_fit_raises_the_psnr_over_all_channels() -> None:
    image = colour_image()
    gray_model = grid_model(small_image())
    model = gray_model.replace(m=sample_bilinear(image, gray_model.mu))
    before = psnr(render(model), image)
    events = run(image, quick_params(), model, snapshot_interval_s=0.0)
    final = events[-1].model
    assert final is not None and final.m.shape == (final.n_kernels, 3)
    assert all(e.model is None or e.model.m.ndim == 2 for e in events)
    after = psnr(render(final), image)  # the MSE averaged over every pixel and channel
    assert after > before + 2.0
    assert events[-1].psnr == pytest.approx(after, abs=0.05)


def test_colour_fit_of_three_equal_channels_follows_the_gray_fit() -> None:
    # equal channels: the loss and the gradients of μ, A, log α equal the gray
    # ones, and Adam's steps on m are the same (its update is scale-free)
    gray = small_image()
    tripled = np.repeat(gray[:, :, None], 3, axis=2)
    model = grid_model(gray)
    colour_model = model.replace(m=np.repeat(model.m[:, None], 3, axis=1))
    gray_final = run(gray, quick_params(), model)[-1]
    colour_final = run(tripled, quick_params(), colour_model)[-1]
    assert colour_final.psnr == pytest.approx(gray_final.psnr, abs=0.05)
    assert colour_final.model is not None and gray_final.model is not None
    assert colour_final.model.n_kernels == gray_final.model.n_kernels


def test_channels_parameter_picks_the_form_of_the_image() -> None:
    image = colour_image(48, 48)
    params = quick_params(max_steps=3, tile_steps=2, max_pts=20, channels="rgb")
    final = list(fit(image, params, device="cpu"))[-1]
    assert final.model is not None and final.model.m.shape[1:] == (3,)
    gray_final = list(fit(image, params.replace(channels="gray"), device="cpu"))[-1]
    assert gray_final.model is not None and gray_final.model.m.ndim == 1
    # an initial model decides by its experts; two channels are not a known form
    two = grid_model(small_image()).replace(m=np.zeros((16, 2)))
    with pytest.raises(ValueError, match="expert channels"):
        fit(colour_image(), quick_params(), init=two)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_colour_fit_runs_on_cuda() -> None:
    image = colour_image()
    base = grid_model(small_image())
    model = base.replace(m=sample_bilinear(image, base.mu))
    events = list(fit(image, quick_params(), init=model, device="cuda"))
    final = events[-1].model
    assert final is not None and final.m.shape[1:] == (3,)
    assert psnr(render(final), image) > psnr(render(model), image) + 2.0


def test_compilation_warm_up_is_not_charged_to_the_time_budget(monkeypatch) -> None:
    # a fresh checkout compiles the numba kernels on the first fit of a process;
    # that must happen before the fit's clock starts (a sweep's first run made a
    # tenth of the steps of the others)
    import time

    from smoe_gui.core.train import training

    calls = []

    def slow_warm_up(device) -> None:
        calls.append(device.type)
        time.sleep(3.0)  # far above the budget and a loaded machine's overshoot

    monkeypatch.setattr(training, "_warm_up", slow_warm_up)
    image = small_image()
    params = quick_params(time_budget=0.5, max_steps=100_000, tol_db=0.0, patience=100_000)
    events = list(fit(image, params, init=grid_model(image), device="cpu"))
    assert calls == ["cpu"]
    assert events[-1].elapsed_s < 2.0  # the 3 s warm-up is not in the fit's clock
    assert events[-1].step > 1


def test_warm_up_runs_once_per_device_type(monkeypatch) -> None:
    import torch

    from smoe_gui.core.train import training

    monkeypatch.setattr(training, "_WARM", set())
    seen = []
    real = training._fit

    def spy(*args, **kwargs):
        seen.append(args[1].tile_size)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "_fit", spy)
    training._warm_up(torch.device("cpu"))
    training._warm_up(torch.device("cpu"))
    assert training._WARM == {"cpu"} and seen == [16]
