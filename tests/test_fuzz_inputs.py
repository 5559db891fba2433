"""Issue 23, second round: files that are not what they say, each kind closed.

Every input is generated here: FIFOs, a character device, folders, deep JSON,
huge integers, duplicate keys, archive members that are not ``.npy`` or that
declare huge sizes, experts of the wrong shape, steering matrices that would
overflow the renderer, a PNG with a 1.1 MB ICC profile, a 3:2 model rendered
square, a bad file given to ``--screenshot``.  A refusal comes within 1 s,
from the header or metadata alone, and is one line naming the file.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from smoe_gui.cli import main
from smoe_gui.core import limits
from smoe_gui.core.io.image import load_image
from smoe_gui.core.io.modelio import MAX_MODEL_KERNELS, load_model, read_model_params, save_model
from smoe_gui.core.model import SmoeModel
from smoe_gui.core.params import Params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_hang() -> Iterator[None]:
    """A test that blocks (a FIFO opened for reading) fails after 20 s instead of hanging."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError("blocked on an input")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _model(k: int = 6, width: int = 45, height: int = 30, m: np.ndarray | None = None) -> SmoeModel:
    rng = np.random.default_rng(7)
    return SmoeModel(rng.uniform(0, min(width, height), (k, 2)), rng.normal(0, 0.3, (k, 2, 2)),
                     rng.uniform(0, 1, k) if m is None else m, np.zeros(k), height, width)


def _quick_refusal(call: Callable[[], object], pattern: str) -> str:
    """``call()`` raises one ValueError line matching ``pattern`` within 1 s; its text."""
    start = time.perf_counter()
    with pytest.raises(ValueError, match=pattern) as info:
        call()
    elapsed = time.perf_counter() - start
    text = str(info.value)
    assert "\n" not in text and elapsed < 1.0, (elapsed, text)
    return text


# --------------------------------------------------------------------------------------
# Special files: refused before they are opened
# --------------------------------------------------------------------------------------
def _special(kind: str, tmp_path: Path) -> Path:
    if kind == "fifo":
        path = tmp_path / "pipe.npz"
        os.mkfifo(path)
        return path
    if kind == "device":
        if not Path("/dev/zero").exists():
            pytest.skip("no /dev/zero")
        return Path("/dev/zero")
    path = tmp_path / "folder.json"
    path.mkdir()
    return path


READERS: dict[str, Callable[[Path], object]] = {
    "model": load_model,
    "model params": read_model_params,
    "params": Params.from_json,
    "image": load_image,
}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
@pytest.mark.parametrize("reader", sorted(READERS))
def test_special_files_are_refused_unopened(kind: str, reader: str, tmp_path: Path) -> None:
    path = _special(kind, tmp_path)
    words = {"fifo": "FIFO", "device": "character device", "folder": "folder"}[kind]
    text = _quick_refusal(lambda: READERS[reader](path), words)
    assert text.startswith(str(path))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("where", ["model", "params"])
