"""Image loading: formats, bit depths, gray conversion, bad files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from smoe_gui.core.io.image import MIN_SIDE, InputWarning, check_image, load_image, read_image


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
    np.testing.assert_allclose(
        from_palette, load_image(_save(tmp_path / "pr.png", pal.convert("RGB")))
    )
    g8 = rgb[..., 0]
    np.testing.assert_allclose(
        load_image(_save(tmp_path / "g.png", Image.fromarray(g8))), g8 / 255.0, atol=1e-6
    )
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
    with pytest.raises(ValueError, match="maximum size"):
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


# --- value ranges: every range mapped to [0, 1] by a rule, never clipped silently ----------


def _tiff(path: Path, arr: np.ndarray) -> Path:
    Image.fromarray(arr).save(path)
    return path


def test_float_data_outside_unit_range_is_mapped_by_its_range(tmp_path: Path) -> None:
    data = np.linspace(0.0, 1000.0, 40 * 30, dtype=np.float32).reshape(40, 30)
    loaded = read_image(_tiff(tmp_path / "f.tif", data))
    np.testing.assert_allclose(loaded.image, data / 1000.0, atol=1e-6)
    assert loaded.messages and "[0, 1000]" in loaded.messages[0] and "mapped" in loaded.messages[0]
    with pytest.warns(InputWarning, match="floating-point values span"):
        load_image(tmp_path / "f.tif")
    seen: list[str] = []
    load_image(tmp_path / "f.tif", on_message=seen.append)
    assert len(seen) == 1 and str(tmp_path / "f.tif") in seen[0]


def test_float_data_in_unit_range_is_kept_as_it_is(tmp_path: Path) -> None:
    data = np.linspace(0.2, 0.7, 40 * 30, dtype=np.float32).reshape(40, 30)
    loaded = read_image(_tiff(tmp_path / "f.tif", data))
    np.testing.assert_array_equal(loaded.image, data)
    assert loaded.messages == ()


def test_32_bit_integers_above_65535_are_not_clipped(tmp_path: Path) -> None:
    data = np.arange(40 * 30, dtype=np.int32).reshape(40, 30) * 1000  # up to 1,199,000
    loaded = read_image(_tiff(tmp_path / "i.tif", data))
    expected = (data - data.min()) / float(data.max() - data.min())
    np.testing.assert_allclose(loaded.image, expected, atol=1e-6)
    assert len(np.unique(loaded.image)) == data.size  # every level survives
    assert "32-bit integer values span [0, 1.199e+06]" in loaded.messages[0]


def test_non_finite_values(tmp_path: Path) -> None:
    data = np.full((20, 20), np.nan, np.float32)
    with pytest.raises(ValueError, match="no finite value"):
        load_image(_tiff(tmp_path / "nan.tif", data))
    data[:10] = 5.0
    data[10:, :5] = 7.0
    data[0, 0] = np.inf
    loaded = read_image(_tiff(tmp_path / "some.tif", data))
    assert loaded.image[0, 0] == 1.0 and loaded.image[15, 15] == 0.0 and loaded.image[15, 2] == 1.0
    assert "151 NaN or infinite values" in loaded.messages[0]
    with pytest.raises(ValueError, match="no finite value"):
        load_image(_tiff(tmp_path / "inf.tif", np.full((20, 20), -np.inf, np.float32)))


def test_constant_float_outside_unit_range_maps_to_zero(tmp_path: Path) -> None:
    loaded = read_image(_tiff(tmp_path / "c.tif", np.full((20, 20), 42.0, np.float32)))
    assert np.all(loaded.image == 0.0) and "constant (42)" in loaded.messages[0]


def test_one_bit_and_16_bit_pgm(tmp_path: Path) -> None:
    bits = (np.indices((20, 30)).sum(axis=0) % 2).astype(bool)
    Image.fromarray(bits).save(tmp_path / "b.png")
    np.testing.assert_array_equal(load_image(tmp_path / "b.png"), bits.astype(np.float32))
    g16 = (np.arange(20 * 30).reshape(20, 30) * 109).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path / "g.pgm")
    np.testing.assert_allclose(load_image(tmp_path / "g.pgm"), g16 / 65535.0, atol=1e-6)


# --- EXIF orientation ----------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_viewers_do(tmp_path: Path, orientation: int) -> None:
    from PIL import ImageOps

    rng = np.random.default_rng(orientation)
    stored = rng.integers(0, 256, size=(20, 36), dtype=np.uint8)
    img = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(tmp_path / "o.png", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png"))) / 255.0
    loaded = load_image(tmp_path / "o.png")
    np.testing.assert_allclose(loaded, expected, atol=1e-6)
    assert loaded.shape == ((36, 20) if orientation >= 5 else (20, 36))


# --- sizes from the header; memory -------------------------------------------------------


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A tiny 8-bit gray PNG whose header declares ``width`` x ``height`` pixels
    (one compressed row of data: a decoder that trusts it allocates the full size)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width + 1), 9)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize("max_size", [None, 512])
def test_a_decompression_bomb_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_size: int | None
) -> None:
    from PIL import ImageFile

    bomb = png_bomb(tmp_path / "bomb.png", 40000, 40000)

    def no_decoding(self: object) -> None:
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ValueError, match=r"12000x9000 pixels \(108 megapixels\).*refused before"):
        load_image(png_bomb(tmp_path / "108mp.png", 12000, 9000), max_size=max_size)
    with pytest.raises(
        ValueError, match="1600 megapixels, more than the 100 megapixels.*refused before decoding"
    ) as info:
        load_image(bomb, max_size=max_size)
    assert "\n" not in str(info.value)


def test_too_large_without_downscale_is_refused_from_the_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import ImageFile

    big = png_bomb(tmp_path / "big.png", 5000, 300)
    monkeypatch.setattr(
        ImageFile.ImageFile, "load", lambda self: (_ for _ in ()).throw(AssertionError)
    )
    with pytest.raises(ValueError, match="maximum size of 4096"):
        load_image(big)


def test_the_bomb_check_holds_within_200_mb(tmp_path: Path) -> None:
    """Peak memory of a refused bomb, in a fresh process (the issue: 16 GB before)."""
    import subprocess
    import sys

    bomb = png_bomb(tmp_path / "bomb.png", 40000, 40000)
    code = (
        "import resource, sys\n"
        "from smoe_gui.core.io.image import load_image\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        f"    load_image({str(bomb)!r})\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
        "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "print(grown)\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={**__import__("os").environ, "PYTHONPATH": str(root)},
    ).stdout.splitlines()
    assert "refused before decoding" in out[0]
    assert int(out[1]) < 200 * 1024  # KiB


def test_memory_errors_become_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from smoe_gui.core.io import image as image_module

    Image.fromarray(_rgb()).save(tmp_path / "c.png")

    def out_of_memory(*_args: object) -> None:
        raise MemoryError

    monkeypatch.setattr(image_module, "to_gray", out_of_memory)
    with pytest.raises(ValueError, match=r"c\.png: not enough memory to load this image$"):
        load_image(tmp_path / "c.png")


def test_a_downscale_below_the_minimum_is_explained(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((10, 2000), np.uint8)).save(tmp_path / "thin.png")
    with pytest.raises(
        ValueError, match="downscaled to 1000x5 pixels, below 8x8; ask for a larger maximum size"
    ):
        read_image(tmp_path / "thin.png", max_size=1000)
    loaded = read_image(tmp_path / "thin.png", max_size=1600)
    assert loaded.image.shape == (8, 1600)
    assert loaded.messages == ("downscaled from 2000x10 to 1600x8 pixels",)
    assert loaded.source_size == (2000, 10) and loaded.mode == "L"


def test_signed_and_big_endian_16_bit(tmp_path: Path) -> None:
    signed = (np.arange(20 * 30).reshape(20, 30) - 300).astype(np.int16)
    loaded = read_image(_tiff(tmp_path / "s.tif", signed))
    np.testing.assert_allclose(loaded.image, (signed + 300) / 599.0, atol=1e-6)
    assert "values span [-300, 299]" in loaded.messages[0]
    big = (np.arange(20 * 30).reshape(20, 30) * 100).astype(">u2")
    loaded = read_image(_tiff(tmp_path / "b.tif", big))
    np.testing.assert_allclose(loaded.image, big.astype(np.float64) / 65535.0, atol=1e-6)
    assert loaded.messages == ()
