"""`smoe experiment`: the sweep engine, its files, resume, failures, executors."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from smoe_gui.cli import main
from smoe_gui.core.experiment import (
    COLUMNS,
    PAPER_IMAGES,
    TIMING_COLUMNS,
    ImageSource,
    SweepObserver,
    collect_images,
    default_images,
    parse_budgets,
    parse_methods,
    plan_jobs,
    run_experiment,
    time_to_converge,
)
from smoe_gui.core.experiment.store import STORE_FORMAT
from smoe_gui.core.io import fileio
from smoe_gui.core.io.modelio import read_model_image_digest
from smoe_gui.core.methods.pipeline import SEGMENT_METHODS
from smoe_gui.core.params import METHODS, Params
from smoe_gui.core.train.runs import HISTORY_COLUMNS, FitHistory

# Tiny and step-bounded: every run is deterministic on the CPU and takes well under a second.
FAST = {
    "tile_size": 48, "tile_steps": 4, "max_steps": 6, "time_budget": 120, "expert_iters": 2,
    "background_spacing": 12, "patience": 50, "as_steps": 10, "as_doublings": 1,
}
FAST_SET = [f"--set={k}={v}" for k, v in FAST.items()]
FIGURES = (
    "fig5_psnr_vs_kernels.png", "fig5_ssim_vs_kernels.png", "fig6_time_to_converge.png",
    "fig3_expert_psnr.png", "psnr_vs_time.png", "fig7_kernel_placement.png",
)


def _disc_image(h: int = 48, w: int = 60, shift: float = 0.0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 0.2 + 0.3 * xx / w + shift
    img[(xx - 22) ** 2 + (yy - 24) ** 2 < 11**2] = 0.9
    img[6:13, 34:56] = 0.05
    return np.clip(img, 0, 1).astype(np.float32)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    fileio.write_png(folder / "disc.png", _disc_image())
    fileio.write_png(folder / "bars.png", np.ascontiguousarray(_disc_image(shift=0.05)[:, ::-1]))
    fileio.write_text(folder / "notes.txt", "not an image\n")
    return folder


@pytest.fixture(scope="module")
def sweep(image_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    """One small sweep through the CLI: 2 images x 4 methods (the default) x 2 budgets."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = main(
            ["experiment", str(image_folder), "--budgets", "40,20", *FAST_SET, "--out", str(out)]
        )
    return out, status, buffer.getvalue()


# --------------------------------------------------------------------------------------
# Parsing and planning
# --------------------------------------------------------------------------------------
def test_budgets_are_parsed_sorted_and_checked() -> None:
    assert parse_budgets("2000, 500,1000,500") == (500, 1000, 2000)
    for bad in ("", "a", "500,,1000", "1.5", "-5", "1", "500;1000"):
        with pytest.raises(ValueError, match="budget") as info:
            parse_budgets(bad)
        assert "--" not in str(info.value)  # core does not word its errors as CLI flags


def test_methods_are_parsed_and_checked() -> None:
    assert parse_methods("grid, edge,grid") == ("grid", "edge")
    for bad in ("", "edge,foo", "edges"):
        with pytest.raises(ValueError, match="unknown method") as info:
            parse_methods(bad)
        assert "--" not in str(info.value)


def test_folders_are_scanned_and_non_images_skipped(image_folder: Path, tmp_path: Path) -> None:
    images, skipped = collect_images([image_folder, image_folder / "disc.png"])
    assert [p.name for p in images] == ["bars.png", "disc.png"]  # sorted, no duplicate
    assert [p.name for p in skipped] == ["notes.txt"]
    with pytest.raises(ValueError, match="no such file or folder"):
        collect_images([tmp_path / "missing"])


def test_default_images_are_the_paper_images() -> None:
    found, missing = default_images()
    assert sorted([p.stem for p in found] + missing) == sorted(PAPER_IMAGES)
    assert all(p.is_file() for p in found)
    # the bundled Kodak samples are always there
    assert {"parrots", "flowers"} <= {p.stem for p in found}


