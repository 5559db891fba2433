"""Nothing lost: every writer keeps the previous file intact if it dies mid-way.

Three kinds of check:

* a child process starts one of the writers (``write_npz``, ``write_png``,
  ``write_text``, ``save_model``, ``write_with``) over an existing file, is
  SIGKILLed while the new bytes are half written, and the previous file must
  still load identically;
* an exception (or Ctrl-C) inside :func:`atomic_write` leaves the old content
  and no temporary file;
* a scan of the source of ``smoe_gui`` finds no call that writes a file
  without going through :mod:`smoe_gui.core.io.fileio`, and a run of the ``smoe``
  commands under an audit hook opens no output file for writing except the
  temporary files of ``atomic_write``.
"""

from __future__ import annotations

import ast
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from smoe_gui.core.io import fileio, modelio
from smoe_gui.core.model import SmoeModel
from smoe_gui.core.params import Params

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "smoe_gui"

#: The child writes the new content in 4 KiB chunks, prints this after the
#: first chunk, then sleeps until it is killed.
MARK = "HALF-WRITTEN"

CHILD = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    real_fdopen = os.fdopen

    class SlowFile:
        # Wraps the temporary file: writes 4 KiB, reports, then hangs.
        def __init__(self, handle):
            self._h = handle
        def write(self, data):
            view = memoryview(bytes(data) if isinstance(data, str) else data)
            self._h.write(view[:4096]); self._h.flush(); os.fsync(self._h.fileno())
            print("{mark}", flush=True)
            time.sleep(600)
        def __getattr__(self, name):
            return getattr(self._h, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self._h.__exit__(*exc)

    os.fdopen = lambda fd, mode="r", *a, **k: SlowFile(real_fdopen(fd, mode, *a, **k))

    from smoe_gui.core.io import fileio

    from smoe_gui.core.io import modelio
    from smoe_gui.core.model import SmoeModel
    kind, path = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(1)
    if kind == "npz":
        fileio.write_npz(path, big=rng.random((400, 400)))
    elif kind == "png":
        fileio.write_png(path, rng.random((300, 300)).astype(np.float32))
    elif kind == "text":
        fileio.write_text(path, "new " * 50_000)
    elif kind == "model":
        n = 3000
        A = np.tile(np.eye(2) * 0.3, (n, 1, 1))
        model = SmoeModel(rng.random((n, 2)) * 60, A, rng.random(n), np.zeros(n), 64, 64)
        modelio.save_model(model, path)
    elif kind == "with":
        fileio.write_with(path, lambda h: h.write(os.urandom(1 << 20)))
    """
).format(mark=MARK)


def _small_model(seed: int = 0) -> SmoeModel:
    rng = np.random.default_rng(seed)
    n = 5
    A = np.tile(np.eye(2) * 0.25, (n, 1, 1))
    return SmoeModel(rng.random((n, 2)) * 15, A, rng.random(n), np.zeros(n), 16, 16)


def _write_old(kind: str, path: Path) -> object:
    """Write the 'previous' file for ``kind``; returns what reading it gives."""
    if kind == "npz":
        fileio.write_npz(path, old=np.arange(12.0).reshape(3, 4))
    elif kind == "png":
        img = np.zeros((10, 12), np.uint8)
        img[2:5, 3:9] = 200
        fileio.write_png(path, img)
    elif kind == "text":
        fileio.write_text(path, json.dumps({"old": True}))
    elif kind == "model":
        modelio.save_model(_small_model(), path, Params())
    elif kind == "with":
        fileio.write_bytes(path, b"old bytes\n" * 10)
    return _read(kind, path)


def _read(kind: str, path: Path) -> object:
    if kind == "npz":
        with np.load(path) as data:
            return {k: data[k].copy() for k in data.files}
    if kind == "png":
        import cv2

        return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if kind == "model":
        m = modelio.load_model(path)
        p = modelio.read_model_params(path)
        return {"mu": m.mu, "A": m.A, "m": m.m, "la": m.log_alpha, "p": p}
    if kind == "text":
        return path.read_text(encoding="utf-8")
    return path.read_bytes()


def _same(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


SUFFIX = {"npz": ".npz", "png": ".png", "text": ".json", "model": ".npz", "with": ".bin"}


@pytest.mark.parametrize("kind", ["npz", "png", "text", "model", "with"])
def test_sigkill_mid_write_keeps_previous_file(tmp_path: Path, kind: str) -> None:
    target = tmp_path / f"result{SUFFIX[kind]}"
    before = _write_old(kind, target)
    old_bytes = target.read_bytes()

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline and child.poll() is None:
            ready, _, _ = select.select([child.stdout], [], [], 0.5)
            if ready:
                line = child.stdout.readline()  # type: ignore[union-attr]
                break
        assert line.strip() == MARK, (
            "child never reached the middle of the write: "
            f"{child.stderr.read() if child.poll() is not None else ''}"  # type: ignore[union-attr]
        )
        # the new content really is half on disk, in a temporary file beside the target
        temps = [p for p in tmp_path.iterdir() if p.name.startswith(f".{target.name}.")]
        assert len(temps) == 1 and temps[0].stat().st_size == 4096
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    assert child.returncode == -signal.SIGKILL
    assert target.read_bytes() == old_bytes
    assert _same(_read(kind, target), before)


def test_exception_inside_atomic_write_leaves_old_content_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "params.json"
    fileio.write_text(target, "old")
    with pytest.raises(RuntimeError, match="boom"):
        with fileio.atomic_write(target, "wb") as handle:
            handle.write(b"new, half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["params.json"]


def test_keyboard_interrupt_inside_atomic_write_leaves_old_content(tmp_path: Path) -> None:
    target = tmp_path / "model.npz"
    fileio.write_npz(target, x=np.ones(3))
    old = target.read_bytes()

    def writer(handle) -> None:  # noqa: ANN001
        handle.write(b"\0" * 10_000)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fileio.write_with(target, writer)
    assert target.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_failed_encode_leaves_old_png_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "export.png"
    fileio.write_png(target, np.full((9, 9), 0.5, np.float32))
    old = target.read_bytes()
    with pytest.raises(Exception):  # noqa: B017  (OpenCV's own error type for a 5-D array)
        fileio.write_png(target, np.zeros((2, 2, 2, 2, 2)))
    assert target.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["export.png"]


def test_missing_folder_is_a_clear_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        fileio.write_text(tmp_path / "nope" / "a.txt", "x")


def test_new_file_is_complete_and_replaces_old(tmp_path: Path) -> None:
    target = tmp_path / "m.npz"
    modelio.save_model(_small_model(0), target)
    modelio.save_model(_small_model(1), target)
    assert np.array_equal(modelio.load_model(target).mu, _small_model(1).mu)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


# --- no writer around fileio ------------------------------------------------------

#: Method names that write a file when given a path.
_WRITING_METHODS = {
    "save",
    "savez",
    "savez_compressed",
    "savetxt",
    "savefig",
    "imwrite",
    "tofile",
    "write_text",
    "write_bytes",
    "to_csv",
    "to_json",
    "dump",
    "export",
}
#: Receivers whose methods of those names are the atomic writers themselves.
_ATOMIC_RECEIVERS = {"fileio", "modelio"}


def _non_atomic_writes(path: Path) -> list[str]:
    """``file:line call`` for each call in ``path`` that may write a file directly.

    Calls into ``fileio``/``modelio``, ``np.savez*`` into an in-memory buffer
    (first argument a name containing ``buf``), ``json.dump`` into a handle,
    and lines marked ``# atomic-ok`` are not reported.
    """
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        line = lines[node.lineno - 1]
        if "atomic-ok" in line:
            continue
        func = node.func
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        where = f"{shown}:{node.lineno}: {line.strip()}"
        if isinstance(func, ast.Name) and func.id == "open":
            mode = node.args[1] if len(node.args) > 1 else None
            for kw in node.keywords:
                if kw.arg == "mode":
                    mode = kw.value
            if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
                if set(mode.value) & set("wax+"):
                    found.append(where)
            continue
        if isinstance(func, ast.Attribute):
            if func.attr == "open" and node.args:
                mode = (
                    node.args[0]
                    if not isinstance(func.value, ast.Name) or func.value.id != "os"
                    else None
                )
                if (
                    isinstance(mode, ast.Constant)
                    and isinstance(mode.value, str)
                    and set(mode.value) & set("wax+")
                ):
                    found.append(where)
                continue
            if func.attr not in _WRITING_METHODS or not (node.args or node.keywords):
                continue
            receiver = func.value
            if isinstance(receiver, ast.Name) and receiver.id in _ATOMIC_RECEIVERS:
                continue
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Name) and any(
                s in first.id.lower() for s in ("buf", "handle", "stream")
            ):
                continue
            if func.attr == "dump" and len(node.args) >= 2:
                target = node.args[1]
                if isinstance(target, ast.Name) and any(
                    s in target.id.lower() for s in ("buf", "handle", "stream", "fh")
                ):
                    continue
            found.append(where)
    return found


def test_scanner_finds_direct_writes(tmp_path: Path) -> None:
    """The scanner itself: it must catch the usual ways of writing a file."""
    sample = tmp_path / "scan_sample.py"
    code = textwrap.dedent(
        """
        import numpy as np
        from pathlib import Path
        def f(path, image, fig, data):
            with open(path, "w") as fh:
                fh.write("x")
            np.save(path, data)
            Path(path).write_text("x")
            fig.savefig(path)
            cv2.imwrite(path, image)
            fileio.write_text(path, "fine")
            np.savez_compressed(buffer, a=data)
        """
    )
    fileio.write_text(sample, code)
    hits = _non_atomic_writes(sample)
    assert len(hits) == 5, hits


def test_no_direct_file_writes_in_package() -> None:
    offenders: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "fileio.py":
            continue
        offenders += _non_atomic_writes(path)
    assert not offenders, "files written without smoe_gui.core.io.fileio:\n" + "\n".join(offenders)


AUDIT_CHILD = textwrap.dedent(
    """
    import os, sys
    out = os.path.realpath(sys.argv[1])
    opened = []

    def hook(event, args):
        if event != "open" or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path, mode, flags = (list(args) + [None, None])[:3]
        writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if writing:
            p = os.path.realpath(os.fsdecode(path))
            if p.startswith(out + os.sep):
                opened.append(os.path.basename(p))

    sys.addaudithook(hook)
    from smoe_gui.cli import main
    status = 0
    for argv in sys.argv[2:]:
        status = main(argv.split("\\x1f")) or status
    print("OPENED=" + "|".join(opened))
    sys.exit(status)
    """
)


def _cli_available(*commands: str) -> bool:
    cli = PACKAGE / "cli"
    return all((cli / f"{c}_cmd.py").exists() for c in commands)


@pytest.mark.slow
@pytest.mark.skipif(not _cli_available("init", "fit"), reason="smoe init/fit not built yet")
def test_cli_writes_every_output_through_temp_files(tmp_path: Path, sample_path: Path) -> None:
    """``smoe init``, ``fit`` and ``experiment`` open output files for writing only as
    atomic temporary files (models, parameters, PNG exports, reports, results, figures)."""
    out = tmp_path / "out"
    out.mkdir()
    small = tmp_path / "small.png"
    from smoe_gui.core.io.image import load_image

    img = load_image(sample_path)[::6, ::6]
    fileio.write_png(small, img)
    sets = "\x1f".join(
        [
            "--set",
            "max_steps=5",
            "--set",
            "tile_steps=2",
            "--set",
            "time_budget=10",
            "--set",
            "max_pts=40",
            "--set",
            "expert_iters=2",
            "--set",
            "tile_size=64",
        ]
    )
    runs = [
        "\x1f".join(["init", str(small), "--out", str(out / "init")]) + "\x1f" + sets,
        "\x1f".join(["fit", str(small), "--out", str(out / "fit")]) + "\x1f" + sets,
    ]
    if _cli_available("experiment"):
        runs.append(
            "\x1f".join(
                [
                    "experiment",
                    str(small),
                    "--methods",
                    "edge",
                    "--budgets",
                    "30",
                    "--time-budget",
                    "1",
                    "--out",
                    str(out / "experiment"),
                ]
            )
            + "\x1f"
            + sets
        )
    for name in ("init", "fit", "experiment"):
        (out / name).mkdir()
    result = subprocess.run(
        [sys.executable, "-c", AUDIT_CHILD, str(out), *runs],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("OPENED=")][-1]
    opened = [n for n in line[len("OPENED=") :].split("|") if n]
    written = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert written, "the commands wrote nothing"
    # the sweep's lock file is opened, never written through: it holds no output
    direct = [
        n
        for n in opened
        if not (n.startswith(".") and n.endswith(".tmp")) and n != fileio.OutputLock.NAME
    ]
    assert not direct, f"opened for writing without atomic_write: {direct}"
    leftovers = [n for n in written if n.endswith(".tmp")]
    assert not leftovers, leftovers
