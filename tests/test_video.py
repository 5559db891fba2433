"""The training video: the model history a run keeps, `smoe fit --video`, the encoder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from smoe_gui.cli import main
from smoe_gui.core.io.fileio import write_png
from smoe_gui.core.model import SmoeModel
from smoe_gui.core.palette import rgb
from smoe_gui.core.train.runs import FitHistory
from smoe_gui.core.train.snapshots import ModelHistory
from smoe_gui.core.train.video import (
    HOLD_LAST,
    VideoCancelled,
    check_video_path,
    parse_panels,
    write_training_video,
)

QUICK = ["--set", "tile_size=32", "--set", "tile_steps=5", "--steps", "30", "--time-budget", "20"]


def _model(k: int, shift: float = 0.0, h: int = 48, w: int = 64) -> SmoeModel:
    rng = np.random.default_rng(k)
    mu = np.column_stack([rng.uniform(0, w, k), rng.uniform(0, h, k)])
    return SmoeModel(mu, np.tile(np.eye(2) * 0.15, (k, 1, 1)),
                     np.clip(rng.uniform(0, 1, k) + shift, 0, 1), np.zeros(k), h, w)


def _mp4_frames(path: Path) -> list[np.ndarray]:
    import imageio.v2 as imageio

    reader = imageio.get_reader(str(path), format="FFMPEG")
    try:
        return [np.asarray(f) for f in reader]
    finally:
        reader.close()


def _gif_frames(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    return np.asarray(iio.imread(path, index=None, plugin="pillow"))


@pytest.fixture()
def image_file(tmp_path: Path, synthetic_image: np.ndarray) -> Path:
    path = tmp_path / "synthetic.png"
    write_png(path, synthetic_image)
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        status = main(args)
    except SystemExit as exc:
        status = int(exc.code or 0)
    return status, capsys.readouterr().err


# --------------------------------------------------------------------------------------
# the model history
# --------------------------------------------------------------------------------------
def test_model_history_is_bounded_and_keeps_first_and_newest() -> None:
    history = ModelHistory(max_snapshots=8)
    models = [_model(4, shift=i / 100) for i in range(100)]
    for i, m in enumerate(models):
        history.add(i, i * 0.1, "tiles", m)
    assert 2 <= len(history) <= 8
    assert history[0].model is models[0] and history[-1].step >= 90
    steps = [s.step for s in history]
    assert steps == sorted(steps)
    gaps = np.diff([s.elapsed_s for s in history][:-1])
    assert gaps.min() >= 0.5 * gaps.max()  # evenly spread, not bunched at the end
    assert history.spacing_s > 0
    # a final snapshot is always kept, in place of a too-close one
    last = _model(4, shift=0.9)
    assert history.add(100, history[-1].elapsed_s + 1e-3, "finetune", last, final=True)
    assert history[-1].model is last and len(history) <= 8


def test_model_history_bounded_in_bytes() -> None:
    one = _model(50)
    size = one.mu.nbytes + one.A.nbytes + one.m.nbytes + one.log_alpha.nbytes
    history = ModelHistory(max_snapshots=1000, max_bytes=10 * size)
    for i in range(200):
        history.add(i, float(i), "tiles", _model(50, shift=i / 1000))
    assert history.nbytes <= 10 * size and len(history) <= 10
    with pytest.raises(ValueError, match="max_snapshots"):
        ModelHistory(max_snapshots=1)


# --------------------------------------------------------------------------------------
# the writer
# --------------------------------------------------------------------------------------
def _history(n: int) -> FitHistory:
    history = FitHistory()
    for i in range(n):
        history.add_row(i, i * 0.1, "finetune", 20.0 + i * 0.2, 4)
    return history


def test_writer_mp4_and_gif_frames_differ_over_the_run(
    tmp_path: Path, synthetic_image: np.ndarray
) -> None:
    h, w = synthetic_image.shape
    history = ModelHistory()
    for i in range(6):
        history.add(i, i * 0.1, "init" if i == 0 else "finetune",
                    _model(12, shift=0.15 * i, h=h, w=w))
    for name in ("run.mp4", "run.gif"):
        info = write_training_video(tmp_path / name, synthetic_image, history, _history(6),
                                    initial_keys=["pair"] * 6 + ["background"] * 6)
        assert info.n_frames == 6 + HOLD_LAST and info.width % 16 == 0
        frames = _mp4_frames(info.path) if name.endswith(".mp4") else _gif_frames(info.path)
        assert len(frames) > 1 and frames[0].shape == (info.height, info.width, 3)
        assert np.abs(frames[0].astype(int) - frames[len(frames) - 1].astype(int)).mean() > 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.gif", "run.mp4"]


def test_writer_draws_the_palette_colours(tmp_path: Path, synthetic_image: np.ndarray) -> None:
    h, w = synthetic_image.shape
    history = ModelHistory()
    history.add(0, 0.0, "init", _model(30, h=h, w=w))
    history.add(1, 0.1, "finetune", _model(30, shift=0.2, h=h, w=w))
    info = write_training_video(tmp_path / "c.gif", synthetic_image, history,
                                panels=["reconstruction", "kernels"],
                                initial_keys=["pair"] * 30)
    frames = _gif_frames(info.path)

    def has(frame: np.ndarray, colour: tuple[int, int, int]) -> bool:
        return bool((np.abs(frame.astype(int) - colour).max(axis=2) <= 12).any())

    assert has(frames[0], rgb("pair")) and not has(frames[0], rgb("trained"))
    assert has(frames[-1], rgb("trained"))


def test_writer_cancel_and_bad_input_leave_no_file(
    tmp_path: Path, synthetic_image: np.ndarray
) -> None:
    h, w = synthetic_image.shape
    history = ModelHistory()
    for i in range(3):
        history.add(i, float(i), "finetune", _model(5, h=h, w=w))
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(VideoCancelled):
        write_training_video(tmp_path / "x.mp4", synthetic_image, history, cancelled=cancelled)
    with pytest.raises(ValueError, match="frame rate"):
        write_training_video(tmp_path / "x.mp4", synthetic_image, history, fps=0)
    with pytest.raises(ValueError, match="no models"):
        write_training_video(tmp_path / "x.gif", synthetic_image, ModelHistory())
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=r"\.mp4 or \.gif"):
        check_video_path(tmp_path / "x.avi")
    with pytest.raises(ValueError, match="does not exist"):
        check_video_path(tmp_path / "none" / "x.mp4")
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        check_video_path(tmp_path / "dir.mp4")
    assert parse_panels("psnr, reconstruction") == ("reconstruction", "psnr")
    for bad in ("kernels", "reconstruction,views"):
        with pytest.raises(ValueError):
            parse_panels(bad)


# --------------------------------------------------------------------------------------
# smoe fit --video
# --------------------------------------------------------------------------------------
def test_fit_video_mp4_and_gif(
    image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("run.mp4", "run.GIF"):
        out = tmp_path / f"out-{name}"
        video = tmp_path / name
        status, err = run_cli(["fit", str(image_file), *QUICK, "--out", str(out),
                               "--video", str(video)], capsys)
        assert status == 0, err
        assert (out / "report.json").is_file() and "wrote" in err
        frames = _mp4_frames(video) if name.endswith(".mp4") else _gif_frames(video)
        assert len(frames) > 1
        # one frame count on stderr, the file's (the snapshots plus the held last frame)
        counts = re.findall(r"(\d+) frames", err)
        assert len(counts) == 1, err
        if name.endswith(".mp4"):  # a GIF stores the held frames as one longer frame
            assert counts == [str(len(frames))], err
        assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.5
    report = json.loads((tmp_path / "out-run.mp4" / "report.json").read_text())
    assert report["steps"] > 0
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


@pytest.mark.parametrize(
    ("video", "extra", "needle"),
    [
        ("run.avi", [], ".mp4 or .gif"),
        ("run", [], ".mp4 or .gif"),
        ("missing/run.mp4", [], "does not exist"),
        ("/proc/run.mp4", [], "not writable"),
        ("run.mp4", ["--video-panels", "kernels"], "--video-panels"),
        ("run.mp4", ["--video-fps", "0"], "--video-fps"),
    ],
)
def test_fit_video_bad_input_exits_2_and_writes_nothing(
    image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    video: str, extra: list[str], needle: str,
) -> None:
    out = tmp_path / "never"
    target = video if video.startswith("/") else str(tmp_path / video)
    status, err = run_cli(["fit", str(image_file), *QUICK, "--out", str(out),
                           "--video", target, *extra], capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smoe: error:") and needle in lines[0], err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic.png"]


def test_video_options_need_video(
    image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = run_cli(["fit", str(image_file), *QUICK, "--out", str(tmp_path / "o"),
                           "--video-fps", "5"], capsys)
    assert status == 2 and "need --video" in err


def test_run_fit_keeps_its_models(synthetic_image: np.ndarray) -> None:
    from smoe_gui.core.params import Params
    from smoe_gui.core.train.runs import run_fit

    params = Params(tile_size=32, tile_steps=5, max_steps=20, time_budget=20, max_pts=30)
    result = run_fit(synthetic_image, params, "edge", snapshot_interval_s=0.0)
    snaps = result.snapshots
    assert len(snaps) > 2 and snaps[0].phase == "init" and snaps[0].step == 0
    assert snaps[0].model is result.initial_model
    assert snaps[-1].model is result.final.model and snaps[-1].step == result.final.step
    assert [s.step for s in snaps] == sorted(s.step for s in snaps)
    assert {s.phase for s in snaps} >= {"init", "tiles", "finetune"}
    # without snapshots asked for, the initial, merge and final models only
    few = run_fit(synthetic_image, params, "edge").snapshots
    assert [s.phase for s in few][0] == "init" and len(few) <= 3


def test_prepare_export_leaves_the_first_export_nothing_to_import() -> None:
    # issue 21: the first export's imports (imageio, FreeType) on its thread held the
    # GIL and stalled the window; the window's warm-up thread runs this at start-up
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from smoe_gui.core.train.video import prepare_export\n"
        "wanted = ('imageio.v2', 'imageio.v3', 'imageio.plugins.ffmpeg', 'imageio_ffmpeg',\n"
        "          'PIL.ImageDraw', 'PIL._imagingft')\n"
        "assert not [m for m in wanted if m in sys.modules], 'imported before'\n"
        "prepare_export()\n"
        "print([m for m in wanted if m not in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-1500:]
    assert done.stdout.strip() == "[]", done.stdout
