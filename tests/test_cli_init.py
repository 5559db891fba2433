"""``smoe init``: outputs, and one line + exit 2 + nothing written on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from smoe_gui.cli import main
from smoe_gui.cli.init_cmd import OUTPUT_FILES
from smoe_gui.core import Params, load_model, read_model_params

FAST = ["--set", "max_pts=30", "--set", "expert_iters=2"]


@pytest.fixture()
def small_png(tmp_path: Path) -> Path:
    """A 48x64 RGB PNG made from the bundled sample."""
    src = Path(__file__).resolve().parents[1] / "resources" / "samples" / "parrots.png"
    img = cv2.resize(cv2.imread(str(src)), (64, 48), interpolation=cv2.INTER_AREA)
    path = tmp_path / "small.png"
    cv2.imwrite(str(path), img)
    return path


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], out: Path) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smoe: error:"), err
    assert "Traceback" not in err
    assert not out.exists()
    return lines[0]


def test_init_writes_every_stage(
    small_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run" / "init"
    assert main(["init", str(small_png), *FAST, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for word in ("segments", "reduced", "kernels", "edges", "experts", "PSNR"):
        assert word in printed
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    with np.load(out / "stages.npz", allow_pickle=False) as z:
        keys = set(z.files)
        stages = {k: z[k] for k in z.files}
    assert keys == {
        "image",
        "edges",
        "segments",
        "scores",
        "reduced",
        "salient",
        "mu",
        "A",
        "m",
        "log_alpha",
        "expert_psnr",
    }
    assert stages["image"].shape == (48, 64) and stages["edges"].dtype == bool
    assert stages["segments"].shape[1] == 4 and stages["reduced"].shape[0] <= 30
    assert 1 <= stages["expert_psnr"].shape[0] <= 3  # expert_stop = "mse" may end early
    model = load_model(out / "model.npz")
    np.testing.assert_array_equal(model.mu, stages["mu"])
    assert read_model_params(out / "model.npz") == Params.from_json(out / "params.json")
    assert json.loads((out / "params.json").read_text())["max_pts"] == 30
    for name in ("edges", "segments", "reduced", "kernels"):
        png = cv2.imread(str(out / f"{name}.png"))
        assert png is not None and png.shape[1] % 64 == 0
        assert png.shape[0] > 48 * (png.shape[1] // 64)  # the legend strip below the picture
    recon = cv2.imread(str(out / "reconstruction.png"), cv2.IMREAD_UNCHANGED)
    assert recon.shape[:2] == (48, 64)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_grid_method_and_params_file(
    small_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pfile = tmp_path / "p.json"
    pfile.write_text(Params(max_pts=20, expert_iters=1).to_json())
    out = tmp_path / "grid"
    assert (
        main(
            ["init", str(small_png), "--params", str(pfile), "--method", "grid", "--out", str(out)]
        )
        == 0
    )
    assert "grid" in capsys.readouterr().out
    assert Params.from_json(out / "params.json").max_pts == 20


def test_constant_image_says_background_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "flat.png"
    cv2.imwrite(str(path), np.full((32, 40), 128, np.uint8))
    out = tmp_path / "flat"
    assert main(["init", str(path), *FAST, "--out", str(out)]) == 0
    assert "no edges found" in capsys.readouterr().out
    assert load_model(out / "model.npz").n_kernels > 0


def test_max_size_downscales(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "wide.png"
    cv2.imwrite(str(path), (np.indices((12, 4100)).sum(axis=0) % 256).astype(np.uint8))
    out = tmp_path / "big"
    _fails(["init", str(path), *FAST, "--out", str(out)], capsys, out)
    path2 = tmp_path / "tall.png"
    img = np.zeros((4200, 300), np.uint8)
    img[:, 150:] = 200
    cv2.imwrite(str(path2), img)
    assert main(["init", str(path2), *FAST, "--max-size", "128", "--out", str(out)]) == 0
    with np.load(out / "stages.npz") as z:
        assert max(z["image"].shape) == 128


def _bad_files(tmp_path: Path, small_png: Path) -> dict[str, Path]:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(small_png.read_bytes()[:200])
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((2, 2), np.uint8))
    one = tmp_path / "one.png"
    cv2.imwrite(str(one), np.zeros((1, 1), np.uint8))
    return {
        "missing": tmp_path / "nope.png",
        "empty": empty,
        "truncated": truncated,
        "not an image": text,
        "2x2": tiny,
        "1x1": one,
        "folder": tmp_path,
    }


@pytest.mark.parametrize(
    "case", ["missing", "empty", "truncated", "not an image", "2x2", "1x1", "folder"]
)
def test_bad_image_files(
    case: str, small_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _bad_files(tmp_path, small_png)[case]
    out = tmp_path / "out"
    _fails(["init", str(path), "--out", str(out)], capsys, out)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--set", "no_such_param=1"], "no_such_param"),
        (["--set", "lam=2"], "lam"),
        (["--set", "max_pts=abc"], "max_pts"),
        (["--set", "lam"], "NAME=VALUE"),
        (["--method", "random"], "method"),
        (["--max-size", "4"], "max-size"),
    ],
)
def test_bad_options(
    extra: list[str],
    fragment: str,
    small_png: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    line = _fails(["init", str(small_png), *extra, "--out", str(out)], capsys, out)
    assert fragment in line


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{ not json", "malformed JSON"),
        ('{"max_pts": -3}', "max_pts"),
        ('{"bogus": 1}', "bogus"),
        ("[1, 2]", "object"),
    ],
)
def test_bad_params_file(
    content: str, fragment: str, small_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pfile = tmp_path / "p.json"
    pfile.write_text(content)
    out = tmp_path / "out"
    line = _fails(["init", str(small_png), "--params", str(pfile), "--out", str(out)], capsys, out)
    assert fragment in line


def test_out_is_a_file(small_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(["init", str(small_png), *FAST, "--out", str(target)])
    assert exc.value.code == 2
    assert "not a folder" in capsys.readouterr().err
    assert target.read_text() == "x"


def test_module_entry_point_exit_status(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "smoe_gui.cli",
            "init",
            str(tmp_path / "missing.png"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no such file" in proc.stderr
    assert not out.exists()


def test_init_in_colour_and_the_expert_options(
    small_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rgb"
    assert main(["init", str(small_png), *FAST, "--channels", "rgb", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    with np.load(out / "stages.npz", allow_pickle=False) as z:
        assert z["image"].shape == (48, 64, 3) and z["m"].shape[1:] == (3,)
    model = load_model(out / "model.npz")
    assert model.is_colour
    recon = cv2.imread(str(out / "reconstruction.png"), cv2.IMREAD_UNCHANGED)
    assert recon.shape == (48, 64, 3)
    assert "kept after" in printed
    lsq = tmp_path / "lstsq"
    assert main(["init", str(small_png), *FAST, "--set", "experts=lstsq", "--out", str(lsq)]) == 0
    assert "least-squares" in capsys.readouterr().out
    line = _fails(
        ["init", str(small_png), "--set", "expert_stop=never", "--out", str(tmp_path / "bad")],
        capsys,
        tmp_path / "bad",
    )
    assert "expert_stop" in line and "mse, fixed" in line