def test_cli_refuses_a_fifo_with_one_line(where: str, tmp_path: Path, capsys) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    save_model(_model(), tmp_path / "m.npz")
    args = (["render", str(fifo), "--out", str(tmp_path / "r.png")] if where == "model" else
            ["init", str(ROOT / "resources/samples/parrots.png"), "--params", str(fifo),
             "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as info:
        main(args)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1 and "FIFO" in err
    assert not (tmp_path / "r.png").exists() and not (tmp_path / "o").exists()


def test_params_over_the_size_bound_are_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("wb") as handle:  # sparse: the size is declared, nothing is read
        handle.truncate(limits.MAX_PARAMS_BYTES + 1)
    _quick_refusal(lambda: Params.from_json(path), "larger than the 1.0 MiB")


# --------------------------------------------------------------------------------------
# JSON: one meaning, bounded work
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested 100000 deep"),
        ('{"max_pts": ' + "[" * 5000 + "]" * 5000 + "}", "nested 5001 deep"),
        ('{"max_pts": 1' + "0" * 5000 + "}", "5001 digits"),
        ('{"max_pts": -' + "9" * 40 + "}", "40 digits"),
        ('{"max_pts": 100, "max_pts": 200}', "'max_pts' appears twice"),
    ],
    ids=["deep-list", "deep-value", "huge-int", "huge-negative", "duplicate-key"],
)
def test_hostile_json_is_one_line(text: str, pattern: str, tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(text)
    message = _quick_refusal(lambda: Params.from_json(path), pattern)
    assert message.startswith(str(path)) and "set_int_max_str_digits" not in message
    _quick_refusal(lambda: limits.parse_json(text, "parameters"), pattern)  # text as well as a file


def test_braces_inside_strings_do_not_count_as_depth() -> None:
    text = json.dumps({"note": "[" * 1000})
    assert limits.parse_json(text, "t") == {"note": "[" * 1000}


# --------------------------------------------------------------------------------------
# Model files: every field the renderer uses, from the headers first
# --------------------------------------------------------------------------------------
def _arrays(model: SmoeModel) -> dict[str, object]:
    return dict(mu=model.mu, A=model.A, m=model.m, log_alpha=model.log_alpha,
                height=np.int64(model.height), width=np.int64(model.width),
                format_version=np.int64(2))


def test_a_member_that_is_not_npy_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    np.savez(path, **_arrays(_model()))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("notes.txt", "an unrelated member is left unread")
    assert load_model(path).n_kernels == 6
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        with zipfile.ZipFile(path) as source:
            for info in source.infolist():
                data = (
                    b"plain bytes, no .npy header"
                    if info.filename == "m.npy"
                    else source.read(info)
                )
                archive.writestr(info.filename, data)
    path.write_bytes(buffer.getvalue())
    _quick_refusal(lambda: load_model(path), r"member 'm.npy' is not a \.npy array")


@pytest.mark.parametrize("shape", [(6, 2), (6, 4), (6, 3, 1), (5,)])
def test_experts_of_a_wrong_shape_are_refused(
    shape: tuple[int, ...], tmp_path: Path, capsys
) -> None:
    data = _arrays(_model())
    data["m"] = np.full(shape, 0.5)
    np.savez(tmp_path / "m.npz", **data)
    _quick_refusal(lambda: load_model(tmp_path / "m.npz"), "'m' has shape")
    with pytest.raises(SystemExit) as info:
        main(["render", str(tmp_path / "m.npz"), "--out", str(tmp_path / "r.png")])
    assert info.value.code == 2 and "'m' has shape" in capsys.readouterr().err
    assert not (tmp_path / "r.png").exists()


def _npy_header(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": dtype, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


@pytest.mark.parametrize("key", ["mu", "log_alpha"])
def test_a_huge_declared_size_is_refused_from_the_header(key: str, tmp_path: Path) -> None:
    """A member whose header declares 10^12 elements: refused from the header, with the
    file named, without allocating (the body is a few bytes)."""
    path = tmp_path / "m.npz"
    k = 10**12 if key == "mu" else 6
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, value in _arrays(_model()).items():
            if name == key:
                shape = (k, 2) if key == "mu" else (10**12,)
                archive.writestr(f"{name}.npy", _npy_header(shape) + b"\0" * 64)
            else:
                buffer = io.BytesIO()
                np.save(buffer, value)
                archive.writestr(f"{name}.npy", buffer.getvalue())
    tracemalloc.start()
    try:
        text = _quick_refusal(lambda: load_model(path), "declares")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert text.startswith(str(path)) and peak < 20 << 20, peak
    assert str(MAX_MODEL_KERNELS) in text or "bytes in the archive" in text


def test_an_unused_large_member_is_never_decompressed(tmp_path: Path) -> None:
    """256 MB of zeros in a member no model field uses: the model loads in well under
    a second, and no allocation near that size is made."""
    path = tmp_path / "m.npz"
    save_model(_model(), path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("unused.npy", "w", force_zip64=True) as handle:
            handle.write(_npy_header((32 << 20,)))
            zeros = bytes(8 << 20)
            for _ in range(32):
                handle.write(zeros)
    assert path.stat().st_size < 2 << 20
    tracemalloc.start()
    start = time.perf_counter()
    try:
        model = load_model(path)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert model.n_kernels == 6 and elapsed < 1.0 and peak < 20 << 20, (elapsed, peak)


@pytest.mark.parametrize(("key", "value"), [("A", 1e200), ("mu", 1e12), ("log_alpha", 1e300)])
def test_values_that_overflow_the_renderer_are_refused(
    key: str, value: float, tmp_path: Path
) -> None:
    data = _arrays(_model())
    data[key] = np.full_like(np.asarray(data[key]), value)
    np.savez(tmp_path / "m.npz", **data)
    _quick_refusal(lambda: load_model(tmp_path / "m.npz"), f"'{key}' holds a value of magnitude")


def test_extreme_but_accepted_steering_renders_without_warnings(tmp_path: Path) -> None:
    from smoe_gui.core.io.modelio import MAX_ABS
    from smoe_gui.core.rendering.culled import render

    for scale in (MAX_ABS["A"], 1e-200):
        model = _model()
        steep = model.replace(A=np.tile(np.eye(2), (6, 1, 1)) * scale)
        save_model(steep, tmp_path / "m.npz")
        back = load_model(tmp_path / "m.npz")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            image = render(back)
        assert np.all(np.isfinite(image)) and image.max() > 0.0


def test_a_model_declaring_a_huge_image_is_refused(tmp_path: Path) -> None:
    data = _arrays(_model())
    data["height"] = np.int64(10**9)
    np.savez(tmp_path / "m.npz", **data)
    _quick_refusal(lambda: load_model(tmp_path / "m.npz"), "megapixels")


# --------------------------------------------------------------------------------------
# Images: a valid PNG with a large ICC profile
# --------------------------------------------------------------------------------------
def test_png_with_a_large_icc_profile_loads(tmp_path: Path) -> None:
    import cv2
    from PIL import Image

    profile = np.random.default_rng(1).integers(0, 256, 1_100_000, dtype=np.uint8).tobytes()
    pixels = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) % 251).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "icc.png", icc_profile=profile)
    assert cv2.imread(str(tmp_path / "icc.png"), cv2.IMREAD_GRAYSCALE) is not None
    image = load_image(tmp_path / "icc.png")
    np.testing.assert_allclose(image, pixels / 255.0, atol=1e-6)


