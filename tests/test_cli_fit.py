"""`smoe fit` and `smoe render`: outputs, progress, Ctrl-C, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from smoe_gui.cli import main
from smoe_gui.cli.fit_cmd import parse_size
from smoe_gui.core.io.fileio import write_png
from smoe_gui.core.io.image import load_image
from smoe_gui.core.io.modelio import load_model, read_model_params, save_model
from smoe_gui.core.metrics import psnr
from smoe_gui.core.model import SmoeModel
from smoe_gui.core.rendering.culled import render

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--set", "tile_size=32", "--set", "tile_steps=5", "--steps", "8", "--time-budget", "20"]


@pytest.fixture()
def image_file(tmp_path: Path, synthetic_image: np.ndarray) -> Path:
    path = tmp_path / "synthetic.png"
    write_png(path, synthetic_image)
    return path


@pytest.fixture()
def model_file(tmp_path: Path) -> Path:
    k = 6
    rng = np.random.default_rng(0)
    model = SmoeModel(
        rng.uniform(0, 20, (k, 2)), np.tile(np.eye(2) * 0.3, (k, 1, 1)),
        rng.uniform(0, 1, k), np.zeros(k), 16, 24,
    )
    path = tmp_path / "model.npz"
    save_model(model, path)
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run `smoe ARGS` in-process; returns (exit status, stderr)."""
    try:
        status = main(args)
    except SystemExit as exc:
        status = int(exc.code or 0)
    return status, capsys.readouterr().err


def assert_one_line_error(status: int, err: str, needle: str) -> None:
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smoe: error:"), err
    assert "Traceback" not in err
    assert needle in lines[0], lines[0]


# --------------------------------------------------------------------------------------
# smoe fit
# --------------------------------------------------------------------------------------
def test_fit_writes_model_reconstruction_params_and_report(
    image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "run"
    status, err = run_cli(["fit", str(image_file), *QUICK, "--out", str(out)], capsys)
    assert status == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "model.npz", "params.json", "reconstruction.png", "report.json",
    ]
    image = load_image(image_file)
    model = load_model(out / "model.npz")
    params = read_model_params(out / "model.npz")
    assert params is not None and params.max_steps == 8 and params.tile_size == 32
    assert json.loads((out / "params.json").read_text())["tile_steps"] == 5
    report = json.loads((out / "report.json").read_text())
    recon = render(model)
    assert report["psnr_db"] == pytest.approx(psnr(recon, image), abs=1e-6)
    assert 0.0 < report["ssim"] <= 1.0
    assert report["n_kernels"] == model.n_kernels
    assert report["method"] == "edge" and report["interrupted"] is False
    assert report["image"] == {"path": str(image_file), "width": 128, "height": 96}
    assert set(report["phase_times_s"]) >= {"init", "tiles", "merge", "finetune", "total"}
    history = report["psnr_history"]
    assert history[-1]["step"] == report["steps"]
    assert {h["phase"] for h in history} == {"tiles", "merge", "finetune"}
    assert [h["elapsed_s"] for h in history] == sorted(h["elapsed_s"] for h in history)
    png = load_image(out / "reconstruction.png")
    assert np.max(np.abs(png - np.clip(recon, 0, 1))) <= 0.5 / 255 + 1e-6
    assert "smoe fit: done" in err
    # no progress bar off a terminal: plain lines
    assert "\r" not in err and "step" in err


def test_fit_grid_method_and_quiet(
    image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "grid"
    status, err = run_cli(
        ["fit", str(image_file), *QUICK, "--method", "grid", "--quiet", "--out", str(out)], capsys
    )
    assert status == 0 and err == ""
    assert json.loads((out / "report.json").read_text())["method"] == "grid"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--time-budget", "0"], "--time-budget"),
        (["--time-budget", "-3"], "--time-budget"),
        (["--time-budget", "nan"], "--time-budget"),
        (["--steps", "0"], "--steps"),
        (["--set", "time_budget=0"], "time_budget"),
        (["--set", "no_such=1"], "unknown parameter"),
        (["--max-size", "4"], "--max-size"),
        (["--method", "random"], "--method"),
    ],
)
def test_fit_bad_input_writes_nothing(
    image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    extra: list[str], needle: str,
) -> None:
    out = tmp_path / "never"
    status, err = run_cli(["fit", str(image_file), *extra, "--out", str(out)], capsys)
    assert_one_line_error(status, err, needle)
    assert not out.exists()