def test_time_to_converge_is_first_time_within_tolerance() -> None:
    t = [0.0, 1.0, 2.0, 3.0, 4.0]
    p = [20.0, 25.0, 29.85, 29.95, 30.0]
    assert time_to_converge(t, p, 30.0, tol_db=0.1) == 3.0
    assert time_to_converge(t, p, 30.0, tol_db=0.2) == 2.0
    assert time_to_converge(t, p, 31.0, tol_db=0.1) == 4.0  # never that close: the last time
    assert time_to_converge([], [], 30.0) == 0.0


def test_jobs_are_planned_by_the_budget_planner_and_grid_gets_the_edge_count() -> None:
    from smoe_gui.core.methods.budget import plan_budget
    from smoe_gui.core.methods.pipeline import initialize

    image = _disc_image()
    params = Params(**FAST)
    source = ImageSource("disc", Path("disc.png"), "abc", image)
    jobs = plan_jobs([source], ("edge", "grid"), (20, 40), params)
    assert [(j.method, j.budget) for j in jobs] == [
        ("edge", 20),
        ("grid", 20),
        ("edge", 40),
        ("grid", 40),
    ]
    for edge, grid in (jobs[0:2], jobs[2:4]):
        plan = plan_budget(image, params, "edge", edge.budget)
        assert edge.params == grid.params == plan.params
        assert edge.target_kernels == grid.target_kernels == plan.n_kernels <= edge.budget
        assert initialize(image, grid.params, method="grid").model.n_kernels == plan.n_kernels
        assert edge.params_hash == params.digest() and edge.error is None
    # a finished run is not planned again; an unloadable image gives failing jobs
    done = {jobs[0].key}
    again = plan_jobs([source], ("edge", "grid"), (20,), params, skip=done.__contains__)
    assert again[0].params == params and again[1].params == jobs[1].params
    broken = ImageSource("broken", Path("broken.png"), "-", None, "broken.png: cannot read")
    assert all(
        j.error == "broken.png: cannot read" for j in plan_jobs([broken], ("edge",), (20,), params)
    )


def test_observer_receives_the_sweep(image_folder: Path, tmp_path: Path) -> None:
    seen: list[tuple[str, object]] = []

    class Recorder(SweepObserver):
        def start(self, total: int, workers: int, expected_s: float) -> None:
            seen.append(("start", total))

        def job_started(self, label: str) -> None:
            seen.append(("job", label))

        def event(self, event: object) -> None:
            seen.append(("event", None))

        def job_finished(self, record: dict[str, object]) -> None:
            seen.append(("done", record["status"]))

        def close(self) -> None:
            seen.append(("close", None))

    summary = run_experiment(
        [image_folder / "disc.png"],
        tmp_path / "o",
        methods=("edge",),
        budgets=(20,),
        params=Params(**FAST),
        observer=Recorder(),
    )
    assert summary.ran == 1 and not summary.failed
    kinds = [k for k, _ in seen]
    assert seen[0] == ("start", 1) and seen[1] == ("job", "disc edge 20")
    assert "event" in kinds and ("done", "ok") in seen and seen[-1] == ("close", None)
    assert kinds.index("done") > kinds.index("event")


