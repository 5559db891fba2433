"""S-SMoE and AS-SMoE: DBSCAN superpixels, kernel allocation, local fits, budgets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from smoe_gui.cli import main
from smoe_gui.core.io.image import load_image
from smoe_gui.core.labels import label_boundaries as superpixel_boundaries
from smoe_gui.core.methods.drawing import draw_superpixels
from smoe_gui.core.methods.pipeline import SEGMENT_METHODS, STAGES_BY_METHOD, initialize
from smoe_gui.core.methods.segment.segment_init import (
    AS_PATCH,
    LocalFitConfig,
    LocalTask,
    allocate_kernels,
    as_smoe_kernels,
    bisect_pixels,
    fit_local_chunk,
    s_smoe_kernels,
    steering_from_cov,
)
from smoe_gui.core.methods.segment.superpixels import (
    mdbscan_superpixels,
    merge_segments,
    segment_stats,
)
from smoe_gui.core.params import METHODS, Params

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "resources" / "samples"
#: Small and quick local fits for the tests.
QUICK = {"as_steps": 15, "as_doublings": 1}


def _sample(name: str = "parrots.png", side: int = 96) -> np.ndarray:
    return load_image(SAMPLES / name, max_size=side)


def _generated(kind: str, h: int = 40, w: int = 56, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    if kind == "noise":
        return rng.random((h, w)).astype(np.float32)
    if kind == "disc":
        return np.where((xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (h / 3) ** 2, 0.9, 0.1).astype(
            np.float32
        )
    if kind == "ramp":
        return (xx / (w - 1)).astype(np.float32)
    if kind == "constant":
        return np.full((h, w), 0.5, np.float32)
    raise ValueError(kind)


def _two_regions() -> np.ndarray:
    img = np.full((48, 64), 0.2, np.float32)
    img[:, 32:] = 0.8
    return img


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


IMAGES = [("sample", _sample()), ("flowers", _sample("flowers.png", 80))] + [
    (kind, _generated(kind)) for kind in ("noise", "disc", "ramp", "constant")
]


# --- superpixels ------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "image"), IMAGES, ids=[n for n, _ in IMAGES])
@pytest.mark.parametrize(("min_size", "cap"), [(50, 0), (1, 0), (20, 7)])
def test_superpixels_label_every_pixel_connected_and_deterministic(
    name: str, image: np.ndarray, min_size: int, cap: int
) -> None:
    labels = mdbscan_superpixels(image, 0.05, min_size, 1.0, max_segments=cap)
    assert labels.shape == image.shape and labels.dtype == np.int32
    n = int(labels.max()) + 1
    # every pixel labelled, labels 0..n-1 without gaps, numbered in first-pixel order
    assert labels.min() == 0 and np.array_equal(np.unique(labels), np.arange(n))
    _, first = np.unique(labels.ravel(), return_index=True)
    assert np.all(np.diff(first) > 0)
    # each segment is one 4-connected piece
    for k in range(n):
        _, pieces = ndimage.label(labels == k)
        assert pieces == 1, f"segment {k} has {pieces} pieces"
    if n > 1:
        assert np.bincount(labels.ravel()).min() >= min(min_size, image.size)
    if cap:
        assert n <= cap
    assert np.array_equal(labels, mdbscan_superpixels(image, 0.05, min_size, 1.0, max_segments=cap))


def test_superpixels_follow_the_regions() -> None:
    labels = mdbscan_superpixels(_two_regions(), 0.05, 10, 0.0)
    assert int(labels.max()) + 1 == 2
    assert np.all(labels[:, :32] == 0) and np.all(labels[:, 32:] == 1)
    # a constant image is one segment; noise above the threshold gives many
    assert mdbscan_superpixels(_generated("constant"), 0.05, 1, 0.0).max() == 0
    assert mdbscan_superpixels(_generated("noise"), 0.05, 1, 0.0).max() > 100


def test_merge_segments_caps_the_count_and_keeps_segments_connected() -> None:
    image = _sample()
    labels = mdbscan_superpixels(image, 0.03, 1, 0.0)
    for cap in (1, 5, 40):
        merged = merge_segments(labels, image, max_segments=cap)
        n = int(merged.max()) + 1
        assert 1 <= n <= cap
        for k in range(n):
            assert ndimage.label(merged == k)[1] == 1


def test_superpixels_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="threshold"):
        mdbscan_superpixels(_sample(), 0.0)
    with pytest.raises(ValueError, match="blur"):
        mdbscan_superpixels(_sample(), 0.05, blur=-1.0)
    with pytest.raises(ValueError, match="2-D"):
        mdbscan_superpixels(np.zeros((3, 3, 3)))


def test_s_smoe_colour_experts_start_from_their_parts_mean_colour() -> None:
    from smoe_gui.core.methods.pipeline import initialize
    from smoe_gui.core.params import Params

    red, green = np.array([0.6, 0.3, 0.3]), np.array([0.3, 0.6, 0.3])
    halves = np.empty((32, 64, 3), dtype=np.float32)
    halves[:, :32], halves[:, 32:] = red, green
    init = initialize(
        halves, Params(channels="rgb", n_kernels=2, expert_iters=0, superpixel_blur=0.0), "s-smoe"
    )
    m = init.model.m
    assert m.shape == (2, 3)
    left = int(np.argmin(init.model.mu[:, 0]))
    assert np.allclose(m[left], red, atol=1e-6) and np.allclose(m[1 - left], green, atol=1e-6)


def test_segment_stats_match_direct_moments() -> None:
    image = _sample()
    labels = mdbscan_superpixels(image)
    stats = segment_stats(labels, image)
    for k in (0, int(labels.max())):
        ys, xs = np.nonzero(labels == k)
        assert stats.count[k] == xs.size
        assert np.allclose(stats.centroid[k], [xs.mean(), ys.mean()])
        assert np.allclose(stats.cov[k], np.cov(np.stack([xs, ys]), bias=True))
        assert np.isclose(stats.mean[k], image[ys, xs].mean())
        assert list(stats.bbox[k]) == [xs.min(), ys.min(), xs.max(), ys.max()]


# --- S-SMoE -------------------------------------------------------------------------------------
def test_steering_from_cov_gives_the_gaussian_of_that_covariance() -> None:
    cov = np.array([[[9.0, 2.0], [2.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]])
    A = steering_from_cov(cov)
    q = np.einsum("kij,klj->kil", A, A)
    c = cov[0] + np.eye(2) / 12
    assert np.allclose(q[0], 0.5 * np.linalg.inv(c))
    assert np.allclose(A[:, 0, 1], 0.0)  # lower triangular
    assert np.allclose(q[1], 0.5 * np.eye(2) / 0.25)  # floored variance


def test_bisection_cuts_into_balanced_nonempty_parts() -> None:
    rng = np.random.default_rng(1)
    xs, ys = rng.random(1000) * 50, rng.random(1000) * 10
    for parts in (1, 2, 3, 7, 16):
        pieces = bisect_pixels(xs, ys, parts)
        assert len(pieces) == parts
        sizes = [p.size for p in pieces]
        assert sum(sizes) == 1000 and min(sizes) > 0
        assert max(sizes) - min(sizes) <= 2 * parts
        assert np.array_equal(np.sort(np.concatenate(pieces)), np.arange(1000))
    # the first cut of an elongated set is across its long axis
    left, right = bisect_pixels(xs, ys, 2)
    assert xs[left].max() <= xs[right].min()
    assert len(bisect_pixels(xs[:3], ys[:3], 10)) == 3


def test_allocation_sums_to_the_budget_and_favours_busy_segments() -> None:
    count = np.array([100, 100, 10, 1000])
    std = np.array([0.0, 0.3, 0.0, 0.0])
    alloc = allocate_kernels(count, std, 50)
    assert alloc.sum() == 50 and alloc.min() >= 1
    assert alloc[1] > alloc[0]
    assert np.all(allocate_kernels(np.array([2, 3]), np.zeros(2), 100) == [2, 3])
    with pytest.raises(ValueError, match="one kernel each"):
        allocate_kernels(count, std, 3)


def test_s_smoe_one_kernel_per_segment_at_centroid_with_mean_value() -> None:
    image = _two_regions()
    labels = mdbscan_superpixels(image, 0.05, 10, 0.0)
    k = s_smoe_kernels(image, labels)
    assert np.allclose(k.mu, [[15.5, 23.5], [47.5, 23.5]])
    assert np.allclose(k.values, [0.2, 0.8], atol=1e-6)
    assert list(k.segment) == [0, 1]
    split = s_smoe_kernels(image, labels, 10)
    assert split.mu.shape[0] == 10 and set(split.segment.tolist()) == {0, 1}
    assert np.all((split.mu[split.segment == 0, 0] < 32) & (split.values[split.segment == 0] < 0.3))


# --- AS-SMoE ------------------------------------------------------------------------------------
def test_per_segment_fits_reproduce_a_two_region_image() -> None:
    image = _two_regions()
    params = Params(superpixel_blur=0.0, superpixel_min_size=10)
    s = initialize(image, params, "s-smoe")
    a = initialize(image, params, "as-smoe")
    assert int(a.segment_map.max()) + 1 == 2
    assert a.reconstruction is not None and s.reconstruction is not None
    psnr_as = _psnr(a.reconstruction, image)
    # the local fits sharpen the boundary that one kernel per region blurs
    assert psnr_as >= 27.0, psnr_as
    assert psnr_as > _psnr(s.reconstruction, image) + 3.0
    left = a.kernel_segment == 0
    assert np.all(a.model.mu[left, 0] < 40) and np.all(a.model.mu[~left, 0] > 24)


def test_local_fits_double_kernels_only_below_the_target() -> None:
    image = _sample()
    labels = mdbscan_superpixels(image)
    easy = as_smoe_kernels(image, labels, LocalFitConfig(target_db=10.0, steps=10, doublings=2))
    hard = as_smoe_kernels(image, labels, LocalFitConfig(target_db=80.0, steps=10, doublings=2))
    assert hard.mu.shape[0] > easy.mu.shape[0]
    assert np.all(np.isfinite(hard.A)) and np.all(hard.log_alpha <= 0.0)


def test_local_fits_in_a_process_pool_match_this_process() -> None:
    import torch

    image = _sample(side=64)
    labels = mdbscan_superpixels(image, 0.03, 10)
    config = LocalFitConfig(steps=5, doublings=0)
    threads = torch.get_num_threads()
    here = as_smoe_kernels(image, labels, config, 100, workers=1)
    assert torch.get_num_threads() == threads  # the thread pool gives torch's threads back
    pool = as_smoe_kernels(image, labels, config, 100, workers=2)
    for a, b in (
        (here.mu, pool.mu),
        (here.A, pool.A),
        (here.values, pool.values),
        (here.log_alpha, pool.log_alpha),
    ):
        assert np.array_equal(a, b)
    assert "threads" in here.notes[0] and "processes" in pool.notes[0]
    with pytest.raises(ValueError, match="workers"):
        as_smoe_kernels(image, labels, config, workers=0)


@pytest.mark.slow
def test_local_fits_inside_a_dask_task_go_to_its_cluster() -> None:
    distributed = pytest.importorskip("distributed")
    import torch

    image = _sample(side=64)
    labels = mdbscan_superpixels(image, 0.03, 10)
    config = LocalFitConfig(steps=5, doublings=0)
    here = as_smoe_kernels(image, labels, config, 100, workers=1)
    threads = torch.get_num_threads()
    try:
        with (
            distributed.LocalCluster(
                n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
            distributed.get_task_stream(client) as stream,
        ):
            remote = client.submit(
                as_smoe_kernels, image, labels, config, 100, 1, pure=False
            ).result()
    finally:
        torch.set_num_threads(threads)
    fits = [t for t in stream.data if str(t["key"]).startswith("smoe-as-fit")]
    assert "(dask)" in remote.notes[0]
    assert len(fits) >= 2  # one task per chunk of local fits, run on the cluster
    for a, b in ((here.mu, remote.mu), (here.A, remote.A), (here.values, remote.values)):
        assert np.array_equal(a, b)


@pytest.mark.parametrize(("image", "budget"), [(_sample(), 40), (_sample("flowers.png", 80), 150)])
def test_as_smoe_starts_better_than_s_smoe(image: np.ndarray, budget: int) -> None:
    # the local fits start from the S-SMoE allocation and keep only fits that lower
    # their window's error: the initial PSNR is higher (measured: 2-5 dB here)
    params = Params(n_kernels=budget)
    s = initialize(image, params, "s-smoe")
    a = initialize(image, params, "as-smoe")
    assert a.n_kernels == s.n_kernels == budget
    assert max(a.expert_psnr) >= max(s.expert_psnr) + 1.0, (max(a.expert_psnr), max(s.expert_psnr))


def test_local_fits_keep_a_fit_only_if_it_lowers_the_window_error() -> None:
    # a window already modelled exactly: no step can lower its error, the start comes back
    pixels = np.full((AS_PATCH, AS_PATCH), 0.5, np.float32)
    task = LocalTask(
        pixels,
        np.ones_like(pixels),
        np.ones(pixels.shape, bool),
        (0.0, 0.0),
        1.0,
        np.array([[10.0, 12.0]]),
        np.array([[0.2, 0.0, 0.2]]),
        np.array([0.5]),
        np.zeros(1),
        np.zeros((0, 2)),
        np.zeros((0, 3)),
        np.zeros(0),
        np.zeros(0),
        False,
    )
    ramp = np.tile(np.linspace(0, 1, AS_PATCH, dtype=np.float32), (AS_PATCH, 1))
    better = LocalTask(
        ramp,
        task.weight,
        task.inside,
        task.x0,
        1.0,
        np.array([[10.0, 12.0], [22.0, 12.0]]),
        np.array([[0.2, 0.0, 0.2]] * 2),
        np.array([0.5, 0.5]),
        np.zeros(2),
        task.ctx_mu,
        task.ctx_a,
        task.ctx_m,
        task.ctx_la,
        False,
    )
    flat, fitted = fit_local_chunk([task, better], LocalFitConfig(steps=20, doublings=0))
    assert not flat["kept"] and np.array_equal(flat["mu"], task.mu)
    assert fitted["kept"] and fitted["mse"][1] < fitted["mse"][0]


# --- through initialize: budgets, stages, determinism -----------------------------------------
@pytest.mark.parametrize("method", SEGMENT_METHODS)
@pytest.mark.parametrize(("name", "image"), IMAGES[:4], ids=[n for n, _ in IMAGES[:4]])
@pytest.mark.parametrize("budget", [20, 150])
def test_segment_methods_meet_kernel_budgets(
    method: str, name: str, image: np.ndarray, budget: int
) -> None:
    init = initialize(image, Params(n_kernels=budget, **QUICK), method)
    assert 0.95 * budget <= init.n_kernels <= budget
    assert init.segment_map is not None and init.segment_map.shape == image.shape
    assert init.segment_map.dtype == np.int32
    assert init.kernel_segment.shape == (init.n_kernels,)
    assert set(np.unique(init.kernel_segment)) <= set(range(int(init.segment_map.max()) + 1))


def test_budget_larger_than_the_image_gives_one_kernel_per_pixel() -> None:
    image = _generated("disc", 8, 10)
    init = initialize(image, Params(n_kernels=500), "s-smoe")
    assert init.n_kernels == 80


@pytest.mark.parametrize("method", ["edge", "grid"])
def test_edge_and_grid_meet_kernel_budgets_through_the_planner(method: str) -> None:
    pytest.importorskip("smoe_gui.core.methods.budget")
    for budget in (100, 300):
        init = initialize(_sample(side=128), Params(n_kernels=budget), method)
        assert 0.95 * budget <= init.n_kernels <= budget


@pytest.mark.parametrize("method", SEGMENT_METHODS)
def test_segment_methods_are_deterministic_and_report_their_stages(method: str) -> None:
    image = _sample()
    params = Params(**QUICK)
    one = initialize(image, params, method)
    two = initialize(image, params, method)
    for a, b in (
        (one.model.mu, two.model.mu),
        (one.model.A, two.model.A),
        (one.model.m, two.model.m),
        (one.segment_map, two.segment_map),
    ):
        assert np.array_equal(a, b)
    assert tuple(one.timings_ms) == STAGES_BY_METHOD[method]
    assert one.summary()["superpixels"] == int(one.segment_map.max()) + 1
    assert one.edges.shape == image.shape and not one.edges.any()
    assert np.isfinite(one.expert_psnr).all()


def test_every_method_is_offered_and_initialises() -> None:
    assert METHODS == ("edge", "grid", "s-smoe", "as-smoe")
    for method in METHODS:
        init = initialize(_generated("disc"), Params(**QUICK), method)
        assert init.n_kernels >= 1 and (init.segment_map is not None) == (method in SEGMENT_METHODS)


def test_superpixel_boundaries_drawn() -> None:
    labels = mdbscan_superpixels(_two_regions(), 0.05, 10, 0.0)
    edge = superpixel_boundaries(labels)
    assert edge.sum() == 48 and np.all(edge[:, 31])
    picture = draw_superpixels(_two_regions(), labels, 2)
    assert picture.shape == (96, 128, 3) and picture.dtype == np.uint8


# --- command line ---------------------------------------------------------------------------------
def test_cli_init_segment_method_with_kernel_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "init"
    status = main(
        [
            "init",
            str(SAMPLES / "parrots.png"),
            "--max-size",
            "96",
            "--method",
            "s-smoe",
            "--kernels",
            "40",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    assert "kernels      40 " in printed and "superpixels" in printed
    assert (out / "superpixels.png").is_file()
    with np.load(out / "stages.npz") as stages:
        assert stages["segment_map"].shape == (64, 96) and stages["mu"].shape == (40, 2)
    assert '"n_kernels": 40' in (out / "params.json").read_text()


@pytest.mark.parametrize("bad", ["abc", "-5", "2.5"])
def test_cli_rejects_a_bad_kernel_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit_info:
        main(["init", str(SAMPLES / "parrots.png"), "--kernels", bad, "--out", str(out)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and "--kernels" in err
    assert not out.exists()


@pytest.mark.parametrize("method", METHODS)
def test_a_budget_beyond_the_image_gives_what_it_can(method: str) -> None:
    # found by the fuzz test: a budget whose max_pts = N/2 exceeds max_pts's range
    image = _generated("disc", 16, 20)
    init = initialize(image, Params(n_kernels=1_000_000, **QUICK), method)
    assert 1 <= init.n_kernels <= image.size


@pytest.mark.parametrize("method", SEGMENT_METHODS)
def test_segment_methods_model_colour_images_on_their_luma(method: str) -> None:
    rgb = np.stack(
        [_two_regions(), 1.0 - _two_regions(), np.full((48, 64), 0.5, np.float32)], axis=2
    )
    init = initialize(
        rgb, Params(channels="rgb", superpixel_blur=0.0, superpixel_min_size=10, **QUICK), method
    )
    assert int(init.segment_map.max()) + 1 == 2
    assert init.model.m.shape == (init.n_kernels, 3) and np.isfinite(init.expert_psnr).all()