def test_fit_missing_image_and_file_as_out(
    image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never"
    status, err = run_cli(["fit", str(tmp_path / "nope.png"), "--out", str(out)], capsys)
    assert_one_line_error(status, err, "no such file")
    assert not out.exists()
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    status, err = run_cli(["fit", str(image_file), *QUICK, "--out", str(blocker)], capsys)
    assert_one_line_error(status, err, "not a folder")
    assert blocker.read_text() == "x"


def test_ctrl_c_keeps_the_best_model_and_exits_130(image_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "interrupted"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "smoe_gui.cli", "fit", str(image_file),
         "--set", "tile_size=64", "--set", "tile_steps=3", "--time-budget", "600",
         "--set", "patience=100000",
         "--out", str(out)],
        cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 120
    try:
        # wait until fine-tuning runs, then press Ctrl-C
        for line in proc.stderr:
            seen.append(line)
            if "finetune" in line or time.monotonic() > deadline:
                break
        assert any("finetune" in s for s in seen), "".join(seen)
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        status = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert status == 130, "".join(seen) + rest
    assert "Traceback" not in rest
    assert "interrupted" in rest
    report = json.loads((out / "report.json").read_text())
    assert report["interrupted"] is True
    # (when the signal lands before a step beats the initial model, the reason says so too)
    assert report["stop_reason"].startswith("stopped on request")
    model = load_model(out / "model.npz")  # validates: finite, right shapes
    image = load_image(image_file)
    assert report["psnr_db"] == pytest.approx(psnr(render(model), image), abs=1e-6)
    # the best model: at least as good as every whole-image PSNR reported before
    whole = [h["psnr_db"] for h in report["psnr_history"] if h["phase"] != "tiles"]
    assert report["psnr_db"] >= max(whole) - 0.05
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


# --------------------------------------------------------------------------------------
# smoe render
# --------------------------------------------------------------------------------------
def test_render_scale_and_size(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = load_model(model_file)
    out = tmp_path / "r.png"
    assert run_cli(["render", str(model_file), "--out", str(out)], capsys)[0] == 0
    img = load_image(out)
    assert img.shape == (16, 24)
    assert np.max(np.abs(img - np.clip(render(model), 0, 1))) <= 0.5 / 255 + 1e-6
    assert run_cli(["render", str(model_file), "--out", str(out), "--scale", "2"], capsys)[0] == 0
    assert load_image(out).shape == (32, 48)
    status, err = run_cli(["render", str(model_file), "--out", str(out), "--size", "40x10"], capsys)
    assert status == 0, err
    assert load_image(out).shape == (10, 40)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--size", "40by10"], "WIDTHxHEIGHT"),
        (["--size", "0x10"], "at least 1x1"),
        (["--size", "-3x10"], "--size"),
        (["--size", "99999x10"], "16384"),
        (["--scale", "0"], "scale"),
        (["--scale", "nan"], "scale"),
        (["--scale", "2", "--size", "4x4"], "not allowed with"),
    ],
)
def test_render_bad_size_or_scale(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    extra: list[str], needle: str,
) -> None:
    out = tmp_path / "r.png"
    status, err = run_cli(["render", str(model_file), "--out", str(out), *extra], capsys)
    assert_one_line_error(status, err, needle)
    assert not out.exists()


def _npz(path: Path, **arrays: object) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def _good_arrays(k: int = 3) -> dict[str, object]:
    return {
        "mu": np.zeros((k, 2)), "A": np.tile(np.eye(2), (k, 1, 1)), "m": np.zeros(k),
        "log_alpha": np.zeros(k), "height": np.int64(8), "width": np.int64(8),
        "format_version": np.int64(1),
    }


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"drop": "A"}, "missing keys: A"),
        ({"mu": np.zeros((3, 3))}, "'mu' has shape"),
        ({"m": np.array([0.0, np.nan, 0.0])}, "NaN"),
        ({"A": np.full((3, 2, 2), np.inf)}, "NaN or infinite"),
        ({"m": np.array(["a", "b", "c"])}, "dtype"),
        ({"mu": np.zeros((0, 2)), "A": np.zeros((0, 2, 2)), "m": np.zeros(0),
          "log_alpha": np.zeros(0)}, "no kernels"),
    ],
)
def test_render_refuses_bad_model_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, object], needle: str
) -> None:
    arrays = _good_arrays()
    drop = change.pop("drop", None)
    if drop:
        del arrays[str(drop)]
    arrays.update(change)
    path = _npz(tmp_path / "bad.npz", **arrays)
    out = tmp_path / "r.png"
    status, err = run_cli(["render", str(path), "--out", str(out)], capsys)
    assert_one_line_error(status, err, needle)
    assert not out.exists()


