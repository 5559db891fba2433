"""Issue 23, second round: processes that die and folders that clash.

SIGTERM during ``fit`` keeps the best model and exits 143; SIGKILL of
``experiment --workers 2`` takes its workers along; ``--out`` equal to the
input folder never reads the sweep's own figures; two processes on one
``--out``: the second refuses with one line; a folder follows the umask like
its files; a killed writer's staging folder is removed by the next one; run
records with missing or bad fields are skipped one by one, naming the file;
a Dask scheduler that is not there, or not a scheduler, is one line within
the bound and nothing is written.  Every input is generated here.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from smoe_gui.cli import main
from smoe_gui.core.experiment import run_experiment
from smoe_gui.core.experiment.store import COLUMNS, STORE_FORMAT, check_payload, load_records
from smoe_gui.core.io import fileio

ROOT = Path(__file__).resolve().parents[1]
FAST = {
    "tile_size": 48, "tile_steps": 4, "max_steps": 6, "time_budget": 120, "expert_iters": 2,
    "background_spacing": 12, "patience": 50, "as_steps": 10, "as_doublings": 1,
}
FAST_SET = [f"--set={k}={v}" for k, v in FAST.items()]


def _image(h: int = 48, w: int = 60) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 0.2 + 0.3 * xx / w
    img[(xx - 22) ** 2 + (yy - 24) ** 2 < 11**2] = 0.9
    return np.clip(img, 0, 1).astype(np.float32)


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


# --------------------------------------------------------------------------------------
# Run records: one by one
# --------------------------------------------------------------------------------------
def _payload(run_id: str) -> dict:
    record = dict.fromkeys(COLUMNS, "")
    record.update(image="disc", method="grid", budget=20, init_kernels=20, final_kernels=18,
                  psnr_db=30.5, ssim=0.9, converge_s=0.5, init_s=0.1, fit_s=1.0, wall_s=1.2,
                  steps=6, params_hash="abc", image_sha="def", status="ok", run_id=run_id)
    return {"format": STORE_FORMAT, "record": record, "history": [], "initial_psnr_db": 20.0,
            "expert_psnr": [19.0, 20.0], "notes": [], "host": "h"}


BAD_RECORDS = {
    "missing-field": lambda p: p["record"].pop("ssim"),
    "nan-psnr": lambda p: p["record"].update(psnr_db=float("nan")),
    "text-budget": lambda p: p["record"].update(budget="many"),
    "unknown-method": lambda p: p["record"].update(method="spiral"),
    "bad-history": lambda p: p.update(history=[{"step": 1}]),
    "not-an-object": lambda p: p.pop("record"),
}


@pytest.mark.parametrize("kind", sorted(BAD_RECORDS))
def test_a_bad_run_record_is_skipped_with_a_line_naming_it(kind: str, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "good.json").write_text(json.dumps(_payload("good")))
    bad = _payload("bad")
    BAD_RECORDS[kind](bad)
    (runs / "bad.json").write_text(json.dumps(bad, allow_nan=True))
    lines: list[str] = []
    found = load_records(tmp_path, on_skip=lines.append)
    assert list(found) == ["good"]
    assert len(lines) == 1 and str(runs / "bad.json") in lines[0] and "\n" not in lines[0]


def test_a_valid_record_passes_and_a_fifo_record_is_skipped(tmp_path: Path) -> None:
    assert check_payload(_payload("x"))["record"]["run_id"] == "x"
    runs = tmp_path / "runs"
    runs.mkdir()
    os.mkfifo(runs / "pipe.json")
    lines: list[str] = []
    assert load_records(tmp_path, on_skip=lines.append) == {}
    assert "FIFO" in lines[0]


def test_report_only_with_a_damaged_record_reports_the_others(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    fileio.write_png(folder / "disc.png", _image())
    out = tmp_path / "out"
    assert main(["experiment", str(folder), "--methods", "grid,edge", "--budgets", "20",
                 *FAST_SET, "--out", str(out)]) == 0
    capsys.readouterr()
    (first, second) = sorted((out / "runs").glob("*.json"))
    payload = json.loads(first.read_text())
    del payload["record"]["psnr_db"]
    first.write_text(json.dumps(payload))
    before = (out / "results.md").read_text()
    assert main(["experiment", str(folder), "--methods", "grid,edge", "--budgets", "20",
                 *FAST_SET, "--report-only", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"skipped run record {first}" in captured.err + captured.out
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["run_id"] for r in rows] == [json.loads(second.read_text())["record"]["run_id"]]
    assert (out / "results.md").read_text() != before and (out / "claims.json").is_file()


# --------------------------------------------------------------------------------------
# Folders: outputs never inputs, one writer, modes, stale staging
# --------------------------------------------------------------------------------------
def test_out_equal_to_the_input_folder_never_reads_its_figures(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    fileio.write_png(folder / "disc.png", _image())
    from smoe_gui.core.params import Params

    params = Params(**FAST)
    for _ in range(2):
        summary = run_experiment([folder], folder, methods=("grid",), budgets=(20,), params=params)
        assert summary.total == 1 and not summary.failed
    rows = list(csv.DictReader((folder / "results.csv").open()))
    assert len(rows) == 1 and rows[0]["image"] == "disc"
    assert any(p.suffix == ".png" and p.name != "disc.png" for p in folder.iterdir())
    with pytest.raises(ValueError, match="written by this sweep"):
        run_experiment([folder / "fig5_psnr_vs_kernels.png"], folder, methods=("grid",),
                       budgets=(20,), params=params)


HOLD_LOCK = r"""
import sys, time
from smoe_gui.core.io.fileio import OutputLock
lock = OutputLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_process_on_one_out_is_refused_with_one_line(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE,
                              text=True, env=_env())
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        fileio.write_png(tmp_path / "disc.png", _image())
        with pytest.raises(SystemExit) as info:
            main(["experiment", str(tmp_path / "disc.png"), "--methods", "grid", "--budgets", "20",
                  *FAST_SET, "--out", str(out)])
        err = capsys.readouterr().err.strip()
        assert info.value.code == 2 and len(err.splitlines()) == 1
        assert "another smoe process is writing this folder" in err
        assert sorted(p.name for p in out.iterdir()) == [fileio.OutputLock.NAME]
    finally:
        holder.kill()
        holder.wait()
    with fileio.OutputLock(out):  # the lock went with the killed process
        pass