def test_a_pillow_refusal_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    from smoe_gui.core.io import image as image_module

    profile = np.random.default_rng(2).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "icc.png", icc_profile=profile)
    monkeypatch.setattr(image_module, "MAX_PNG_CHUNK_BYTES", 100_000)
    text = _quick_refusal(lambda: load_image(tmp_path / "icc.png"), "too large")
    assert text.startswith(str(tmp_path / "icc.png"))


# --------------------------------------------------------------------------------------
# Rendering at another shape; the window given a bad file to screenshot
# --------------------------------------------------------------------------------------
def test_render_says_when_size_stretches(tmp_path: Path, capsys) -> None:
    save_model(_model(width=45, height=30), tmp_path / "m.npz")
    assert (
        main(
            [
                "render",
                str(tmp_path / "m.npz"),
                "--size",
                "300x300",
                "--out",
                str(tmp_path / "sq.png"),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "smoe: note: --size 300x300 stretches the model: it is 45x30 (3:2)" in err
    assert "300x200 keeps its shape" in err
    assert (
        main(
            [
                "render",
                str(tmp_path / "m.npz"),
                "--size",
                "450x300",
                "--out",
                str(tmp_path / "wide.png"),
            ]
        )
        == 0
    )
    assert "note" not in capsys.readouterr().err


def test_screenshot_of_a_bad_file_is_one_line_not_a_modal_box(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("meeting notes, not a picture\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "smoe_gui", str(notes), "--screenshot", str(tmp_path / "s.png")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "notes.txt" in proc.stderr
    assert not (tmp_path / "s.png").exists()
    assert time.perf_counter() - start < 60
