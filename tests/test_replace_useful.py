"""The least useful kernels are re-placed during fine-tuning (smoe_gui.core.train.replace)."""

from __future__ import annotations

import numpy as np
import pytest

from smoe_gui.core.model import SmoeModel, dense_render
from smoe_gui.core.params import Params
from smoe_gui.core.rendering.territories import removal_costs
from smoe_gui.core.train import replace
from smoe_gui.core.train.phases import _Clock, _FitState, _full_window
from smoe_gui.core.train.training import fit
from smoe_gui.core.train.window import KernelArrays


def random_model(k: int, h: int, w: int, channels: int, seed: int) -> SmoeModel:
    rng = np.random.default_rng(seed)
    mu = np.stack([rng.uniform(0, w - 1, k), rng.uniform(0, h - 1, k)], axis=1)
    A = np.stack([np.eye(2) * rng.uniform(0.15, 0.5) for _ in range(k)])
    A[:, 0, 1] = rng.uniform(-0.05, 0.05, k)
    m = rng.uniform(0, 1, (k, channels)) if channels > 1 else rng.uniform(0, 1, k)
    return SmoeModel(mu, A, m, rng.normal(0, 0.5, k), h, w)


def sse(model: SmoeModel, image: np.ndarray) -> float:
    recon = dense_render(model).reshape(image.shape)
    return float(np.sum(np.square(recon - image)))


def without(model: SmoeModel, k: int) -> SmoeModel:
    keep = np.arange(model.n_kernels) != k
    return SmoeModel(model.mu[keep], model.A[keep], model.m[keep], model.log_alpha[keep],
                     model.height, model.width)


@pytest.mark.parametrize("channels", [1, 3])
def test_removal_costs_match_removing_each_kernel_and_rendering_again(channels: int) -> None:
    h, w = 28, 36
    model = random_model(18, h, w, channels, seed=channels)
    rng = np.random.default_rng(7)
    image = rng.uniform(0, 1, (h, w) if channels == 1 else (h, w, channels))
    costs = removal_costs(model, image)
    assert costs.shape == (model.n_kernels,)
    base = sse(model, image)
    brute = np.array([sse(without(model, k), image) - base for k in range(model.n_kernels)])
    np.testing.assert_allclose(costs, brute, rtol=1e-5, atol=1e-5 * base)
    assert (brute < 0).any() or (brute > 0).all()  # the sign is kept, not an absolute value


def test_a_kernel_that_alone_governs_pixels_cannot_be_spared() -> None:
    # two narrow kernels far apart: each governs its own half of the image alone
    h, w = 16, 64
    model = SmoeModel(np.array([[8.0, 8.0], [56.0, 8.0]]), np.tile(np.eye(2) * 1.5, (2, 1, 1)),
                      np.array([0.2, 0.8]), np.zeros(2), h, w)
    image = np.where(np.arange(w)[None, :] < 32, 0.2, 0.8) * np.ones((h, 1))
    assert np.all(removal_costs(model, image) >= 1e30)


def test_removal_costs_refuse_an_image_of_another_size_or_channel_count() -> None:
    model = random_model(4, 20, 20, 1, seed=0)
    with pytest.raises(ValueError, match="20x20"):
        removal_costs(model, np.zeros((20, 21)))
    with pytest.raises(ValueError, match="channel"):
        removal_costs(model, np.zeros((20, 20, 3)))


def test_least_useful_picks_the_cheapest_and_always_leaves_one() -> None:
    costs = np.array([3.0, -1.0, np.nan, 0.5, 0.5])
    np.testing.assert_array_equal(replace.least_useful(costs, 2), [False, True, False, True, False])
    assert replace.least_useful(costs, 99).sum() == 4  # never every kernel
    assert not replace.least_useful(costs, 4)[2]  # NaN counts as indispensable
    assert replace.least_useful(costs, 0).sum() == 0


def test_replacement_is_due_on_multiples_of_the_interval_until_70_percent() -> None:
    due = replace.replacement_due
    assert due(600, 600, 0.05, 10.0, 60.0, 100_000)
    assert not due(599, 600, 0.05, 10.0, 60.0, 100_000)
    assert not due(600, 0, 0.05, 10.0, 60.0, 100_000)  # switched off
    assert not due(600, 600, 0.0, 10.0, 60.0, 100_000)
    assert not due(600, 600, 0.05, 0.71 * 60.0, 60.0, 100_000)  # too late in the time budget
    assert not due(600, 600, 0.05, 10.0, 60.0, 800)  # too late in the step budget