def test_core_argument_errors_are_not_worded_as_flags(image_folder: Path, tmp_path: Path) -> None:
    for kwargs in (
        {"workers": 0},
        {"workers": 2, "dask_scheduler": "tcp://127.0.0.1:1"},
        {"budgets": (1,)},
        {"methods": ("spiral",)},
    ):
        with pytest.raises(ValueError) as info:
            run_experiment(
                [image_folder / "disc.png"], tmp_path / "o", params=Params(**FAST), **kwargs
            )  # type: ignore[arg-type]
        assert "--" not in str(info.value), str(info.value)
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------
def test_small_sweep_writes_every_file_with_sane_content(sweep: tuple[Path, int, str]) -> None:
    out, status, stdout = sweep
    assert status == 0
    rows = _read_csv(out / "results.csv")
    assert list(rows[0]) == list(COLUMNS)
    assert len(rows) == 2 * len(METHODS) * 2
    assert {(r["image"], r["method"], r["budget"]) for r in rows} == {
        (i, m, b) for i in ("bars", "disc") for m in METHODS for b in ("20", "40")
    }
    for r in rows:
        assert r["status"] == "ok", r
        assert 10.0 < float(r["psnr_db"]) < 60.0
        assert 0.0 < float(r["ssim"]) <= 1.0
        assert 0 < int(r["final_kernels"]) <= int(r["init_kernels"]) <= int(r["budget"])
        assert int(r["steps"]) > 0
        assert 0.0 <= float(r["converge_s"]) <= float(r["fit_s"])
        assert float(r["init_s"]) > 0.0
        assert r["params_hash"] == Params(**FAST).digest()
        assert float(r["time_budget_s"]) == 120.0
    for image in ("bars", "disc"):
        for budget in ("20", "40"):
            pair = {r["method"]: r for r in rows if r["image"] == image and r["budget"] == budget}
            assert pair["edge"]["init_kernels"] == pair["grid"]["init_kernels"]  # equal start
            for method in SEGMENT_METHODS:  # the segment methods meet the budget exactly
                assert pair[method]["init_kernels"] == budget
    for name in FIGURES:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    for r in rows:
        payload = json.loads((out / "runs" / f"{r['run_id']}.json").read_text())
        # the one history format: FitHistory records, read back by FitHistory.from_records
        history = FitHistory.from_records(payload["history"])
        assert payload["format"] == STORE_FORMAT and len(history) >= int(r["steps"]) >= 2
        assert set(payload["history"][0]) == set(HISTORY_COLUMNS)
        elapsed = history.arrays()["elapsed_s"]
        assert (np.diff(elapsed) >= 0).all() and history.arrays()["step"][-1] == int(r["steps"])
        assert len(history.whole_image()) >= 1 and 10.0 < float(payload["initial_psnr_db"]) < 60.0
        # expert_stop="mse": the refinement may stop early (S-SMoE often does)
        assert 1 <= len(payload["expert_psnr"]) <= FAST["expert_iters"] + 1
        for suffix in (".init.npz", ".model.npz", ".png"):
            assert (out / "runs" / f"{r['run_id']}{suffix}").is_file()
        for suffix in (".init.npz", ".model.npz"):  # the window checks it against its image
            digest = read_model_image_digest(out / "runs" / f"{r['run_id']}{suffix}")
            assert digest is not None and len(digest) == 16
    md = (out / "results.md").read_text()
    assert "## Machine" in md and "torch" in md and "cpu_count" in md
    assert md.count("| disc | edge |") == 2 and md.count("| bars | grid |") == 2
    assert "budget 20: edge's final PSNR higher than the grid's on" in md and "budget 40:" in md
    assert "Edge higher on at least 2 of 2 and sooner on all 2: " in md  # the rule, as worded
    assert "## The paper's claims" in md and md.count("**Verdict: ") == 4
    claims = json.loads((out / "claims.json").read_text())
    assert [c["key"] for c in claims] == ["a", "b:s-smoe", "b:as-smoe", "c"]
    assert all(c["verdict"] in ("holds", "does not hold") for c in claims)  # every method ran
    assert claims[0]["numbers"]["pairs"] == 4  # 2 images x 2 budgets
    for claim in claims:
        assert f"**Verdict: {claim['verdict']}.**" in md
        assert (
            f"paper's claim ({claim['key'].split(':')[0]}) {claim['title']}: {claim['verdict']}"
            in stdout
        )
    sweep_info = json.loads((out / "sweep.json").read_text())
    assert sweep_info["workers"] == 1 and "cpu_count" in sweep_info["machine"]
    for name in FIGURES:
        assert f"]({name})" in md
    assert "notes.txt" in md and "notes.txt" in stdout  # skipped file listed


def test_rerun_resumes_and_reruns_only_missing_runs(
    sweep: tuple[Path, int, str], image_folder: Path, tmp_path: Path
) -> None:
    out, _, _ = sweep
    work = tmp_path / "out"
    import shutil

    shutil.copytree(out, work)
    before = _read_csv(work / "results.csv")
    params = Params(**FAST)
    summary = run_experiment([image_folder], work, budgets=(20, 40), params=params)
    runs = 2 * len(METHODS) * 2
    assert (summary.total, summary.resumed, summary.ran) == (runs, runs, 0)
    assert _read_csv(work / "results.csv") == before

    # a lost run is run again, alone
    lost = before[3]
    (work / "runs" / f"{lost['run_id']}.json").unlink()
    summary = run_experiment([image_folder], work, budgets=(20, 40), params=params)
    assert (summary.resumed, summary.ran) == (runs - 1, 1)
    after = _read_csv(work / "results.csv")
    assert [r["run_id"] for r in after] == [r["run_id"] for r in before]
    strip = [c for c in COLUMNS if c not in TIMING_COLUMNS]
    assert [r[c] for c in strip for r in after] == [r[c] for c in strip for r in before]

    # other parameters are other runs
    summary = run_experiment(
        [image_folder / "disc.png"],
        work,
        methods=("grid",),
        budgets=(20,),
        params=params.replace(max_steps=5),
    )
    assert (summary.resumed, summary.ran) == (0, 1)


