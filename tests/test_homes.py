"""One home for each fact: the homes work, and no other module keeps its own copy.

The source scans read every ``.py`` file of ``smoe_gui`` and ``benchmarks`` and
fail when a fact (the method list, the image suffixes, the PSNR formula, thread
set-up, one-line error text, ``--max-size`` validation, segment strokes, the
fit-run code path of the old CLI, union-find, pixel moments by bincount, process
and thread pools) is written anywhere but its home; another scan keeps the method
names in the methods' own modules.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

from smoe_gui.core.errors import one_line, show_path
from smoe_gui.core.io import fileio
from smoe_gui.core.io.image import IMAGE_SUFFIXES, MIN_SIDE, check_max_size, load_image
from smoe_gui.core.methods.drawing import draw_segments, segment_strokes
from smoe_gui.core.metrics import PSNR_PLOT_MAX_DB, format_psnr, psnr, psnr_from_mse, psnr_json
from smoe_gui.core.params import METHODS, check_method
from smoe_gui.core.threads import default_threads, set_threads

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    p for folder in ("smoe_gui", "benchmarks") for p in (ROOT / folder).rglob("*.py")
)

#: Files another helper is rewriting right now; each keeps a copy until then.
#: Remove an entry as soon as its file imports the home.
PENDING: dict[str, set[str]] = {
}

#: fact -> (its home, a pattern that marks a copy of it)
FACTS: dict[str, tuple[str, re.Pattern[str]]] = {
    "methods": ("smoe_gui/core/registry.py", re.compile(r"""["']edge["']\s*,\s*["']grid["']""")),
    "suffixes": ("smoe_gui/core/io/image.py", re.compile(r"""["']\.(tiff?|jpe?g|webp|bmp)["']""")),
    "psnr": ("smoe_gui/core/metrics.py", re.compile(r"10(\.0)?\s*\*\s*(math|np|numpy)\.log10")),
    "threads": ("smoe_gui/core/threads.py", re.compile(r"set_num_threads\(|sched_getaffinity")),
    "one_line": ("smoe_gui/core/errors.py",
                 re.compile(r"def _?one_line|\"\s\"\.join\(str\(exc\)\.split\(\)\)")),
    "max_size": ("smoe_gui/core/io/image.py", re.compile(r"max(imum)?.size must")),
    "strokes": ("smoe_gui/core/methods/drawing.py", re.compile(r"def segment_strokes")),
    "fit_run": ("smoe_gui/core/train/runs.py",
                re.compile(r"def (fit_image|fit_report|run_fit)\b|class (FitRun|FitHistory)\b")),
    "union_find": ("smoe_gui/core/methods/_unionfind.py",
                   re.compile(r"def _?find\(|parent\[\w+\] = parent\[parent\[")),
    "moments": ("smoe_gui/core/methods/segment/superpixels.py",
                re.compile(r"np\.bincount\([^)]*dx \* dy")),
    "executors": ("smoe_gui/core/parallel.py",
                  re.compile(r"(ProcessPool|ThreadPool)Executor\(|get_context\(\s*[\"']spawn")),
}


def _copies(fact: str) -> list[str]:
    home, pattern = FACTS[fact]
    found = []
    for path in SOURCES:
        rel = path.relative_to(ROOT).as_posix()
        if rel == home or fact in PENDING.get(rel, set()):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{rel}:{number}: {line.strip()}")
    return found


@pytest.mark.parametrize("fact", sorted(FACTS))
def test_each_fact_has_one_home(fact: str) -> None:
    copies = _copies(fact)
    assert not copies, f"{fact} written outside {FACTS[fact][0]}:\n" + "\n".join(copies)


