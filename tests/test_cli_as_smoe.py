"""``smoe init/fit --method as-smoe``: a progress line for the local fits on
stderr, a warning without a kernel budget, Ctrl-C stops them within a second
(exit 130 once the interpreter has shut down, nothing written)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from smoe_gui.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def mosaic_png(tmp_path: Path) -> Path:
    """A 64x64 mosaic of 4x4 flat cells: about 16 superpixels."""
    rng = np.random.default_rng(3)
    img = np.kron(rng.uniform(0.1, 0.9, (4, 4)), np.ones((16, 16)))
    path = tmp_path / "mosaic.png"
    cv2.imwrite(str(path), np.round(img * 255).astype(np.uint8))
    return path


def test_init_shows_the_local_fits_and_warns_without_a_budget(
    mosaic_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "as"
    # 16 segments x 4 kernels, up to 2^5 times as many after the doublings: a warning
    argv = ["init", str(mosaic_png), "--method", "as-smoe", "--set", "as_doublings=5",
            "--set", "as_steps=3", "--out", str(out)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    warning = [i for i, line in enumerate(lines) if line.startswith("smoe: warning: AS-SMoE")]
    progress = [i for i, line in enumerate(lines) if "local fits" in line
                and line.startswith("initialise:")]
    assert warning and progress, err
    assert warning[0] < progress[-1]  # the warning comes before the fits end
    done, total = lines[progress[-1]].split(": ", 1)[1].split(" local fits")[0].split(" / ")
    assert done == total and int(total) >= 8
    assert (out / "model.npz").exists()


def test_init_with_a_budget_does_not_warn(
    mosaic_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "as"
    argv = ["init", str(mosaic_png), "--method", "as-smoe", "--set", "n_kernels=40",
            "--set", "as_steps=3", "--out", str(out)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "smoe: warning" not in err and "local fits" in err


@pytest.mark.parametrize("command", ["init", "fit"])
def test_ctrl_c_stops_the_local_fits_within_a_second(
    command: str, mosaic_png: Path, tmp_path: Path
) -> None:
    out = tmp_path / "as"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "smoe_gui.cli", command, str(mosaic_png), "--method", "as-smoe",
         "--set", "as_steps=400", "--out", str(out)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd=ROOT,
    )
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 300
    for line in proc.stderr:  # the first progress line: the local fits are running
        seen.append(line)
        if "local fits" in line or time.monotonic() > deadline:
            break
    assert any("local fits" in line for line in seen), seen
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    rest = []
    stopped = None
    for line in proc.stderr:  # the command says it stopped once the fits have stopped
        rest.append(line)
        if stopped is None and line.startswith("smoe: interrupted") and (
            command == "init" or "during the initialisation" in line
        ):
            stopped = time.monotonic() - t0
    rc = proc.wait(60)
    text = "".join(rest)
    assert rc == 130, text
    assert "Traceback" not in text
    assert stopped is not None and stopped < 1.0, (stopped, text)
    assert not out.exists()
