"""The fast culled renderer against the dense formula: images, gradients, lists."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smoe_gui.core.model import SmoeModel, dense_render
from smoe_gui.core.rendering import _kernels as kern
from smoe_gui.core.rendering import torch_backend
from smoe_gui.core.rendering.culled import (
    DEFAULT_SLACK,
    LEAN_BUILDS,
    CullLists,
    SmoeRenderer,
    cull_tau,
    dense_image_torch,
    output_grid,
    render,
)

IMAGE_TOL = 1e-5
GRAD_TOL = 1e-4


def random_model(seed: int, k: int = 60, h: int = 40, w: int = 56, spread: float = 0.3,
                 channels: int = 0) -> SmoeModel:
    """Random anisotropic kernels, some centred outside the image; gray experts
    (K,) or, with ``channels`` > 0, experts (K, channels)."""
    rng = np.random.default_rng(seed)
    mu = rng.uniform([-6, -6], [w + 6, h + 6], (k, 2))
    A = rng.normal(0, spread, (k, 2, 2))
    la = rng.normal(0, 1.0, k)
    m = rng.uniform(0, 1, (k, channels) if channels else k)
    return SmoeModel(mu, A, m, la, h, w)


def tensors(model: SmoeModel, dtype: torch.dtype = torch.float64) -> list[torch.Tensor]:
    return [
        torch.tensor(v, dtype=dtype, requires_grad=True)
        for v in (model.mu, model.A, model.m, model.log_alpha)
    ]


def dense_grads(model: SmoeModel, xs: np.ndarray, ys: np.ndarray, g: torch.Tensor
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    ts = tensors(model)
    img = dense_image_torch(*ts, torch.tensor(xs), torch.tensor(ys))
    return img.detach(), list(torch.autograd.grad((img * g).sum(), ts))


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


# -- bounds ------------------------------------------------------------------


def test_box_bounds_are_true_bounds_and_tight() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        A = rng.normal(0, 1, (2, 2)) * rng.choice([0.01, 0.3, 3.0])
        S = A @ A.T
        x0, y0 = rng.uniform(-30, 30, 2)
        x1, y1 = x0 + rng.uniform(0, 20), y0 + rng.uniform(0, 20)
        lo, hi = kern.box_bounds(S[0, 0], S[0, 1], S[1, 1], x0, x1, y0, y1)
        gx, gy = np.meshgrid(np.linspace(x0, x1, 201), np.linspace(y0, y1, 201))
        q = S[0, 0] * gx**2 + 2 * S[0, 1] * gx * gy + S[1, 1] * gy**2
        scale = 1e-9 * (1 + q.max())
        assert lo <= q.min() + scale and hi >= q.max() - scale
        # tight: the grid gets within its own spacing of the true extremes
        assert q.min() - lo <= 0.02 * (1 + q.max()) and hi - q.max() <= scale


def test_exp_approximation_is_accurate() -> None:
    x = -np.linspace(0.0, 900.0, 90001)
    approx = kern.exp_neg_array(x)
    exact = np.exp(x)
    assert np.max(np.abs(approx - exact)) < 1e-12
    near = x > -5
    assert np.max(np.abs(approx[near] / exact[near] - 1)) < 1e-11
    assert np.all(approx >= 0) and np.all(np.isfinite(approx))


def test_float32_exp_approximation_is_accurate() -> None:
    x = -np.linspace(0.0, 900.0, 90001).astype(np.float32)
    approx = kern.exp_neg32_array(x)
    assert approx.dtype == np.float32
    exact = np.exp(x.astype(np.float64))
    assert np.max(np.abs(approx - exact)) < 1e-6
    near = x > -5
    assert np.max(np.abs(approx[near] / exact[near] - 1)) < 5e-6
    assert np.all(approx >= 0) and np.all(np.isfinite(approx))


# -- forward -----------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_render_matches_dense_on_random_anisotropic_models(seed: int) -> None:
    model = random_model(seed)
    fast = render(model)
    assert fast.dtype == np.float32 and fast.shape == (40, 56)
    assert np.max(np.abs(fast - dense_render(model))) <= IMAGE_TOL


@pytest.mark.parametrize("kwargs", [{"scale": 0.37}, {"scale": 2.5}, {"height": 13, "width": 101}])
def test_render_at_any_size_matches_dense_on_the_same_grid(kwargs: dict) -> None:
    model = random_model(3)
    fast = render(model, **kwargs)
    xs, ys = output_grid(model, **kwargs)
    assert fast.shape == (len(ys), len(xs))
    assert np.max(np.abs(fast - dense_render(model, xs, ys))) <= IMAGE_TOL


def test_wide_heavy_kernel_takes_over_far_pixels() -> None:
    # narrow kernels everywhere, one very wide kernel with a large weight in a
    # corner: with a softmax gate it wins wherever the narrow ones have faded;
    # a footprint-based list (k nearest, 3σ) would drop it there
    h, w = 64, 96
    g = np.stack(np.meshgrid(np.arange(4, w, 16.0), np.arange(4, h, 16.0)), -1).reshape(-1, 2)
    k = len(g)
    mu = np.vstack([g, [[0.0, 0.0]]])
    A = np.vstack([np.tile(np.eye(2) * 0.5, (k, 1, 1)), [np.eye(2) * 0.01]])
    m = np.concatenate([np.zeros(k), [1.0]])
    la = np.concatenate([np.zeros(k), [6.0]])
    model = SmoeModel(mu, A, m, la, h, w)
    ref = dense_render(model)
    assert ref.max() > 0.9  # the wide kernel really does own some pixels
    assert np.max(np.abs(render(model) - ref)) <= IMAGE_TOL


def test_culling_evaluates_far_fewer_pairs_than_dense() -> None:
    h, w = 128, 128
    g = np.stack(np.meshgrid(np.arange(4, w, 8.0), np.arange(4, h, 8.0)), -1).reshape(-1, 2)
    model = SmoeModel(g, np.tile(np.eye(2) / (np.sqrt(2) * 2.5), (len(g), 1, 1)),
                      np.linspace(0, 1, len(g)), np.zeros(len(g)), h, w)
    r = SmoeRenderer(h, w)
    img = r(*tensors(model))
    assert r.stats["pairs"] < 0.2 * h * w * len(g)
    assert np.max(np.abs(img.detach().numpy() - dense_render(model))) <= IMAGE_TOL


def test_cull_tau_bounds_the_skipped_weight() -> None:
    assert np.exp(-cull_tau(1000)) * 1000 == pytest.approx(1e-6)
    with pytest.raises(ValueError):
        cull_tau(10, eps=0.0)


# -- renderer: forward and backward ------------------------------------------------


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("seed", [0, 5])
def test_renderer_image_and_gradients_match_dense_autograd(backend: str, seed: int) -> None:
    model = random_model(seed, k=50, h=36, w=44)
    x0, y0 = 3.0, -2.0  # a window that is not the whole image
    r = SmoeRenderer(30, 34, x0=x0, y0=y0, backend=backend)
    xs = np.arange(34, dtype=np.float64) + x0
    ys = np.arange(30, dtype=np.float64) + y0
    g = torch.randn(30, 34, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    ts = tensors(model)
    img = r(*ts)
    grads = torch.autograd.grad((img * g).sum(), ts)
    ref, ref_grads = dense_grads(model, xs, ys, g)
    assert img.shape == (30, 34) and img.dtype == torch.float64
    assert float((img.detach() - ref).abs().max()) <= IMAGE_TOL
    for name, a, b in zip(("mu", "A", "m", "log_alpha"), grads, ref_grads, strict=True):
        assert rel_err(a, b) <= GRAD_TOL, name


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_renderer_float32_contract_for_training(backend: str) -> None:
    model = random_model(7, k=40, h=32, w=32)
    r = SmoeRenderer(32, 32, backend=backend)
    ts = tensors(model, torch.float32)
    img = r(*ts)
    assert img.dtype == torch.float32 and img.shape == (32, 32)
    loss = ((img - 0.5) ** 2).mean()
    loss.backward()
    for t in ts:
        assert t.grad is not None and t.grad.dtype == torch.float32
        assert torch.all(torch.isfinite(t.grad))
    assert np.max(np.abs(img.detach().numpy() - dense_render(model))) <= IMAGE_TOL


@pytest.mark.parametrize("channels", [0, 2, 3])
def test_float32_training_path_matches_dense_float64(channels: int) -> None:
    # float32 inputs take the float32 pixel arithmetic; against dense float64
    # autograd (same float32 parameter values) it must stay well inside the
    # tolerances, also for elongated kernels far from their centre rows, where
    # the direct row form of the logit cancels (5e-5 of the image in float32)
    model = random_model(21, k=60, h=36, w=44, channels=channels)
    rng = np.random.default_rng(21)
    # S = A Aᵀ: a ridge 35 px wide along a diagonal, 0.5 px across
    elongated = np.array([[0.8, -0.6], [0.6, 0.8]]) @ np.array([[0.02, 0.0], [0.0, 1.5]])
    A = model.A.copy()
    A[:12] = elongated * rng.uniform(0.5, 2.0, (12, 1, 1))
    model = model.replace(A=A)
    model = model.replace(**{n: getattr(model, n).astype(np.float32).astype(np.float64)
                             for n in ("mu", "A", "m", "log_alpha")})
    x0, y0 = 2.0, 3.0
    r = SmoeRenderer(30, 34, x0=x0, y0=y0)
    xs = np.arange(34, dtype=np.float64) + x0
    ys = np.arange(30, dtype=np.float64) + y0
    shape = (30, 34, channels) if channels else (30, 34)
    g = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    ts = tensors(model, torch.float32)
    img = r(*ts)
    assert img.dtype == torch.float32 and img.shape == shape
    grads = torch.autograd.grad((img * g.float()).sum(), ts)
    ref, ref_grads = dense_grads(model, xs, ys, g)
    assert float((img.detach().double() - ref).abs().max()) <= 3e-6
    for name, a, b in zip(("mu", "A", "m", "log_alpha"), grads, ref_grads, strict=True):
        assert a.dtype == torch.float32 and a.shape == b.shape
        assert rel_err(a.double(), b) <= 2e-5, name


def test_optimizer_step_through_the_renderer_lowers_the_loss() -> None:
    model = random_model(8, k=40, h=32, w=32)
    target = torch.tensor(dense_render(random_model(9, k=40, h=32, w=32)), dtype=torch.float32)
    ts = tensors(model, torch.float32)
    opt = torch.optim.Adam(ts, lr=0.01)
    r = SmoeRenderer(32, 32)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = ((r(*ts) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_gradients_are_deterministic(backend: str) -> None:
    model = random_model(4)
    out = []
    for _ in range(2):
        ts = tensors(model)
        img = SmoeRenderer(40, 56, backend=backend)(*ts)
        out.append(torch.autograd.grad(img.square().sum(), ts))
    for a, b in zip(*out, strict=True):
        assert torch.equal(a, b)


# -- list validity ------------------------------------------------------------


def test_small_moves_keep_the_lists_and_stay_exact() -> None:
    model = random_model(10)
    r = SmoeRenderer(40, 56)
    r(*tensors(model))
    assert r.stats["rebuilds"] == 1
    rng = np.random.default_rng(0)
    moved = model.replace(mu=model.mu + rng.normal(0, 0.01, model.mu.shape),
                          A=model.A * (1 + rng.normal(0, 1e-4, model.A.shape)),
                          log_alpha=model.log_alpha + 0.01)
    img = r(*tensors(moved))
    assert r.stats["rebuilds"] == 1 and r.stats["calls"] == 2
    assert np.max(np.abs(img.detach().numpy() - dense_render(moved))) <= IMAGE_TOL


def test_moved_model_triggers_a_rebuild_and_stays_exact() -> None:
    # a far, left-out kernel gains a large weight: it now matters far away,
    # and the check must notice without being told
    h, w = 48, 64
    g = np.stack(np.meshgrid(np.arange(4, w, 8.0), np.arange(4, h, 8.0)), -1).reshape(-1, 2)
    k = len(g)
    model = SmoeModel(g, np.tile(np.eye(2) * 0.4, (k, 1, 1)), np.linspace(0, 1, k),
                      np.zeros(k), h, w)
    r = SmoeRenderer(h, w)
    r(*tensors(model))
    lists = r.lists
    assert lists is not None
    # kernel 0 sits in the top-left corner and is left out of the far blocks
    assert 0 not in set(lists.idx[lists.off[-2]:lists.off[-1]].tolist())
    la = model.log_alpha.copy()
    la[0] = 30.0
    moved = model.replace(log_alpha=la)
    assert not lists.still_valid(moved.mu, moved.A, moved.log_alpha)
    img = r(*tensors(moved))
    assert r.stats["rebuilds"] == 2
    assert np.max(np.abs(img.detach().numpy() - dense_render(moved))) <= IMAGE_TOL
    # widening a kernel (A shrinks) and moving it are caught as well
    A = model.A.copy()
    A[0] *= 0.05
    assert not CullLists.build(model.mu, model.A, model.log_alpha, (w, h, 0.0, 0.0, 1.0, 1.0),
                               slack=2.0).still_valid(model.mu, A, model.log_alpha)
    mu = model.mu.copy()
    mu[0] += 40.0
    assert not lists.still_valid(mu, model.A, model.log_alpha)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_many_random_moves_never_break_exactness(backend: str) -> None:
    # whatever the check decides, the image must stay exact
    rng = np.random.default_rng(1)
    model = random_model(11, k=40, h=32, w=40)
    r = SmoeRenderer(32, 40, slack=3.0, backend=backend)
    current = model
    for _ in range(12):
        current = current.replace(
            mu=current.mu + rng.normal(0, 0.5, current.mu.shape),
            A=current.A * (1 + rng.normal(0, 0.05, current.A.shape)),
            log_alpha=current.log_alpha + rng.normal(0, 0.3, current.log_alpha.shape),
        )
        img = r(*tensors(current))
        assert np.max(np.abs(img.detach().numpy() - dense_render(current))) <= IMAGE_TOL
    assert 1 < r.stats["rebuilds"] <= 13


def test_a_slack_that_buys_no_reuse_is_dropped_for_a_while() -> None:
    # every call moves the model too far for the check: after the first lists
    # (with slack) fail at their first reuse, LEAN_BUILDS rebuilds use no slack
    # (fewer pairs), then the slack is tried again; every image stays exact
    rng = np.random.default_rng(4)
    model = random_model(13, k=40, h=32, w=40)
    r = SmoeRenderer(32, 40)
    slacks = []
    for _ in range(LEAN_BUILDS + 3):
        model = model.replace(log_alpha=model.log_alpha + rng.normal(0, 3.0, model.n_kernels))
        img = r(*tensors(model))
        assert r.lists is not None
        slacks.append(r.lists.slack)
        assert np.max(np.abs(img.detach().numpy() - dense_render(model))) <= IMAGE_TOL
    assert r.stats["rebuilds"] == len(slacks)
    assert slacks == [DEFAULT_SLACK] + [0.0] * LEAN_BUILDS + [DEFAULT_SLACK, 0.0]
    assert r.stats["lean_rebuilds"] == LEAN_BUILDS + 1
    lean = CullLists.build(model.mu, model.A, model.log_alpha, (40, 32, 0.0, 0.0, 1.0, 1.0),
                           slack=0.0)
    wide = CullLists.build(model.mu, model.A, model.log_alpha, (40, 32, 0.0, 0.0, 1.0, 1.0))
    assert lean.n_pairs < wide.n_pairs


def test_lists_without_slack_are_kept_only_for_unmoved_parameters(monkeypatch) -> None:
    # lean lists (slack 0) cannot survive a move: the renderer compares the
    # parameters exactly instead of evaluating the bound, keeps the lists for
    # the same parameters, rebuilds for any move, and every image stays exact
    rng = np.random.default_rng(5)
    model = random_model(14, k=40, h=32, w=40)
    r = SmoeRenderer(32, 40, slack=0.0)
    bound_calls = []
    original = CullLists.still_valid
    monkeypatch.setattr(
        CullLists, "still_valid",
        lambda self, *a: bound_calls.append(1) or original(self, *a),
    )
    for _ in range(2):
        img = r(*tensors(model))
        assert np.max(np.abs(img.detach().numpy() - dense_render(model))) <= IMAGE_TOL
    assert r.stats["rebuilds"] == 1 and r.stats["calls"] == 2
    moved = model.replace(mu=model.mu + rng.normal(0, 1e-6, model.mu.shape))
    img = r(*tensors(moved))
    assert r.stats["rebuilds"] == 2
    assert np.max(np.abs(img.detach().numpy() - dense_render(moved))) <= IMAGE_TOL
    assert bound_calls == []
    # lists with slack still go through the bound
    wide = SmoeRenderer(32, 40)
    wide(*tensors(model))
    wide(*tensors(moved))
    assert bound_calls == [1]


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_changing_the_kernel_count_rebuilds(backend: str) -> None:
    model = random_model(12)
    r = SmoeRenderer(40, 56, backend=backend)
    r(*tensors(model))
    smaller = model.subset(np.arange(30))
    img = r(*tensors(smaller))
    assert r.stats["rebuilds"] == 2
    assert np.max(np.abs(img.detach().numpy() - dense_render(smaller))) <= IMAGE_TOL


# -- bad input ------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_renderer_rejects_bad_input(backend: str) -> None:
    model = random_model(13)
    mu, A, m, la = tensors(model)
    r = SmoeRenderer(40, 56, backend=backend)
    with pytest.raises(ValueError, match="'mu' contains NaN"):
        r(mu.detach().clone().fill_(float("nan")), A, m, la)
    with pytest.raises(ValueError, match="'m' contains NaN"):
        r(mu, A, m.detach().clone().fill_(float("inf")), la)
    with pytest.raises(ValueError, match="'log_alpha' contains NaN"):
        r(mu, A, m, la.detach().clone().fill_(float("nan")))
    with pytest.raises(ValueError, match="expected"):
        r(mu[:, :1], A, m, la)
    with pytest.raises(ValueError, match="expected"):
        r(mu[:0], A[:0], m[:0], la[:0])
    with pytest.raises(ValueError):
        SmoeRenderer(0, 10)
    with pytest.raises(ValueError):
        SmoeRenderer(10, 10, backend="opencl")
    with pytest.raises(ValueError):
        render(model, scale=-1.0)


# -- colour: one gate, C experts ---------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_colour_render_matches_dense(seed: int) -> None:
    model = random_model(seed, channels=3)
    fast = render(model)
    assert fast.dtype == np.float32 and fast.shape == (40, 56, 3)
    assert np.max(np.abs(fast - dense_render(model))) <= IMAGE_TOL
    half = render(model, scale=0.5)
    xs, ys = output_grid(model, scale=0.5)
    assert np.max(np.abs(half - dense_render(model, xs, ys))) <= IMAGE_TOL


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_colour_renderer_image_and_gradients_match_dense_autograd(
    backend: str, channels: int
) -> None:
    model = random_model(11, k=50, h=36, w=44, channels=channels)
    x0, y0 = 2.0, 3.0
    r = SmoeRenderer(30, 34, x0=x0, y0=y0, backend=backend)
    xs = np.arange(34, dtype=np.float64) + x0
    ys = np.arange(30, dtype=np.float64) + y0
    g = torch.randn(
        30, 34, channels, dtype=torch.float64, generator=torch.Generator().manual_seed(3)
    )
    ts = tensors(model)
    img = r(*ts)
    assert img.shape == (30, 34, channels)
    grads = torch.autograd.grad((img * g).sum(), ts)
    ref, ref_grads = dense_grads(model, xs, ys, g)
    assert float((img.detach() - ref).abs().max()) <= IMAGE_TOL
    for name, a, b in zip(("mu", "A", "m", "log_alpha"), grads, ref_grads, strict=True):
        assert a.shape == b.shape
        assert rel_err(a, b) <= GRAD_TOL, name


def test_colour_channels_are_the_gray_models_of_each_channel() -> None:
    colour = random_model(12, channels=3)
    r = SmoeRenderer(40, 56)
    img = r(*tensors(colour)).detach()
    for c in range(3):
        gray = colour.replace(m=colour.m[:, c])
        np.testing.assert_allclose(
            img[:, :, c].numpy(), r(*tensors(gray)).detach().numpy(), atol=1e-12
        )


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_colour_gradients_are_deterministic(backend: str) -> None:
    model = random_model(13, channels=3)
    out = []
    for _ in range(2):
        ts = tensors(model)
        img = SmoeRenderer(40, 56, backend=backend)(*ts)
        out.append(torch.autograd.grad(img.square().sum(), ts))
    for a, b in zip(*out, strict=True):
        assert torch.equal(a, b)


# -- the torch backend: segments and chunks ------------------------------------------


@pytest.mark.parametrize("channels", [0, 3])
@pytest.mark.parametrize(("segment", "chunk"), [(4, 1), (16, 1 << 24), (5, 3000)])
def test_torch_backend_segments_and_chunks_match_dense(
    monkeypatch: pytest.MonkeyPatch, channels: int, segment: int, chunk: int
) -> None:
    # long lists cut into many segments per block, merged per pixel; blocks in
    # chunks (one block per chunk with chunk = 1); edge blocks past the window
    monkeypatch.setattr(torch_backend, "TORCH_SEGMENT", segment)
    monkeypatch.setattr(torch_backend, "TORCH_CHUNK", chunk)
    model = random_model(21, k=120, h=44, w=52, spread=0.15, channels=channels)
    x0, y0 = -1.5, 2.0
    r = SmoeRenderer(37, 45, x0=x0, y0=y0, backend="torch", block=8)
    g_shape = (37, 45, channels) if channels else (37, 45)
    g = torch.randn(*g_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ts = tensors(model)
    img = r(*ts)
    grads = torch.autograd.grad((img * g).sum(), ts)
    plan = r._torch_index[1] if r._torch_index is not None else None
    assert plan is not None and r.lists is not None
    assert max(np.diff(r.lists.off)) > segment  # some block has several segments
    assert any(c.seg_block is not None for c in plan.chunks)
    assert (len(plan.chunks) > 1) == (chunk < 1 << 24)
    ref, ref_grads = dense_grads(model, np.arange(45.0) + x0, np.arange(37.0) + y0, g)
    assert img.shape == g_shape
    assert float((img.detach() - ref).abs().max()) <= IMAGE_TOL
    for name, a, b in zip(("mu", "A", "m", "log_alpha"), grads, ref_grads, strict=True):
        assert rel_err(a, b) <= GRAD_TOL, name


@pytest.mark.parametrize("channels", [0, 3])
def test_torch_and_numba_backends_agree_on_a_trained_like_model(channels: int) -> None:
    # many kernels of mixed sizes, a window larger than a few blocks: both
    # backends evaluate the same lists, so they agree to rounding (float64)
    rng = np.random.default_rng(3)
    h, w = 80, 112
    grid = np.stack(np.meshgrid(np.arange(3, w, 7.0), np.arange(3, h, 7.0)), -1).reshape(-1, 2)
    k = len(grid)
    sig = rng.uniform(1.0, 6.0, (k, 2))
    th = rng.uniform(0, np.pi, k)
    rot = np.stack(
        [np.stack([np.cos(th), -np.sin(th)], 1), np.stack([np.sin(th), np.cos(th)], 1)], 1
    )
    A = rot @ (np.eye(2)[None] / (np.sqrt(2) * sig[:, :, None]))
    m = rng.uniform(0, 1, (k, channels) if channels else k)
    model = SmoeModel(grid + rng.normal(0, 1.5, grid.shape), A, m, rng.normal(0, 0.5, k), h, w)
    g = torch.randn(
        *((h, w, channels) if channels else (h, w)),
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(4),
    )
    out = {}
    for backend in ("numba", "torch"):
        ts = tensors(model)
        img = SmoeRenderer(h, w, backend=backend)(*ts)
        out[backend] = (img.detach(), torch.autograd.grad((img * g).sum(), ts))
    assert float((out["numba"][0] - out["torch"][0]).abs().max()) <= 1e-10
    for a, b in zip(out["numba"][1], out["torch"][1], strict=True):
        assert rel_err(b, a) <= 1e-8
    assert np.max(np.abs(out["torch"][0].numpy() - dense_render(model))) <= IMAGE_TOL


def test_torch_backend_float32_training_step_matches_numba() -> None:
    # the training contract on the torch backend: float32 in and out, the
    # gradients of a float32 step within float32 rounding of the float64 ones
    model = random_model(22, k=80, h=48, w=64, channels=3)
    target = torch.rand(48, 64, 3, generator=torch.Generator().manual_seed(5))
    grads = {}
    for dtype in (torch.float32, torch.float64):
        ts = tensors(model, dtype)
        img = SmoeRenderer(48, 64, backend="torch")(*ts)
        assert img.dtype == dtype
        ((img - target.to(dtype)) ** 2).mean().backward()
        grads[dtype] = [t.grad for t in ts]
    for a, b in zip(grads[torch.float32], grads[torch.float64], strict=True):
        assert a is not None and b is not None and a.dtype == torch.float32
        assert rel_err(a.double(), b) <= 1e-4


def test_torch_backend_float32_is_exact_far_from_the_origin() -> None:
    # a window at a fractional origin near pixel (4000, 3000) of a large image:
    # float32 pixel coordinates there are only good to ~2.4e-4 px, so the kernel
    # centres are taken relative to each block in float64 before the float32
    # arithmetic, and the image is as exact as near the origin
    x0, y0 = 4000.37, 3000.61
    base = random_model(23, k=60, h=40, w=56)
    shifted = base.replace(mu=base.mu + np.array([x0, y0]), height=3100, width=4100)
    shifted = shifted.replace(
        **{
            n: getattr(shifted, n).astype(np.float32).astype(np.float64)
            for n in ("mu", "A", "m", "log_alpha")
        }
    )
    r = SmoeRenderer(40, 56, x0=x0, y0=y0, backend="torch")
    img = r(*tensors(shifted, torch.float32)).detach().double()
    ref = dense_image_torch(
        *(t.detach() for t in tensors(shifted)),
        torch.arange(56.0, dtype=torch.float64) + x0,
        torch.arange(40.0, dtype=torch.float64) + y0,
    )
    assert float((img - ref).abs().max()) <= IMAGE_TOL


# -- CUDA ------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_renderer_matches_dense() -> None:
    model = random_model(14, k=80, h=64, w=72)
    r = SmoeRenderer(64, 72, device="cuda")
    assert r.backend == "torch"
    ts = [t.detach().cuda().requires_grad_() for t in tensors(model)]
    g = torch.randn(64, 72, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    img = r(*ts)
    grads = torch.autograd.grad((img * g.cuda()).sum(), ts)
    ref, ref_grads = dense_grads(model, np.arange(72.0), np.arange(64.0), g)
    assert float((img.detach().cpu() - ref).abs().max()) <= IMAGE_TOL
    for a, b in zip(grads, ref_grads, strict=True):
        assert rel_err(a.cpu(), b) <= GRAD_TOL


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_colour_renderer_matches_dense() -> None:
    model = random_model(15, k=80, h=64, w=72, channels=3)
    r = SmoeRenderer(64, 72, device="cuda")
    ts = [t.detach().cuda().requires_grad_() for t in tensors(model)]
    g = torch.randn(64, 72, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    img = r(*ts)
    assert img.shape == (64, 72, 3)
    grads = torch.autograd.grad((img * g.cuda()).sum(), ts)
    ref, ref_grads = dense_grads(model, np.arange(72.0), np.arange(64.0), g)
    assert float((img.detach().cpu() - ref).abs().max()) <= IMAGE_TOL
    for a, b in zip(grads, ref_grads, strict=True):
        assert rel_err(a.cpu(), b) <= GRAD_TOL