def test_new_folders_follow_the_umask_like_their_files(tmp_path: Path, monkeypatch) -> None:
    old = os.umask(0o027)
    try:
        monkeypatch.setattr(fileio, "_UMASK", 0o027)
        with fileio.output_group(tmp_path / "a" / "new") as staging:
            fileio.write_text(staging / "x.txt", "x")
        made = fileio.make_folder(tmp_path / "b" / "c")
    finally:
        os.umask(old)
    for folder in (tmp_path / "a" / "new", made, tmp_path / "b"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o750, folder
    assert stat.S_IMODE((tmp_path / "a" / "new" / "x.txt").stat().st_mode) == 0o640


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_writers_staging_folder_is_removed_by_the_next(tmp_path: Path) -> None:
    dead = _dead_pid()
    beside = tmp_path / f".out.{fileio.STAGING_TAG}{dead}.abc.tmp"
    beside.mkdir()
    (beside / "model.npz").write_bytes(b"half")
    mine = tmp_path / f".out.{fileio.STAGING_TAG}{os.getpid()}.keep.tmp"
    mine.mkdir()
    with fileio.output_group(tmp_path / "out") as staging:
        fileio.write_text(staging / "a.txt", "a")
    assert not beside.exists() and mine.exists()
    inside = tmp_path / "out" / f".{fileio.STAGING_TAG}{dead}.x.tmp"
    inside.mkdir()
    assert fileio.remove_stale_staging(tmp_path / "out") == [inside]


# --------------------------------------------------------------------------------------
# Dask: bounded, one line, nothing written
# --------------------------------------------------------------------------------------
class _Dashboard(BaseHTTPRequestHandler):
    timeout = 5  # a Dask client's handshake is no HTTP line: give up on it

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Dashboard)
    server.daemon_threads = True  # a handler left reading never holds the teardown
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("kind", ["not-an-address", "closed-port", "http-port"])
def test_dask_connection_is_bounded_and_writes_nothing(kind: str, tmp_path: Path, http_port: int,
                                                       monkeypatch) -> None:
    pytest.importorskip("distributed")
    from smoe_gui.core.experiment import lifetime

    monkeypatch.setattr(lifetime, "DASK_CONNECT_TIMEOUT_S", 1.0)
    address = {"not-an-address": "not-an-address", "closed-port": f"tcp://127.0.0.1:{_free_port()}",
               "http-port": f"tcp://127.0.0.1:{http_port}"}[kind]
    fileio.write_png(tmp_path / "disc.png", _image())
    out = tmp_path / "out"
    start = time.perf_counter()
    with pytest.raises(ValueError, match="Dask scheduler") as info:
        run_experiment([tmp_path / "disc.png"], out, budgets=(20,), dask_scheduler=address)
    assert time.perf_counter() - start < 5.0 and "\n" not in str(info.value)
    assert not out.exists()


def test_cli_bad_dask_address_is_one_line_without_a_stray_traceback(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    fileio.write_png(tmp_path / "disc.png", _image())
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "smoe_gui.cli", "experiment", str(tmp_path / "disc.png"),
         "--dask-scheduler", "not-an-address", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=_env(), timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "not a Dask scheduler address" in proc.stderr and "Exception" not in proc.stderr
    assert not (tmp_path / "out").exists() and time.perf_counter() - start < 60


# --------------------------------------------------------------------------------------
# Signals
# --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sigterm_in_fit_keeps_the_best_model_and_exits_143(tmp_path: Path) -> None:
    fileio.write_png(tmp_path / "disc.png", _image(96, 120))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "smoe_gui.cli", "fit", str(tmp_path / "disc.png"),
           "--time-budget", "120", "--set=tol_db=0", "--set=patience=100000", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), preexec_fn=_default_signals)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 120
        for line in proc.stderr:  # plain progress lines off a terminal: training has started
            if "PSNR" in line or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    report = json.loads((out / "report.json").read_text())
    assert report["interrupted"] is True and (out / "model.npz").is_file()


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc")
def test_sigkill_of_a_sweep_takes_its_workers_along(tmp_path: Path) -> None:
    fileio.write_png(tmp_path / "disc.png", _image())
    settings = {**FAST, "max_steps": 1_000_000, "time_budget": 60.0, "tol_db": 0.0}
    cmd = [sys.executable, "-m", "smoe_gui.cli", "experiment", str(tmp_path / "disc.png"),
           "--methods", "grid,edge", "--budgets", "20", "--workers", "2",
           *[f"--set={k}={v}" for k, v in settings.items()], "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            workers = _children(proc.pid)
            if len(workers) >= 3:  # the resource tracker and two workers
                break
            time.sleep(0.2)
        assert len(workers) >= 2, workers
        time.sleep(2.0)  # the workers are past their initialiser
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [p for p in workers if _alive(p)]
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert not left, left