def redundant_case() -> tuple[np.ndarray, SmoeModel]:
    """A smooth image with a bright spot no kernel covers, and a kernel that duplicates
    its neighbour (same place, same expert): the duplicate costs nothing to remove."""
    h, w = 32, 32
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    image = 0.3 + 0.2 * xx / w
    image[20:24, 6:10] = 0.95
    centres = np.array([[x, y] for y in (4.0, 12.0, 20.0, 28.0) for x in (4.0, 12.0, 20.0, 28.0)])
    experts = np.array([image[int(y), int(x)] for x, y in centres])
    experts[9] = 0.3 + 0.2 * 12.0 / w  # (12, 20): the smooth value, not the spot's
    mu = np.concatenate([centres, [[24.0, 4.0]]])
    A = np.tile(np.eye(2) * 0.2, (len(mu), 1, 1))
    m = np.concatenate([experts, [0.3 + 0.2 * 24.0 / w]])
    # the duplicate sits between two kernels of its own value, with a tiny weight
    la = np.concatenate([np.zeros(len(centres)), [-6.0]])
    return image, SmoeModel(mu, A, m, la, h, w)


def test_a_window_re_places_its_least_useful_kernel_where_the_error_is() -> None:
    image, model = redundant_case()
    params = Params()
    costs = removal_costs(model, image)
    cheapest = int(np.argmin(costs))
    kernels = KernelArrays.from_model(model)
    state = _FitState(image=image.astype(np.float32), params=params, device=_cpu(),
                      clock=_Clock(), stop=None, snapshot_interval_s=1e9, kernels=kernels,
                      alive=np.ones(model.n_kernels, bool), tile_size=32)
    window = _full_window(state, kernels, budget=model.n_kernels)
    assert window.replace_least_useful(1) == 1
    after = window.kernels()
    assert len(after) == model.n_kernels  # the budget stays
    kept_labels = window.index[:-1]
    assert cheapest not in kept_labels  # the cheapest one went
    new = after.mu[-1]
    assert 5.5 <= new[0] <= 10.5 and 19.5 <= new[1] <= 24.5  # to the uncovered spot


def _cpu():  # noqa: ANN202
    import torch

    return torch.device("cpu")


def test_a_fit_re_places_kernels_on_schedule_and_keeps_its_budget() -> None:
    image, model = redundant_case()
    params = Params(tile_steps=0, max_steps=40, time_budget=600.0, patience=1000,
                    replace_every=10, replace_share=0.1)
    events = list(fit(image, params, model))
    notes = [e for e in events if e.message and "re-placed the" in e.message]
    assert [e.step for e in notes] == [10, 20]  # steps 10 and 20; 30 is past 70 % of 40
    assert all("2 kernel(s) of least use" in (e.message or "") for e in notes)
    assert all(e.n_kernels == model.n_kernels for e in events if e.phase == "finetune")
    final = events[-1]
    assert final.final and final.model is not None and final.model.n_kernels == model.n_kernels
    # switched off: no re-placement at all, the same steps
    off = list(fit(image, params.replace(replace_every=0), model))
    assert not any(e.message and "re-placed the" in e.message for e in off)
    # and a fit with re-placement is deterministic for its seed
    again = list(fit(image, params, model))
    np.testing.assert_array_equal(again[-1].model.mu, final.model.mu)


def test_a_re_placement_starts_a_new_run_for_the_convergence_test() -> None:
    # learning rates 0: the steps change nothing, only the re-placements do.  Without
    # a new run after each re-placement the convergence test would read the best
    # PSNR from before it and stop at step patience + 1 = 6
    image, model = redundant_case()
    params = Params(tile_steps=0, max_steps=100, time_budget=600.0, patience=5, tol_db=1e-6,
                    lr_mu=0.0, lr_A=0.0, lr_m=0.0, lr_alpha=0.0,
                    replace_every=3, replace_share=0.1)
    events = list(fit(image, params, model))
    replaced = [e.step for e in events if e.message and "re-placed the" in e.message]
    assert replaced[:3] == [3, 6, 9]
    final = events[-1]
    # re-placements until step 69 (< 70 % of 100), then 6 steps to converge
    assert replaced[-1] == 69 and final.step == 75
    assert "converged" in (final.message or "")
    # without re-placement the same fit converges at once
    off = list(fit(image, params.replace(replace_every=0), model))
    assert off[-1].step == params.patience + 1


def test_the_warm_up_compiles_the_removal_costs(monkeypatch: pytest.MonkeyPatch) -> None:
    # the first re-placement of a fit must not pay numba's compilation (seconds in a
    # fresh checkout) out of its time budget: the warm-up fit makes one
    from smoe_gui.core.rendering import territories
    from smoe_gui.core.train import training

    calls: list[int] = []
    real = territories._REMOVAL

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(territories, "_REMOVAL", counting)
    monkeypatch.setattr(training, "_WARM", set())
    training._warm_up(_cpu())
    assert calls, "the warm-up fit re-placed no kernel"