def test_the_scan_sees_a_copy(tmp_path: Path) -> None:
    """The patterns match the copies they are meant to catch."""
    samples = {
        "methods": 'choices=("edge", "grid")',
        "suffixes": 'SUFFIXES = (".png", ".tif")',
        "psnr": "return -10.0 * math.log10(mse)",
        "threads": "torch.set_num_threads(4)",
        "one_line": 'text = " ".join(str(exc).split())',
        "max_size": 'raise ValueError("--max-size must be at least 8")',
        "strokes": "def segment_strokes(segments):",
        "fit_run": "def fit_image(image, params):",
        "union_find": "        parent[i] = parent[parent[i]]",
        "moments": "    cov[:, 0, 1] = np.bincount(part, dx * dy, k) / cnt",
        "executors": "pool = ProcessPoolExecutor(max_workers=4)",
    }
    assert set(samples) == set(FACTS)
    for fact, line in samples.items():
        assert FACTS[fact][1].search(line), fact


def test_pending_files_exist() -> None:
    for rel in PENDING:
        assert (ROOT / rel).exists(), f"{rel} is gone: drop it from PENDING"


# --- method names: only in the methods' own modules ----------------------------------
#: The built-in method names and the files that may write them as string literals:
#: each method's own module (or package), and the registry.
METHOD_NAMES = ("edge", "grid", "s-smoe", "as-smoe")
METHOD_HOMES = (
    "smoe_gui/core/methods/edge/",
    "smoe_gui/core/methods/grid.py",
    "smoe_gui/core/methods/segment/s_smoe.py",
    "smoe_gui/core/methods/segment/as_smoe.py",
    "smoe_gui/core/registry.py",
)
#: (file, literal) written elsewhere on purpose, and why.
METHOD_NAME_EXCEPTIONS: dict[tuple[str, str], str] = {
    # Optuna's grid sampler ("smoe tune --sampler grid"), a sampler, not the grid method;
    # its one definition, GRID_SAMPLER, serves the study, its outputs and the window.
    ("smoe_gui/core/tune/space.py", "grid"): "the grid sampler's name",
}


