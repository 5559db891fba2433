"""A study in a spawned child process (smoe_gui.core.tune.child): its messages, Stop,
errors in one line, a child that dies, a parent that dies; pruning stops only its fit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smoe_gui.core.events import StopToken
from smoe_gui.core.io.fileio import write_png
from smoe_gui.core.params import Params
from smoe_gui.core.tune import StudyProcess, TuneConfig, load_trials, parse_range, study
from smoe_gui.core.tune.trial import TrialJob, run_trial

ROOT = Path(__file__).resolve().parents[1]
QUICK = Params(tile_size=32, tile_steps=3, max_pts=40)


@pytest.fixture()
def image_file(tmp_path: Path, synthetic_image: np.ndarray) -> Path:
    path = tmp_path / "synthetic.png"
    write_png(path, synthetic_image[:64, :80])
    return path


def _config(image: Path, steps: int, budget: float = 0.3, nice: int = 0) -> TuneConfig:
    return TuneConfig(
        images=[image],
        ranges=[parse_range(f"delta_mu=2:4:{steps}")],
        sampler="grid",
        time_budget=budget,
        params=QUICK,
        threads=1,
        nice=nice,
    )


def _run(process: StudyProcess, until: Any = None, timeout_s: float = 240.0) -> list[tuple]:
    """Poll ``process`` until it ends (or ``until(messages)``); the messages read."""
    messages: list[tuple] = []
    deadline = time.monotonic() + timeout_s
    while process.running and time.monotonic() < deadline:
        messages += process.poll()
        if until is not None and until(messages):
            break
        time.sleep(0.02)
    assert time.monotonic() < deadline, f"no end after {timeout_s} s: {messages[-3:]}"
    return messages


def test_the_study_runs_in_the_child_and_sends_small_messages(
    image_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def here(*_a: Any, **_k: Any) -> None:
        raise AssertionError("the study ran in the parent process")

    monkeypatch.setattr(study, "run_tune", here)  # the spawned child imports its own
    out = tmp_path / "out"
    process = StudyProcess(_config(image_file, 2, nice=5), out)
    process.start()
    assert process.pid not in (None, os.getpid())
    if hasattr(os, "getpriority"):  # lowered at once, before the child's imports
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, process.pid) == min(19, mine + 5)
    messages = _run(process)
    process.close()
    assert process.process.exitcode == 0
    kinds = [kind for kind, _ in messages if kind != "progress"]
    assert kinds == ["start", "trial_started", "trial", "trial_started", "trial", "done"]
    assert messages[0][1] == {"total": 2, "done": 0, "workers": 1}
    rows = [payload for kind, payload in messages if kind == "trial"]
    assert [r["delta_mu"] for r in rows] == [2.0, 4.0]
    assert all(r["state"] == "complete" and Path(r["model"]).is_file() for r in rows)
    assert Path(rows[1]["model"]) == out / "models" / "trial-0001.npz"
    summary = messages[-1][1]
    assert summary.ran == 2 and not summary.interrupted and summary.best is not None
    assert (out / "sweep.png").is_file() and (out / "best.json").is_file()
    assert process.poll() == [] and not process.running


def test_stop_keeps_the_finished_trials_and_runs_the_stopped_one_again(
    image_file: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    process = StudyProcess(_config(image_file, 4, budget=2.0), out)
    process.start()
    # stop while the second trial runs
    first = _run(process, until=lambda m: sum(k == "trial_started" for k, _ in m) == 2)
    process.stop()
    asked = time.monotonic()
    rest = _run(process, timeout_s=60)
    stopped_s = time.monotonic() - asked
    process.close()
    assert rest[-1][0] == "done" and rest[-1][1].interrupted, rest[-1]
    assert stopped_s < 30, stopped_s  # about 1 s on a quiet machine: a step, then the figures
    rows = load_trials(out)
    states = [r["state"] for r in rows]
    assert states.count("complete") == sum(k == "trial" for k, _ in first + rest) >= 1
    # the trial Stop ended is no failure: marked stale, it runs again on resume
    assert "fail" not in states and states[-1] == "stale", states


def test_a_stop_token_s_children_follow_it_and_not_the_other_way() -> None:
    study_token = StopToken()
    fit = study_token.child()
    study_token.pause()
    assert fit.paused and study_token.child().paused  # a child of a paused token starts paused
    study_token.resume()
    assert not fit.paused
    fit.pause()
    fit.stop()  # pruning stops the fit, never the study
    assert not study_token.paused and not study_token.stopped
    other = study_token.child()
    study_token.stop()
    assert other.stopped and study_token.child().stopped


def _wait_for(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_hold_pauses_the_fit_until_release_or_its_time_ends() -> None:
    import threading
    from multiprocessing import Pipe

    from smoe_gui.core.tune import child

    receive, send = Pipe(duplex=False)
    token = StopToken()
    fit = token.child()
    watcher = threading.Thread(target=child._watch, args=(receive, token), daemon=True)
    watcher.start()
    send.send(("hold", 0.3))
    _wait_for(lambda: fit.paused)
    _wait_for(lambda: not fit.paused)  # the hold's time ran out
    assert 0.25 <= fit.paused_s() < 5.0 and not fit.stopped
    send.send(("hold", 1e9))  # capped at HOLD_MAX_S
    _wait_for(lambda: fit.paused)
    send.send("release")
    _wait_for(lambda: not fit.paused)
    assert fit.paused_s() < child.HOLD_MAX_S
    send.send(("hold", 60.0))
    _wait_for(lambda: fit.paused)
    send.send("stop")
    watcher.join(5.0)
    assert not watcher.is_alive() and token.stopped and fit.stopped


def test_a_held_trial_does_not_count_the_hold(image_file: Path, tmp_path: Path) -> None:
    budget, held = 1.0, 2.0
    process = StudyProcess(_config(image_file, 2, budget=budget), tmp_path / "out")
    process.start()
    messages = _run(process, until=lambda m: any(k == "progress" for k, _ in m))
    start = time.monotonic()
    process.hold(held)
    messages += _run(process, until=lambda m: any(k == "trial" for k, _ in m))
    wall = time.monotonic() - start
    process.close()
    rows = [p for k, p in messages if k == "trial"]
    assert len(rows) == 1 and rows[0]["state"] == "complete"
    assert wall >= held  # the fit waited out the hold ...
    assert rows[0]["seconds"] < budget + 1.0  # ... which its seconds do not count


def test_bad_study_files_arrive_as_one_line(image_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "study.db").write_bytes(b"not a database at all" * 100)
    process = StudyProcess(_config(image_file, 2), out)
    process.start()
    messages = _run(process, timeout_s=120)
    process.close()
    kind, text = messages[-1]
    assert kind == "error" and "is not a study" in text and "\n" not in text
    assert sorted(p.name for p in out.iterdir()) == ["study.db"]
    with pytest.raises(ValueError, match="one worker"):
        StudyProcess(
            TuneConfig(images=[image_file], ranges=[parse_range("delta_mu=2:4")], workers=2), out
        )


def test_a_child_that_dies_reads_as_an_error(image_file: Path, tmp_path: Path) -> None:
    process = StudyProcess(_config(image_file, 3, budget=5.0), tmp_path / "out")
    process.start()
    _run(process, until=lambda m: any(k == "trial_started" for k, _ in m))
    os.kill(process.pid, signal.SIGKILL)
    messages = _run(process, timeout_s=30)
    kind, text = messages[-1]
    assert kind == "error" and "ended without a result (exit status -9)" in text
    process.close()


@pytest.mark.slow
def test_a_child_whose_parent_dies_ends_too(image_file: Path, tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, time\n"
        "from smoe_gui.core.params import Params\n"
        "from smoe_gui.core.tune import StudyProcess, TuneConfig, parse_range\n"
        "if __name__ == '__main__':\n"
        "    config = TuneConfig(images=[sys.argv[1]], ranges=[parse_range('delta_mu=2:4:3')],\n"
        "                        sampler='grid', time_budget=30.0, threads=1,\n"
        "                        params=Params(tile_size=32, tile_steps=3, max_pts=40))\n"
        "    process = StudyProcess(config, sys.argv[2])\n"
        "    process.start()\n"
        "    while not any(k == 'trial_started' for k, _ in process.poll()):\n"
        "        time.sleep(0.05)\n"
        "    print(process.pid, flush=True)\n"
        "    os._exit(0)  # a window that crashed: no close, no atexit\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script), str(image_file), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[-1])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        state = Path(f"/proc/{pid}/stat")
        if state.exists() and state.read_text().split()[2] == "Z":
            break  # ended, waiting for init to reap it
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the child outlived its parent by a minute (its trial had a 30 s budget)")
    rows = load_trials(tmp_path / "out")
    assert [r["state"] for r in rows] == ["stale"]  # it stopped its trial, kept the study


def test_pruning_stops_the_trial_not_the_study(synthetic_image: np.ndarray) -> None:
    stop = StopToken()
    job = TrialJob(
        number=0,
        values={},
        params=QUICK.replace(time_budget=1.0),
        method="edge",
        images=[("a", synthetic_image[:64, :80])],
        threads=1,
        thresholds={step: 1e9 for step in range(20)},
    )
    output = run_trial(job, stop=stop)
    assert output.status == "pruned" and not stop.stopped
    stop.stop()
    again = run_trial(job, stop=stop)
    assert (again.status, again.error) == ("failed", "stopped")
