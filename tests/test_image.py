"""Image loading: formats, bit depths, gray conversion, bad files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from smoe_gui.core.image import MIN_SIDE, check_image, load_image


def _rgb() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)


def test_rgb_uses_bt601_luma(tmp_path: Path) -> None:
    rgb = _rgb()
    Image.fromarray(rgb).save(tmp_path / "c.png")
    gray = load_image(tmp_path / "c.png")
    expected = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255.0
    assert gray.dtype == np.float32 and gray.shape == (20, 30)
    np.testing.assert_allclose(gray, expected, atol=1e-5)
    ref = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) / 255.0
    assert np.abs(gray - ref).max() <= 1.0 / 255


def test_rgba_palette_gray_and_16_bit(tmp_path: Path) -> None:
    rgb = _rgb()
    base = load_image(_save(tmp_path / "rgb.png", Image.fromarray(rgb)))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 77, np.uint8)])
    np.testing.assert_allclose(load_image(_save(tmp_path / "a.png", Image.fromarray(rgba))), base)
    pal = Image.fromarray(rgb).quantize(colors=16)
    from_palette = load_image(_save(tmp_path / "p.png", pal))
    np.testing.assert_allclose(from_palette, load_image(_save(tmp_path / "pr.png", pal.convert("RGB"))))
    g8 = rgb[..., 0]
    np.testing.assert_allclose(load_image(_save(tmp_path / "g.png", Image.fromarray(g8))), g8 / 255.0, atol=1e-6)
    g16 = (np.arange(20 * 30).reshape(20, 30) * 100).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), g16)
    loaded = load_image(tmp_path / "g16.png")
    np.testing.assert_allclose(loaded, g16 / 65535.0, atol=1e-6)
    assert loaded.max() > 0.9  # 16-bit is not squashed into 8-bit range


def _save(path: Path, img: Image.Image) -> Path:
    img.save(path)
    return path


def test_bundled_sample_loads(sample_path: Path) -> None:
    img = load_image(sample_path)
    assert img.shape == (512, 768) and 0.0 <= img.min() < img.max() <= 1.0


@pytest.mark.parametrize(
    ("maker", "pattern"),
    [
        (lambda p: p, "no such file"),
        (lambda p: (p.write_bytes(b""), p)[1], "empty"),
        (lambda p: (p.write_text("hello, not an image"), p)[1], "not an image"),
        (lambda p: (p.mkdir(), p)[1], "folder"),
    ],
)
def test_bad_files(tmp_path: Path, maker, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        load_image(maker(tmp_path / "x.png"))


def test_truncated_png_and_jpeg(tmp_path: Path, sample_path: Path) -> None:
    data = sample_path.read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        load_image(tmp_path / "t.png")
    Image.open(sample_path).save(tmp_path / "s.jpg", quality=90)
    jpg = (tmp_path / "s.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(jpg[: len(jpg) // 2])
    with pytest.raises(ValueError, match="truncated"):
        load_image(tmp_path / "t.jpg")


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (MIN_SIDE - 1, 50)])
def test_tiny_images_refused(tmp_path: Path, size: tuple[int, int]) -> None:
    Image.fromarray(np.zeros(size, np.uint8)).save(tmp_path / "tiny.png")
    with pytest.raises(ValueError, match="at least"):
        load_image(tmp_path / "tiny.png")


def test_huge_image_refused_unless_downscaled(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((20, 4100), np.uint8)).save(tmp_path / "wide.png")
    with pytest.raises(ValueError, match="--max-size"):
        load_image(tmp_path / "wide.png")
    small = load_image(tmp_path / "wide.png", max_size=2050)
    assert small.shape == (10, 2050)


def test_check_image_rejects_bad_arrays() -> None:
    with pytest.raises(ValueError, match="2-D"):
        check_image(np.zeros((10, 10, 3)))
    with pytest.raises(ValueError, match="NaN"):
        check_image(np.full((10, 10), np.nan))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_image(np.full((10, 10), 2.0))
    out = check_image(np.full((10, 10), 0.5, np.float64))
    assert out.dtype == np.float32 and out.flags.c_contiguous
