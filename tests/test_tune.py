"""Tuning (`smoe tune`, smoe_gui.core.tune): ranges, grids, the study file, bad input,
outputs, resume after SIGKILL, pruning, segment steering."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from smoe_gui.cli import main
from smoe_gui.core.io.fileio import write_png
from smoe_gui.core.io.modelio import read_model_image_digest
from smoe_gui.core.methods.edge.placement import edge_kernel_pairs, isotropic_A
from smoe_gui.core.params import Params, spec
from smoe_gui.core.tune import (
    TuneConfig,
    default_range,
    grid_points,
    load_trials,
    parse_range,
    run_tune,
)
from smoe_gui.core.tune.outputs import pareto_front
from smoe_gui.core.tune.trial import REPORT_POINTS, STARTUP_TRIALS, WARMUP_POINTS, prune_thresholds

ROOT = Path(__file__).resolve().parents[1]
#: Short fits: small tiles, few steps, a fraction of a second each.
QUICK = ["--set", "tile_size=32", "--set", "tile_steps=3", "--set", "max_pts=40",
         "--time-budget", "0.3"]
QUICK_PARAMS = Params(tile_size=32, tile_steps=3, max_pts=40)


@pytest.fixture()
def image_file(tmp_path: Path, synthetic_image: np.ndarray) -> Path:
    path = tmp_path / "synthetic.png"
    write_png(path, synthetic_image[:64, :80])
    return path


# -- ranges and grids -------------------------------------------------------------------
def test_parse_range_reads_bounds_and_steps() -> None:
    r = parse_range("delta_mu=2:6:3")
    assert (r.name, r.low, r.high, r.steps) == ("delta_mu", 2.0, 6.0, 3)
    assert r.points() == [2.0, 4.0, 6.0]
    assert parse_range(r.text()) == r
    # a log-scale whole-number parameter spreads on a log scale and rounds
    m = parse_range("max_pts=10:1000:3")
    assert m.log and m.points() == [10, 100, 1000]


@pytest.mark.parametrize(("text", "needle"), [
    ("nope=1:2", "unknown parameter 'nope'"),
    ("delta_mu=6:2", "low bound 6 is above high bound 2"),
    ("delta_mu=x:2", "'x' is not a number"),
    ("delta_mu=0.1:2", "outside its range [0.25, 32]"),
    ("max_pts=1.5:20", "not a whole number"),
    ("channels=0:1", "not a number"),
    ("delta_mu=1:2:1", "steps '1' must be a whole number of at least 2"),
    ("delta_mu", "must read NAME=LOW:HIGH"),
])
def test_parse_range_refuses_bad_input_in_one_line(text: str, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_range(text)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_grid_points_and_its_limits() -> None:
    points = grid_points([parse_range("delta_mu=2:4:2"), parse_range("lam=0:1:3")])
    assert len(points) == 6 and points[0] == {"delta_mu": 2.0, "lam": 0.0}
    assert points[-1] == {"delta_mu": 4.0, "lam": 1.0}
    with pytest.raises(ValueError, match="1 or 2 parameters"):
        grid_points([parse_range("delta_mu=2:4"), parse_range("lam=0:1"),
                     parse_range("canny_sigma=1:2")])
    with pytest.raises(ValueError, match="more than the 10 trials"):
        grid_points([parse_range("delta_mu=2:4:4"), parse_range("lam=0:1:3")], max_trials=10)
    with pytest.raises(ValueError, match="given twice"):
        grid_points([parse_range("lam=0:1"), parse_range("lam=0:0.5")])


def test_default_range_follows_the_table() -> None:
    r = default_range("delta_mu")
    assert (r.low, r.high) == (spec("delta_mu").low, spec("delta_mu").high)
    lr = default_range("lr_mu")  # log scale: a window around the default
    assert math.isclose(lr.low, 0.05) and math.isclose(lr.high, 0.8)


def test_prune_thresholds_are_medians_past_the_warm_up() -> None:
    finished = [{WARMUP_POINTS - 1: 10.0 + i, WARMUP_POINTS: 20.0 + i}
                for i in range(STARTUP_TRIALS)]
    thresholds = prune_thresholds(finished)
    assert WARMUP_POINTS - 1 not in thresholds  # in the warm-up
    assert thresholds[WARMUP_POINTS] == pytest.approx(20.0 + (STARTUP_TRIALS - 1) / 2)
    assert prune_thresholds(finished[:-1]) == {}  # too few finished trials
    assert REPORT_POINTS > WARMUP_POINTS


def test_pareto_front() -> None:
    pts = [(100, 30.0), (200, 31.0), (150, 29.0), (300, 31.0), (50, 25.0)]
    assert pareto_front(pts) == [4, 0, 1]


# -- segment steering -------------------------------------------------------------------
def test_segment_steering_stretches_pairs_along_their_segment() -> None:
    reduced = np.array([[10.0, 10.0, 0.0], [20.0, 30.0, 45.0]])
    mu1, a1, _ = edge_kernel_pairs(reduced, 3.0)
    mu_same, a_same, _ = edge_kernel_pairs(reduced, 3.0, 1.0)
    assert np.array_equal(a1, isotropic_A(4, 3.0)) and np.array_equal(a_same, a1)
    mu4, a4, _ = edge_kernel_pairs(reduced, 3.0, 4.0)
    assert np.array_equal(mu4, mu1)  # the centres do not move
    # the gate's standard deviation: 4·Δμ along the segment, Δμ across it
    for k, t in ((0, np.array([1.0, 0.0])), (3, np.array([1.0, 1.0]) / math.sqrt(2.0))):
        n = np.array([-t[1], t[0]])
        cov = np.linalg.inv(2.0 * a4[k] @ a4[k].T)  # exp(-dᵀ A Aᵀ d) = N(0, (2 A Aᵀ)⁻¹)
        assert math.sqrt(t @ cov @ t) == pytest.approx(12.0)
        assert math.sqrt(n @ cov @ n) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="at least 1"):
        edge_kernel_pairs(reduced, 3.0, 0.5)
    assert Params().segment_steering == 1.0  # the paper's isotropic Σ stays the default


# -- bad input: one line, exit 2, nothing written ---------------------------------------
@pytest.mark.parametrize(("args", "needle"), [
    (["--param", "nope=1:2"], "unknown parameter 'nope'"),
    (["--param", "delta_mu=5:2"], "above high bound"),
    (["--param", "delta_mu=a:2"], "is not a number"),
    (["--param", "delta_mu=0:2"], "outside its range"),
    (["--param", "delta_mu=1:30:30", "--param", "lam=0:1:30", "--sampler", "grid"],
     "the grid has 900"),
    (["--param", "delta_mu=1:3:5", "--sampler", "grid", "--trials", "3"], "more than the 3 trials"),
    (["--param", "max_pts=10:50", "--kernels", "100"], "set by the kernel budget's planner"),
    (["--param", "delta_mu=1:3", "--workers", "0"], "positive whole number"),
    (["--param", "delta_mu=1:3", "--objectives", "psnr,speed"], "unknown objective 'speed'"),
])
def test_bad_input_one_line_exit_2_nothing_written(
    image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
    needle: str,
) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["tune", str(image_file), *args, "--out", str(out)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and err.startswith("smoe: error:")
    assert not out.exists()


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no POSIX nice")
def test_the_trials_worker_runs_at_the_given_lower_priority(image_file: Path) -> None:
    from smoe_gui.core.tune.study import _Processes, check_config

    config = TuneConfig(images=[image_file], ranges=[parse_range("delta_mu=2:4:2")], nice=20)
    with pytest.raises(ValueError, match="nice must be between 0 and 19"):
        check_config(config)
    pool = _Processes(1, 1, nice=5)
    try:
        child = pool.executor.submit(os.nice, 0).result(timeout=120)
    finally:
        pool.shutdown()
    assert child == min(19, os.nice(0) + 5)


def test_a_file_that_is_not_a_study_or_is_locked(
    image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "study.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(SystemExit) as info:
        main(["tune", str(image_file), "--param", "delta_mu=1:3", "--out", str(out)])
    assert info.value.code == 2 and "is not a study" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["study.db"]

    other = tmp_path / "other"
    other.mkdir()
    con = sqlite3.connect(other / "study.db")
    con.execute("CREATE TABLE notes (x)")
    con.commit()
    with pytest.raises(SystemExit):
        main(["tune", str(image_file), "--param", "delta_mu=1:3", "--out", str(other)])
    assert "without Optuna's tables" in capsys.readouterr().err
    con.execute("CREATE TABLE studies (x)")
    con.execute("CREATE TABLE trials (x)")
    con.commit()
    con.execute("BEGIN EXCLUSIVE")  # another program holds the file
    try:
        with pytest.raises(SystemExit) as info:
            main(["tune", str(image_file), "--param", "delta_mu=1:3", "--out", str(other)])
        assert info.value.code == 2 and "locked" in capsys.readouterr().err
    finally:
        con.rollback()
        con.close()


def test_a_dask_scheduler_that_does_not_answer(
    image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("distributed")
    from smoe_gui.core.tune import study

    monkeypatch.setattr(study, "DASK_CONNECT_TIMEOUT_S", 1.0)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["tune", str(image_file), "--param", "delta_mu=1:3", "--dask-scheduler",
              "tcp://127.0.0.1:9", "--out", str(out)])
    assert info.value.code == 2 and "cannot reach the Dask scheduler" in capsys.readouterr().err
    assert not out.exists()


# -- a sweep, its outputs, resume ----------------------------------------------------------
def test_grid_sweep_writes_outputs_resumes_and_feeds_smoe_fit(
    image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "sweep"
    args = ["tune", str(image_file), "--param", "delta_mu=2:4:2", "--sampler", "grid", *QUICK,
            "--out", str(out)]
    assert main(args) == 0
    names = {p.name for p in out.iterdir()}
    assert {"study.db", "trials.csv", "params.json", "best.json", "sweep.png",
            "pareto_kernels.png", "pareto_seconds.png", "models"} <= names
    # the study is one file once the run ends: its write-ahead log folded in
    assert not {"study.db-wal", "study.db-shm"} & names
    con = sqlite3.connect(out / "study.db")
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()
    rows = load_trials(out)
    assert not (out / "study.db-wal").exists()  # reading closes its connections too
    assert [r["state"] for r in rows] == ["complete", "complete"]
    assert sorted(r["delta_mu"] for r in rows) == [2.0, 4.0]
    best = json.loads((out / "best.json").read_text())
    assert best["psnr_db"] == max(r["psnr_db"] for r in rows)
    assert (out / "models" / best["model"]).exists()
    assert len(read_model_image_digest(out / "models" / best["model"]) or "") == 16
    params = Params.from_json(out / "params.json")
    assert params.delta_mu == best["values"]["delta_mu"] and params.tile_size == 32
    assert params.time_budget == 0.3
    csv = (out / "trials.csv").read_text().splitlines()
    assert csv[0].startswith("trial,state,delta_mu,psnr_db") and len(csv) == 3

    capsys.readouterr()
    assert main(args) == 0  # resumes: nothing to run again
    assert "resuming: 2 of 2" in capsys.readouterr().err
    assert len(load_trials(out)) == 2
    # other settings for the same study: one line, exit 2
    with pytest.raises(SystemExit) as info:
        main([*args[:-2], "--method", "grid", "--out", str(out)])
    assert info.value.code == 2 and "made with method 'edge'" in capsys.readouterr().err

    fitted = tmp_path / "fit"
    assert main(["fit", str(image_file), "--params", str(out / "params.json"), "--quiet",
                 "--out", str(fitted)]) == 0
    assert json.loads((fitted / "report.json").read_text())["time_budget_s"] == 0.3


def test_tpe_search_with_two_objectives_and_processes(image_file: Path, tmp_path: Path) -> None:
    config = TuneConfig(
        images=[image_file], ranges=[parse_range("delta_mu=2:5"), parse_range("lam=0:0.5")],
        time_budget=0.3, trials=3, sampler="tpe", objectives=("psnr", "kernels"),
        params=QUICK_PARAMS, workers=2, threads=1,
    )
    summary = run_tune(config, tmp_path / "search")
    assert summary.ran == 3 and not summary.interrupted and summary.best is not None
    rows = load_trials(tmp_path / "search")
    assert len(rows) == 3 and all(r["state"] == "complete" for r in rows)
    assert all(2.0 <= r["delta_mu"] <= 5.0 and 0.0 <= r["lam"] <= 0.5 for r in rows)
    assert (tmp_path / "search" / "heatmap.png").exists()


def test_a_study_on_dask_runs_the_same_trials(image_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    config = TuneConfig(images=[image_file], ranges=[parse_range("delta_mu=2:4:2")], sampler="grid",
                        time_budget=0.3, params=QUICK_PARAMS)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        summary = run_tune(TuneConfig(**{**config.__dict__, "dask_scheduler": cluster}),
                           tmp_path / "dask")
    assert summary.ran == 2
    assert sorted(r["delta_mu"] for r in load_trials(tmp_path / "dask")) == [2.0, 4.0]


def test_resume_after_sigkill_loses_and_repeats_no_finished_trial(
    image_file: Path, tmp_path: Path,
) -> None:
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "smoe_gui.cli", "tune", str(image_file), "--param",
            "delta_mu=1:6:6", "--sampler", "grid", *QUICK[:-2], "--time-budget", "1",
            "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            csv = out / "trials.csv"
            if csv.exists() and csv.read_text().count(",complete,") >= 2:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no trial finished in time")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    before = {r["trial"]: r for r in load_trials(out) if r["state"] == "complete"}
    assert len(before) >= 2
    summary = run_tune(
        TuneConfig(images=[image_file], ranges=[parse_range("delta_mu=1:6:6")], sampler="grid",
                   time_budget=1.0, params=QUICK_PARAMS), out)
    after = load_trials(out)
    complete = [r for r in after if r["state"] == "complete"]
    assert summary.resumed == len(before) and summary.ran == 6 - len(before)
    for number, row in before.items():  # kept, unchanged
        assert next(r for r in after if r["trial"] == number) == row
    assert sorted(r["delta_mu"] for r in complete) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # none twice
    assert all(r["state"] in ("complete", "stale") for r in after)