def _method_name_literals(path: Path, rel: str) -> list[str]:
    """``file:line: 'name'`` for each string constant of ``path`` equal to a method name
    (docstrings and longer texts do not count: they name no method by its key)."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and node.value in METHOD_NAMES:
            if (rel, node.value) not in METHOD_NAME_EXCEPTIONS:
                found.append(f"{rel}:{node.lineno}: {node.value!r}")
    return found


def test_method_names_are_written_only_in_their_homes() -> None:
    found = []
    for path in sorted((ROOT / "smoe_gui").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if not rel.startswith(METHOD_HOMES):
            found.extend(_method_name_literals(path, rel))
    assert not found, "method names written outside the methods' modules:\n" + "\n".join(found)


def test_method_name_scan_sees_a_literal(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('x = 1\nif method == "as-smoe":\n    pass\n"""edge in a docstring"""\n')
    assert _method_name_literals(sample, "sample.py") == ["sample.py:2: 'as-smoe'"]
    for rel, name in METHOD_NAME_EXCEPTIONS:  # each exception is still needed
        assert any(hit.endswith(repr(name)) for hit in _method_name_literals(ROOT / rel, "x"))


def test_the_registry_lists_the_builtin_methods_in_order() -> None:
    assert tuple(METHODS)[:4] == METHOD_NAMES


# --- methods, suffixes, --max-size ------------------------------------------------
def test_methods_home() -> None:
    assert METHODS[0] == "edge" and "grid" in METHODS
    assert check_method("grid") == "grid"
    with pytest.raises(ValueError, match="known methods: edge, grid"):
        check_method("spiral")


def test_cli_method_choices_come_from_the_home() -> None:
    from smoe_gui.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("init", "fit"):
        action = next(a for a in sub.choices[name]._actions if a.dest == "method")  # type: ignore[attr-defined]
        assert tuple(action.choices) == METHODS


def test_image_suffixes_are_lower_case_and_loadable(tmp_path: Path) -> None:
    assert all(s.startswith(".") and s == s.lower() for s in IMAGE_SUFFIXES)
    from PIL import Image

    arr = (np.arange(16 * 16).reshape(16, 16) % 251).astype(np.uint8)
    for suffix in (".png", ".tif", ".bmp", ".jpg", ".webp", ".pgm"):
        assert suffix in IMAGE_SUFFIXES
        path = tmp_path / f"x{suffix}"
        Image.fromarray(arr).save(path)
        assert load_image(path).shape == (16, 16)


def test_sample_images_use_the_suffix_home() -> None:
    from smoe_gui.resources import sample_images

    samples = sample_images()
    assert samples and all(p.suffix.lower() in IMAGE_SUFFIXES for p in samples)


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), (8, 8), ("640", 640), (" 32 ", 32), (100.0, 100)]
)
def test_check_max_size_accepts(value: object, expected: int | None) -> None:
    assert check_max_size(value) == expected


@pytest.mark.parametrize("value", [4, "7", "x", "1.5", 2.5, True, [8], -1])
def test_check_max_size_refuses(value: object) -> None:
    with pytest.raises(ValueError, match="maximum size") as info:
        check_max_size(value)
    assert "\n" not in str(info.value)


def test_load_image_checks_max_size_before_reading(tmp_path: Path) -> None:
    # the file does not exist: the size is refused first
    with pytest.raises(ValueError, match=f"at least {MIN_SIDE}"):
        load_image(tmp_path / "missing.png", max_size=3)


# --- PSNR -------------------------------------------------------------------------
def test_psnr_from_mse() -> None:
    assert psnr_from_mse(0.01) == pytest.approx(20.0)
    assert psnr_from_mse(100.0, peak=255.0) == pytest.approx(10 * math.log10(255.0**2 / 100.0))
    assert psnr_from_mse(0.0) == math.inf
    assert math.isnan(psnr_from_mse(math.nan)) and math.isnan(psnr_from_mse(math.inf))
    a = np.linspace(0, 1, 100).reshape(10, 10)
    assert psnr(a, a) == math.inf
    assert psnr(a, a + 0.1) == pytest.approx(psnr_from_mse(0.01))


def test_infinite_psnr_is_one_documented_value() -> None:
    assert psnr_json(math.inf) == "inf" and float(psnr_json(math.inf)) == math.inf  # type: ignore[arg-type]
    assert psnr_json(31.5) == 31.5 and psnr_json(math.nan) is None and psnr_json(None) is None
    assert json.loads(json.dumps({"psnr_db": psnr_json(math.inf)}, allow_nan=False)) == {
        "psnr_db": "inf"
    }
    assert format_psnr(31.4159) == "31.42 dB" and format_psnr(math.inf) == "inf dB"
    assert format_psnr(math.nan) == "n/a"
    assert PSNR_PLOT_MAX_DB == 100.0


# --- threads, errors ----------------------------------------------------------------
def test_threads_home() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        assert default_threads() >= 1
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
        assert set_threads(None) == default_threads()
        with pytest.raises(ValueError, match="threads"):
            set_threads(-2)
    finally:
        torch.set_num_threads(before)


def test_one_line() -> None:
    assert one_line(ValueError("bad\n  value")) == "bad value"
    assert one_line(RuntimeError("x")) == "RuntimeError: x"
    assert one_line(KeyError("k")) == "KeyError: 'k'"
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/out/model.npz")
    assert one_line(full) == f"/out/model.npz: {os.strerror(errno.ENOSPC)}"
    assert "memory" in one_line(MemoryError())
    latin = os.fsdecode(b"/tmp/caf\xe9.png")
    line = one_line(FileNotFoundError(errno.ENOENT, "No such file", latin))
    assert line == "/tmp/caf\\xe9.png: No such file"
    line.encode("utf-8")  # printable


def test_show_path_for_names_that_are_not_utf8() -> None:
    assert show_path(b"caf\xe9.png") == "caf\\xe9.png"
    assert show_path(os.fsdecode(b"caf\xe9.png")) == "caf\\xe9.png"
    assert show_path(Path("plain/é.png")) == "plain/é.png"


# --- output folders -------------------------------------------------------------------
def test_check_output_dir(tmp_path: Path) -> None:
    assert fileio.check_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()  # nothing created
    blocker = tmp_path / "file"
    fileio.write_text(blocker, "x")
    with pytest.raises(ValueError, match="not a folder"):
        fileio.check_output_dir(blocker)
    with pytest.raises(ValueError, match="not a folder"):
        fileio.check_output_dir(blocker / "sub")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_check_output_dir_refuses_a_read_only_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="not writable"):
            fileio.check_output_dir(locked)
        with pytest.raises(ValueError, match="not writable"):
            fileio.check_output_dir(locked / "new")
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("exists", [False, True])
def test_output_group_all_or_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exists: bool
) -> None:
    out = tmp_path / "deep" / "out"
    if exists:
        out.mkdir(parents=True)
        fileio.write_text(out / "old.txt", "old")
    with fileio.output_group(out) as folder:
        fileio.write_text(folder / "a.txt", "a")
        fileio.write_text(folder / "b.txt", "b")
        assert not (out / "a.txt").exists()  # nothing appears before the end
    assert (out / "a.txt").read_text() == "a" and (out / "b.txt").read_text() == "b"
    listed = sorted(p.name for p in out.iterdir())
    assert listed == (["a.txt", "b.txt", "old.txt"] if exists else ["a.txt", "b.txt"])
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]

    # a full disk on the second file: nothing new is left, the error names it
    real = fileio.write_bytes
    calls = []

    def full_disk(path: str | os.PathLike[str], data: bytes) -> None:
        calls.append(path)
        if len(calls) == 2:
            with fileio.atomic_write(path) as handle:
                handle.write(data[:1])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, data)

    monkeypatch.setattr(fileio, "write_bytes", full_disk)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(OSError) as info, fileio.output_group(out) as folder:
        fileio.write_text(folder / "c.txt", "c")
        fileio.write_text(folder / "d.txt", "d")
    assert info.value.errno == errno.ENOSPC
    assert Path(info.value.filename) == out / "d.txt"
    assert one_line(info.value).startswith(f"{out / 'd.txt'}:")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_output_group_removes_the_folders_it_made(tmp_path: Path) -> None:
    out = tmp_path / "x" / "y" / "out"
    with pytest.raises(RuntimeError), fileio.output_group(out) as folder:
        fileio.write_text(folder / "a.txt", "a")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


# --- segment strokes ---------------------------------------------------------------------
def test_segment_strokes_home_serves_window_and_drawing() -> None:
    from smoe_gui.ui.control import geometry

    assert geometry.segment_strokes is segment_strokes
    segs = np.array([[5.0, 5.0, 0.0, 5.0], [8.0, 3.0, -45.0, 3.0], [2.0, 2.0, 90.0, 2.0]])
    strokes = segment_strokes(segs)
    assert set(strokes) == {0, 90, 45, -45}
    np.testing.assert_allclose(strokes[0], [[3.0, 5.0], [7.0, 5.0]])
    np.testing.assert_allclose(strokes[-45], [[7.0, 4.0], [9.0, 2.0]])
    np.testing.assert_allclose(strokes[90], [[2.0, 1.5], [2.0, 2.5]])
    assert strokes[45].shape == (0, 2)
    picture = draw_segments(np.zeros((12, 12), np.float32), segs)
    background = picture[10, 10].copy()  # the image dimmed towards white, no stroke
    assert (picture[5, 3:8] != background).any(axis=1).all()
    assert (picture[0, :] == background).all()
    with pytest.raises(ValueError, match="direction"):
        segment_strokes(np.array([[1.0, 1.0, 30.0, 2.0]]))