def test_render_refuses_missing_or_non_model_files(
    tmp_path: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["render", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "r.png")]
    status, err = run_cli(args, capsys)
    assert_one_line_error(status, err, "no such file")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    status, err = run_cli(["render", str(junk), "--out", str(tmp_path / "r.png")], capsys)
    assert_one_line_error(status, err, "damaged or not a smoe-gui model file")
    status, err = run_cli(["render", str(model_file), "--out", str(tmp_path / "r.jpg")], capsys)
    assert_one_line_error(status, err, ".png")
    status, err = run_cli(
        ["render", str(model_file), "--out", str(tmp_path / "no" / "dir" / "r.png")], capsys
    )
    assert_one_line_error(status, err, "does not exist")


def test_parse_size() -> None:
    assert parse_size("1024x768") == (1024, 768)
    assert parse_size(" 3 X 4 ") == (3, 4)
    for bad in ("", "3x", "x4", "3x4x5", "3.5x4", "axb"):
        with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
            parse_size(bad)


# --------------------------------------------------------------------------------------
# colour
# --------------------------------------------------------------------------------------
def test_fit_and_render_in_colour(
    tmp_path: Path, synthetic_image: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    h, w = synthetic_image.shape
    yy, xx = np.mgrid[0:h, 0:w]
    colour = np.stack([synthetic_image, 0.2 + 0.6 * xx / w, 1.0 - synthetic_image * yy / h], 2)
    src = tmp_path / "colour.png"
    write_png(src, colour.astype(np.float32))
    out = tmp_path / "fit"
    status, err = run_cli(["fit", str(src), *QUICK, "--channels", "rgb", "--out", str(out)], capsys)
    assert status == 0, err
    model = load_model(out / "model.npz")
    assert model.m.shape == (model.n_kernels, 3)
    params = read_model_params(out / "model.npz")
    assert params is not None and params.channels == "rgb"
    image = load_image(src, channels="rgb")
    report = json.loads((out / "report.json").read_text())
    recon = render(model)
    assert report["channels"] == "rgb"
    assert report["psnr_db"] == pytest.approx(psnr(recon, image), abs=1e-6)  # all channels
    png = load_image(out / "reconstruction.png", channels="rgb")
    assert np.max(np.abs(png - np.clip(recon, 0, 1))) <= 0.5 / 255 + 1e-6
    # render: colour by default, gray (the luma of the colour rendering) on request
    status, err = run_cli(
        ["render", str(out / "model.npz"), "--out", str(tmp_path / "c.png")], capsys
    )
    assert status == 0, err
    assert load_image(tmp_path / "c.png", channels="rgb").shape == (h, w, 3)
    status, err = run_cli(
        ["render", str(out / "model.npz"), "--channels", "gray", "--out", str(tmp_path / "g.png")],
        capsys,
    )
    assert status == 0, err
    gray = load_image(tmp_path / "g.png")
    luma = recon @ np.array([0.299, 0.587, 0.114])
    assert np.max(np.abs(gray - np.clip(luma, 0, 1))) <= 1.0 / 255 + 1e-6
    # a gray fit of the same file models its luma
    status, err = run_cli(["fit", str(src), *QUICK, "--out", str(tmp_path / "gray")], capsys)
    assert status == 0, err
    assert load_model(tmp_path / "gray" / "model.npz").m.ndim == 1
    status, err = run_cli(
        ["fit", str(src), *QUICK, "--channels", "cmyk", "--out", str(tmp_path / "bad")], capsys
    )
    assert status == 2 and not (tmp_path / "bad").exists()
