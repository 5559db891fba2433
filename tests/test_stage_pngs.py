"""The `smoe init` stage PNGs: the window's colours and a legend strip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from smoe_gui.cli import main
from smoe_gui.core.io.fileio import write_png
from smoe_gui.core.methods.drawing import (
    DIRECTION_COLOURS,
    auto_scale,
    legend_height,
    stage_legend,
    with_legend,
)
from smoe_gui.core.palette import DARK, HUES, LIGHT, hsl, rgb

FAST = ["--set", "max_pts=30", "--set", "expert_iters=2"]


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _has(picture: np.ndarray, colour: tuple[int, int, int], tol: int = 6) -> bool:
    return bool((np.abs(picture.astype(int) - colour).max(axis=2) <= tol).any())


def test_core_palette_is_the_windows() -> None:
    from PySide6.QtGui import QColor

    from smoe_gui.ui.theme import Theme

    for dark in (False, True):
        for key in [*HUES, "curve-some-new-method"]:
            q = QColor.fromHsl(*hsl(key, dark))
            assert max(abs(a - b) for a, b in zip(rgb(key, dark), (q.red(), q.green(), q.blue()),
                                                  strict=True)) <= 1, key
    theme = Theme.__new__(Theme)
    theme.dark = False
    c = theme.color("pair")
    assert abs(c.red() - rgb("pair")[0]) <= 1 and abs(c.blue() - rgb("pair")[2]) <= 1
    assert LIGHT.background == (255, 255, 255) and DARK.dark


@pytest.mark.parametrize("method", ["edge", "grid", "s-smoe"])
def test_stage_pngs_carry_a_legend_in_the_windows_colours(
    tmp_path: Path, synthetic_image: np.ndarray, method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "image.png"
    write_png(image, synthetic_image)
    out = tmp_path / "init"
    assert main(["init", str(image), *FAST, "--method", method, "--out", str(out)]) == 0
    capsys.readouterr()
    h, w = synthetic_image.shape
    s = auto_scale(h, w)
    names = ["edges", "segments", "reduced", "kernels"]
    if method == "s-smoe":
        names.append("superpixels")
    for name in names:
        png = _read_rgb(out / f"{name}.png")
        kinds = {"edge": ["pair", "background"], "grid": ["grid"], "s-smoe": ["segment"]}[method]
        entries = stage_legend(name, kinds if name == "kernels" else ())
        if name == "kernels" and method == "edge" and not _has(png[h * s:], rgb("background")):
            entries = stage_legend(name, ["pair"])  # an image with no background kernels
        strip = legend_height(w * s, entries)
        assert strip > 0
        assert png.shape == (h * s + strip, w * s, 3), name
        legend = png[h * s:]
        for entry in entries:  # each swatch is in the strip
            assert _has(legend, entry.colour), (name, entry.label)
        assert (legend == LIGHT.background).all(axis=2).mean() > 0.5  # mostly white
    if method == "edge":  # the segment methods have no segments
        segments = _read_rgb(out / "segments.png")[: h * s]
        assert sum(_has(segments, c) for c in DIRECTION_COLOURS.values()) >= 2
    kernels = _read_rgb(out / "kernels.png")[: h * s]
    key = {"edge": "pair", "grid": "grid", "s-smoe": "segment"}[method]
    assert _has(kernels, rgb(key))
    edges = _read_rgb(out / "edges.png")[: h * s]
    if method == "edge":  # edge pixels in the text colour on white, as view 1
        assert _has(edges, LIGHT.foreground) and _has(edges, LIGHT.background)
    else:  # no edge stage: the image dimmed towards white
        assert edges.min() >= 255 * LIGHT.dim(0.0) - 2
    recon = _read_rgb(out / "reconstruction.png")
    assert recon.shape[:2] == (h, w)  # the reconstruction as it is, no legend


def test_legend_wraps_to_the_width() -> None:
    picture = np.zeros((40, 120, 3), np.uint8)
    entries = stage_legend("segments")
    out = with_legend(picture, entries)
    assert out.shape[1] == 120 and out.shape[0] == 40 + legend_height(120, entries)
    np.testing.assert_array_equal(out[:40], picture)
    wide = legend_height(2000, entries)
    assert legend_height(120, entries) > wide  # four entries need more than one row at 120 px
    assert with_legend(picture, []).shape == picture.shape
    with pytest.raises(ValueError, match="stage"):
        stage_legend("nope")
