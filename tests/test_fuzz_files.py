"""Fuzzing the inputs a user brings: generated image files through the ``smoe`` command.

Files of every format the loader is documented for (PNG, TIFF, JPEG, BMP, WebP, PGM),
in the Pillow modes those formats store (1-bit, 8-bit L/LA/RGB/RGBA/P, 16-bit,
32-bit integer, 32-bit float), of tiny, odd and ordinary sizes, with EXIF
orientations, and with value ranges from constant through [0, 1] to beyond 65535,
negative values, NaN and infinities.

The property, through ``smoe_gui.cli.main`` in this process:

* ``smoe init`` accepts the file  =>  ``smoe fit`` with the default parameters (a
  short ``--time-budget``) succeeds, writes its report, and the model has the size
  an image viewer shows (EXIF orientation applied);
* otherwise both commands print one line to stderr, exit with status 2 and write
  nothing.

Sizes stay below 48 pixels so that a case takes about a second; ``SMOE_FUZZ_RANDOM=1``
draws new cases instead of the fixed sequence.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from smoe_gui.cli import main

#: Outcomes of the cases run (printed in the pytest summary).
OUTCOMES: Counter[str] = Counter()

#: Pillow modes each format is generated in.
FORMAT_MODES: dict[str, tuple[str, ...]] = {
    "png": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"),
    "tiff": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F"),
    "jpg": ("L", "RGB"),
    "bmp": ("1", "L", "P", "RGB"),
    "webp": ("RGB", "RGBA"),
    "pgm": ("L", "I;16"),
}
#: Formats whose files carry EXIF here (the orientation tag).
EXIF_FORMATS = ("png", "tiff", "jpg", "webp")
#: Value ranges of 32-bit integer and float data: (low, high), NaN/inf sprinkled separately.
RANGES = ((0.0, 1.0), (0.0, 1000.0), (-5.0, 5.0), (0.0, 3e9), (-2e9, 2e9), (7.0, 7.0))
PATTERNS = ("noise", "disc", "ramp", "constant")
FIT_ARGS = ["--time-budget", "0.3"]


@dataclass(frozen=True)
class FileCase:
    """One generated file: format, Pillow mode, size, content and EXIF orientation."""

    fmt: str
    mode: str
    height: int
    width: int
    pattern: str
    value_range: tuple[float, float]
    non_finite: str  # "none", "some" or "all" (float data only)
    orientation: int  # 1 = none
    seed: int

    def write(self, folder: Path) -> Path:
        """Save the file; returns its path."""
        path = folder / f"case.{self.fmt}"
        img = Image.fromarray(self.pixels()) if self.mode not in ("P", "1") else self.image()
        if img.mode != self.mode and self.mode not in ("P", "1"):
            img = img.convert(self.mode)
        extra: dict[str, Any] = {}
        if self.orientation != 1:
            exif = Image.Exif()
            exif[0x0112] = self.orientation
            extra["exif"] = exif
        if self.fmt == "webp":
            extra["lossless"] = True
        img.save(path, **extra)
        return path

    def unit(self) -> np.ndarray:
        """The pattern, float64 (H, W) in [0, 1]."""
        rng = np.random.default_rng(self.seed)
        h, w = self.height, self.width
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        if self.pattern == "noise":
            return rng.random((h, w))
        if self.pattern == "disc":
            r = max(1.0, min(h, w) / 3)
            return ((xx - w / 2) ** 2 + (yy - h / 2) ** 2 < r * r).astype(np.float64)
        if self.pattern == "ramp":
            return xx / max(1, w - 1)
        return np.full((h, w), rng.random())

    def pixels(self) -> np.ndarray:
        """The array whose ``Image.fromarray`` gives the case's mode (before any convert)."""
        u = self.unit()
        if self.mode == "I;16":
            return np.round(u * 65535).astype(np.uint16)
        if self.mode in ("I", "F"):
            low, high = self.value_range
            data = low + u * (high - low)
            if self.mode == "I":
                return np.clip(np.round(data), -(2**31), 2**31 - 1).astype(np.int32)
            data = data.astype(np.float32)
            if self.non_finite == "all":
                data[:] = np.nan
            elif self.non_finite == "some":
                data.flat[:: max(1, data.size // 5)] = np.nan
                data.flat[1] = np.inf
            return data
        gray = np.round(u * 255).astype(np.uint8)
        if self.mode in ("L", "LA"):
            return gray
        rgb = np.dstack([gray, gray[:, ::-1], np.roll(gray, 1, axis=0)])
        return rgb

    def image(self) -> Image.Image:
        """Palette and 1-bit images (made from an RGB or gray picture)."""
        if self.mode == "1":
            return Image.fromarray(self.unit() > 0.5)
        return Image.fromarray(self.pixels_rgb()).quantize(colors=16)

    def pixels_rgb(self) -> np.ndarray:
        gray = np.round(self.unit() * 255).astype(np.uint8)
        return np.dstack([gray, gray[:, ::-1], np.roll(gray, 1, axis=0)])


@st.composite
def file_cases(draw: st.DrawFn) -> FileCase:
    fmt = draw(st.sampled_from(sorted(FORMAT_MODES)))
    mode = draw(st.sampled_from(FORMAT_MODES[fmt]))
    side = st.one_of(st.integers(1, 7), st.integers(8, 12), st.integers(13, 47))
    height, width = draw(side), draw(side)
    float_data = mode in ("I", "F")
    value_range = draw(st.sampled_from(RANGES)) if float_data else (0.0, 1.0)
    non_finite = draw(st.sampled_from(("none", "none", "some", "all"))) if mode == "F" else "none"
    orientation = draw(st.integers(1, 8)) if fmt in EXIF_FORMATS else 1
    return FileCase(
        fmt, mode, height, width, draw(st.sampled_from(PATTERNS)), value_range, non_finite,
        orientation, draw(st.integers(0, 2**16)),
    )


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        status = main(argv)
    except SystemExit as exc:
        status = int(exc.code or 0)
    return status, capsys.readouterr().err


def _viewer_size(path: Path) -> tuple[int, int]:
    """(width, height) as an image viewer shows the file (EXIF orientation applied)."""
    with Image.open(path) as img:
        return ImageOps.exif_transpose(img).size


def check_case(case: FileCase, folder: Path, capsys: pytest.CaptureFixture[str]) -> str:
    path = case.write(folder)
    init_out, fit_out = folder / "init", folder / "fit"
    status, err = _run(["init", str(path), "--out", str(init_out)], capsys)
    if status != 0:
        assert status == 2, f"init exit status {status}: {err}"
        errors = [line for line in err.splitlines() if not line.startswith("smoe: note:")]
        assert len(errors) == 1 and errors[0].startswith("smoe: error: "), err
        assert not init_out.exists() or not any(init_out.iterdir()), "init wrote files"
        status, err = _run(["fit", str(path), *FIT_ARGS, "--out", str(fit_out)], capsys)
        assert status == 2, f"fit accepted what init refused ({status}): {err}"
        assert len([x for x in err.splitlines() if x.startswith("smoe: error: ")]) == 1, err
        assert not fit_out.exists() or not any(fit_out.iterdir()), "fit wrote files"
        return "refused"
    status, err = _run(["fit", str(path), *FIT_ARGS, "--out", str(fit_out)], capsys)
    assert status == 0, f"init accepted the file but fit failed ({status}): {err}"
    report = json.loads((fit_out / "report.json").read_text())
    psnr = float(report["psnr_db"])  # a number, or "inf" for an exact reconstruction
    assert psnr == psnr, "PSNR is NaN"
    size = _viewer_size(path)
    assert (report["image"]["width"], report["image"]["height"]) == size
    if case.mode in ("I", "F") and "mapped" not in err and case.value_range != (0.0, 1.0):
        raise AssertionError(f"data range {case.value_range} mapped without a word: {err}")
    return "fitted"


@settings(
    max_examples=int(os.environ.get("SMOE_FUZZ_FILES", "24")),
    deadline=None,
    derandomize=os.environ.get("SMOE_FUZZ_RANDOM") is None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=file_cases())
@example(case=FileCase("tiff", "F", 12, 20, "ramp", (0.0, 1000.0), "none", 1, 0))
@example(case=FileCase("tiff", "I", 9, 30, "noise", (0.0, 3e9), "none", 1, 1))
@example(case=FileCase("tiff", "F", 16, 16, "noise", (0.0, 1.0), "all", 1, 2))
@example(case=FileCase("tiff", "F", 16, 16, "disc", (-5.0, 5.0), "some", 6, 3))
@example(case=FileCase("png", "L", 8, 8, "constant", (0.0, 1.0), "none", 1, 4))
@example(case=FileCase("jpg", "RGB", 12, 40, "disc", (0.0, 1.0), "none", 6, 5))
@example(case=FileCase("png", "I;16", 7, 40, "ramp", (0.0, 1.0), "none", 1, 6))
@example(case=FileCase("pgm", "I;16", 40, 12, "noise", (0.0, 1.0), "none", 1, 7))
@example(case=FileCase("tiff", "I", 20, 20, "constant", (7.0, 7.0), "none", 8, 8))
@example(case=FileCase("png", "P", 33, 9, "disc", (0.0, 1.0), "none", 5, 9))
def test_init_accepts_then_fit_succeeds(
    case: FileCase, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    OUTCOMES[check_case(case, tmp_path_factory.mktemp("case"), capsys)] += 1


@pytest.fixture(scope="module", autouse=True)
def _report_outcomes(request: pytest.FixtureRequest) -> None:
    """Print the number of file cases and their outcomes in the terminal summary."""

    class _Summary:
        def pytest_terminal_summary(self, terminalreporter: Any) -> None:
            total = sum(OUTCOMES.values())
            detail = ", ".join(f"{k}: {v}" for k, v in sorted(OUTCOMES.items()))
            terminalreporter.write_line(f"file fuzz cases run: {total} ({detail})")

    if not request.config.pluginmanager.has_plugin("smoe-file-fuzz-summary"):
        request.config.pluginmanager.register(_Summary(), "smoe-file-fuzz-summary")