def test_report_only_rewrites_the_report_from_the_stored_json_alone(
    sweep: tuple[Path, int, str],
    image_folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, _, _ = sweep
    work = tmp_path / "out"
    import shutil

    shutil.copytree(out, work)
    before = _read_csv(work / "results.csv")
    claims_before = json.loads((work / "claims.json").read_text())
    # only the JSON of each run is kept (as in a copy without the model files)
    for path in [p for p in (work / "runs").iterdir() if p.suffix != ".json"] + [
        p for p in work.iterdir() if p.is_file()
    ]:
        path.unlink()
    lost = before[5]
    (work / "runs" / f"{lost['run_id']}.json").unlink()
    stored = sorted(p.name for p in (work / "runs").iterdir())

    status = main(
        [
            "experiment",
            str(image_folder),
            "--budgets",
            "20,40",
            *FAST_SET,
            "--report-only",
            "--out",
            str(work),
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    label = f"{lost['image']} {lost['method']} {lost['budget']}"
    assert f"report rewritten from {len(before) - 1} stored run(s) of {len(before)}" in printed
    assert f"  not stored: {label}" in printed and "paper's claim (c)" in printed
    assert sorted(p.name for p in (work / "runs").iterdir()) == stored  # nothing ran
    assert _read_csv(work / "results.csv") == [r for r in before if r["run_id"] != lost["run_id"]]
    md = (work / "results.md").read_text()
    assert "rewritten from the stored runs" in md and "not recorded (no `sweep.json`)" in md
    assert f"1 run(s) of this sweep are not stored: {label}" in md
    assert (
        "## The paper's claims" in md
        and "Kernel placement figure (cf. paper Fig. 7) left out" in md
    )
    for name in FIGURES[:-1]:
        assert (work / name).is_file() and f"]({name})" in md
    assert not (work / "fig7_kernel_placement.png").exists() and not (work / "sweep.json").exists()
    claims = json.loads((work / "claims.json").read_text())
    assert [c["key"] for c in claims] == [c["key"] for c in claims_before]

    # with every run stored, the same claims as the sweep's own report;
    # sweep.json is used when present
    shutil.copy(out / "runs" / f"{lost['run_id']}.json", work / "runs")
    shutil.copy(out / "sweep.json", work)
    assert (
        main(
            [
                "experiment",
                str(image_folder),
                "--budgets",
                "20,40",
                *FAST_SET,
                "--report-only",
                "--out",
                str(work),
            ]
        )
        == 0
    )
    assert json.loads((work / "claims.json").read_text()) == claims_before
    md = (work / "results.md").read_text()
    assert (
        "Incomplete" not in md and "as recorded in `sweep.json`" in md and "1 local worker(s)" in md
    )
    assert _read_csv(work / "results.csv") == before


def test_report_only_refuses_a_folder_without_runs_of_the_sweep(
    sweep: tuple[Path, int, str],
    image_folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = tmp_path / "empty"
    with pytest.raises(SystemExit) as info:
        main(["experiment", str(image_folder), "--report-only", "--out", str(empty)])
    assert info.value.code == 2 and "no stored runs to report" in capsys.readouterr().err
    assert not empty.exists()
    out, _, _ = sweep
    work = tmp_path / "out"
    import shutil

    shutil.copytree(out, work)
    before = {p.name: p.stat().st_mtime_ns for p in work.iterdir()}
    with pytest.raises(
        SystemExit
    ) as info:  # other parameters (the default time budget): other runs
        main(
            [
                "experiment",
                str(image_folder),
                "--budgets",
                "20,40",
                "--report-only",
                "--out",
                str(work),
            ]
        )
    err = capsys.readouterr().err
    assert info.value.code == 2 and "none of the stored runs belong to this sweep" in err
    assert Params(**FAST).digest() in err and len(err.strip().splitlines()) == 1
    assert {p.name: p.stat().st_mtime_ns for p in work.iterdir()} == before  # nothing written


def test_failing_image_is_recorded_and_the_sweep_continues(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    fileio.write_png(folder / "good.png", _disc_image())
    fileio.write_bytes(folder / "broken.png", b"\x89PNG\r\n\x1a\nthis is not really a png")
    fileio.write_png(folder / "tiny.png", _disc_image()[:6, :6])  # smaller than 8x8
    out = tmp_path / "out"
    status = main(
        [
            "experiment",
            str(folder),
            "--budgets",
            "20",
            "--methods",
            "edge",
            *FAST_SET,
            "--out",
            str(out),
        ]
    )
    assert status == 1
    rows = {r["image"]: r for r in _read_csv(out / "results.csv")}
    assert rows["good"]["status"] == "ok"
    assert rows["broken"]["status"] == "failed" and "broken.png" in rows["broken"]["error"]
    assert rows["tiny"]["status"] == "failed" and "at least 8x8" in rows["tiny"]["error"]
    printed = capsys.readouterr().out
    assert "failed: broken edge 20" in printed and "failed: tiny edge 20" in printed
    assert "failed: " in (out / "results.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budgets", "500,abc"], "--budgets"),
        (["--budgets", "0"], "--budgets"),
        (["--methods", "edge,spiral"], "--methods: unknown method 'spiral'"),
        (["--workers", "2", "--dask-scheduler", "tcp://127.0.0.1:1"], "--dask-scheduler"),
        (["--workers", "two"], "--workers"),
        (["--set", "nonsense=1"], "unknown parameter"),
        (["--time-budget", "0"], "time_budget"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["experiment", *args, "--out", str(tmp_path / "out")])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("smoe: error:") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_keeps_finished_runs_and_exits_130(image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # 4 s per run: the interrupt lands 0.5 s into the second run with a wide margin
    settings = {**FAST, "max_steps": 1_000_000, "time_budget": 4.0, "tol_db": 0.0}
    cmd = [
        sys.executable,
        "-m",
        "smoe_gui.cli",
        "experiment",
        str(image_folder / "disc.png"),
        "--budgets",
        "20",
        *[f"--set={k}={v}" for k, v in settings.items()],
        "--out",
        str(out),
    ]
    # the child must see Ctrl-C even when this test runs in a background job, which
    # starts with SIGINT ignored (and Python then installs no KeyboardInterrupt)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint
    )
    try:
        deadline = time.monotonic() + 60
        while not list((out / "runs").glob("*.json")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        time.sleep(0.5)  # inside the second run
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    rows = _read_csv(out / "results.csv")
    assert len(rows) == 1 and rows[0]["status"] == "ok"
    assert "re-run the same command to resume" in err
    assert "Incomplete" in (out / "results.md").read_text()


# --------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_dask_cluster_gives_the_same_rows_as_local_processes(
    image_folder: Path, tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    import torch

    params = Params(**FAST)
    image = [image_folder / "disc.png"]
    local = run_experiment(
        image, tmp_path / "local", budgets=(20,), params=params, workers=2, threads=1
    )
    assert local.ran == len(METHODS) and not local.failed
    threads = torch.get_num_threads()
    try:
        with distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster:
            remote = run_experiment(
                image,
                tmp_path / "dask",
                budgets=(20,),
                params=params,
                dask_scheduler=cluster.scheduler_address,
            )
    finally:
        torch.set_num_threads(threads)
    assert remote.ran == len(METHODS) and not remote.failed
    keep = [c for c in COLUMNS if c not in TIMING_COLUMNS]
    a = [[r[c] for c in keep] for r in _read_csv(tmp_path / "local" / "results.csv")]
    b = [[r[c] for c in keep] for r in _read_csv(tmp_path / "dask" / "results.csv")]
    assert a == b
    assert "Dask scheduler" in (tmp_path / "dask" / "results.md").read_text()
    # AS-SMoE's per-segment fits went to the cluster, not into its run's task
    notes = [
        json.loads(p.read_text())["notes"]
        for p in (tmp_path / "dask" / "runs").glob("*as-smoe*.json")
    ]
    assert notes and all(any("(dask)" in n for n in ns) for ns in notes)


def test_unreachable_dask_scheduler_is_a_clear_error(
    image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("distributed")
    from smoe_gui.core.experiment import lifetime

    monkeypatch.setattr(lifetime, "DASK_CONNECT_TIMEOUT_S", 1.0)
    with pytest.raises(ValueError, match="cannot reach the Dask scheduler"):
        run_experiment(
            [image_folder / "disc.png"],
            tmp_path / "o",
            budgets=(20,),
            params=Params(**FAST),
            dask_scheduler="tcp://127.0.0.1:1",
        )


# --------------------------------------------------------------------------------------
# Formats: stored history, infinite PSNR, the terminal display
# --------------------------------------------------------------------------------------
def test_runs_of_an_older_store_format_are_run_again(image_folder: Path, tmp_path: Path) -> None:
    params = Params(**FAST)
    first = run_experiment(
        [image_folder / "disc.png"], tmp_path / "o", methods=("grid",), budgets=(20,), params=params
    )
    assert first.ran == 1 and not first.failed
    (stored,) = (tmp_path / "o" / "runs").glob("*.json")
    payload = json.loads(stored.read_text())
    payload["format"] = 1
    payload["history"] = {"t": [0.0], "psnr": [20.0], "step": [0]}  # the former layout
    stored.write_text(json.dumps(payload))
    again = run_experiment(
        [image_folder / "disc.png"], tmp_path / "o", methods=("grid",), budgets=(20,), params=params
    )
    assert (again.resumed, again.ran) == (0, 1)
    assert json.loads(stored.read_text())["format"] == STORE_FORMAT


def test_exact_reconstruction_is_inf_in_csv_json_and_report(tmp_path: Path) -> None:
    fileio.write_png(tmp_path / "flat.png", np.full((48, 60), 0.4, dtype=np.float32))
    summary = run_experiment(
        [tmp_path / "flat.png"],
        tmp_path / "o",
        methods=("grid",),
        budgets=(20,),
        params=Params(**FAST),
    )
    assert not summary.failed, summary.failed
    (row,) = _read_csv(tmp_path / "o" / "results.csv")
    assert row["psnr_db"] == "inf" and float(row["psnr_db"]) == float("inf")
    payload = json.loads((tmp_path / "o" / "runs" / f"{row['run_id']}.json").read_text())
    assert payload["record"]["psnr_db"] == "inf"
    assert "| inf |" in (tmp_path / "o" / "results.md").read_text()
    assert (tmp_path / "o" / "psnr_vs_time.png").is_file()


def test_sweep_progress_prints_plain_lines_off_a_terminal() -> None:
    import io

    from smoe_gui.cli.experiment_cmd import SweepProgress

    stream = io.StringIO()
    progress = SweepProgress(stream=stream, tty=False)
    progress.note("planning the kernel budgets of disc ...")
    progress.start(2, 1, 5.0)
    progress.job_started("disc edge 20")
    ok = {
        "image": "disc",
        "method": "edge",
        "budget": 20,
        "status": "ok",
        "psnr_db": "inf",
        "ssim": 1.0,
        "final_kernels": 19,
        "wall_s": 0.5,
    }
    progress.job_finished(ok)
    progress.job_started("disc grid 20")
    progress.job_finished(
        {**ok, "method": "grid", "status": "failed", "error": "broken", "wall_s": ""}
    )
    assert 0.0 <= progress.eta_s() <= 0.5
    progress.close()
    text = stream.getvalue()
    assert "\x1b[" not in text and "\r" not in text
    lines = text.splitlines()
    assert lines[0] == "planning the kernel budgets of disc ..."
    assert "  [1/2] disc edge 20: inf dB, SSIM 1.0000, 19 kernels, 0.5 s" in lines
    assert "  [2/2] disc grid 20: FAILED (broken)" in lines


def test_a_malformed_assignment_is_named_by_the_cli_not_by_core(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="NAME=VALUE") as info:
        Params().with_assignments(["max_pts"])
    assert "--" not in str(info.value)
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "--set", "max_pts", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "--set: a parameter assignment must read NAME=VALUE" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
