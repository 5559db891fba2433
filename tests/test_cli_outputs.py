"""The ``smoe`` commands' outputs: all or nothing, checked before work, paths shown
safely, an exact reconstruction's infinite PSNR, the progress display.

Every input is generated here: a full disk is a writer monkeypatched to raise
``ENOSPC`` part-way, a non-UTF-8 name is a Latin-1 byte string, a constant image
is written by the test.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from smoe_gui.cli import main
from smoe_gui.cli.progress import FitProgress, Progress
from smoe_gui.core.events import FitEvent
from smoe_gui.core.io import fileio
from smoe_gui.core.io.fileio import write_png
from smoe_gui.core.train.messages import replaced_message

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--set", "tile_size=32", "--set", "tile_steps=5", "--steps", "8", "--time-budget", "20"]
INIT_QUICK = ["--set", "max_pts=40", "--set", "expert_iters=2"]


@pytest.fixture()
def image_file(tmp_path: Path, synthetic_image: np.ndarray) -> Path:
    path = tmp_path / "synthetic.png"
    write_png(path, synthetic_image)
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        status = main(args)
    except SystemExit as exc:
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def one_error_line(status: int, err: str) -> str:
    """The one error line, last on stderr (after any progress lines)."""
    assert status == 2, err
    lines = err.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("smoe: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert "Traceback" not in err
    return errors[0]


def tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def full_disk_after(monkeypatch: pytest.MonkeyPatch, good_files: int) -> list[str]:
    """Make the writers fail with ENOSPC after ``good_files`` files, half-way
    through writing the next one; returns the names attempted."""
    real = fileio.write_bytes
    attempted: list[str] = []

    def writer(path: str | os.PathLike[str], data: bytes) -> None:
        attempted.append(Path(path).name)
        if len(attempted) > good_files:
            with fileio.atomic_write(path) as handle:
                handle.write(data[: len(data) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, data)

    monkeypatch.setattr(fileio, "write_bytes", writer)
    return attempted


# --- 6. all together or not at all --------------------------------------------------
@pytest.mark.parametrize("command", ["init", "fit"])
@pytest.mark.parametrize("good_files", [0, 2])
def test_full_disk_leaves_nothing_and_names_the_file(
    command: str, good_files: int, image_file: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "results" / command
    before = tree(tmp_path)
    attempted = full_disk_after(monkeypatch, good_files)
    extra = INIT_QUICK if command == "init" else QUICK
    status, _, err = run_cli([command, str(image_file), *extra, "--out", str(out)], capsys)
    line = one_error_line(status, err)
    failed = attempted[-1]
    assert len(attempted) == good_files + 1
    assert f"{out / failed}:" in line and os.strerror(errno.ENOSPC) in line, line
    assert tree(tmp_path) == before, "a failed command left files behind"


def test_full_disk_keeps_previous_outputs(
    image_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "fit"
    status, _, err = run_cli(["fit", str(image_file), *QUICK, "--quiet", "--out", str(out)], capsys)
    assert status == 0, err
    old = {name: (out / name).read_bytes() for name in tree(out)}
    full_disk_after(monkeypatch, 3)
    status, _, err = run_cli(["fit", str(image_file), *QUICK, "--method", "grid", "--quiet",
                              "--out", str(out)], capsys)
    assert "report.json" in one_error_line(status, err)
    assert {name: (out / name).read_bytes() for name in tree(out)} == old


@pytest.mark.parametrize("command", ["init", "fit", "render", "experiment"])
def test_unwritable_out_is_refused_before_any_work(
    command: str, image_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--out on a read-only file system (simulated: creating the probe file fails
    with EROFS) is refused at once: no image is read, nothing is trained."""
    from smoe_gui.core.io import image as image_module

    out = tmp_path / "readonly"
    out.mkdir()
    model = tmp_path / "m.npz"
    if command == "render":
        status, _, err = run_cli(
            ["init", str(image_file), *INIT_QUICK, "--out", str(tmp_path / "i")], capsys
        )
        assert status == 0, err
        (tmp_path / "i" / "model.npz").rename(model)

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("work started before --out was checked")

    monkeypatch.setattr(fileio.tempfile, "mkstemp", read_only)
    monkeypatch.setattr(image_module, "load_image", no_work)
    argv = {
        "init": ["init", str(image_file), "--out", str(out)],
        "fit": ["fit", str(image_file), "--out", str(out)],
        "render": ["render", str(model), "--out", str(out / "r.png")],
        "experiment": ["experiment", str(image_file), "--out", str(out)],
    }[command]
    status, _, err = run_cli(argv, capsys)
    line = one_error_line(status, err)
    assert "not writable" in line and str(out) in line
    assert list(out.iterdir()) == []


# --- 7. file names that are not UTF-8 ------------------------------------------------------
def test_latin1_file_names_are_shown_safely(tmp_path: Path, synthetic_image: np.ndarray) -> None:
    """A Latin-1 name on a UTF-8 system: every command finishes and prints the
    undecodable byte as ``\\xe9``."""
    folder = os.fsencode(tmp_path)
    image = folder + b"/caf\xe9.png"
    write_png(os.fsdecode(image), synthetic_image)
    env = dict(os.environ, PYTHONPATH=str(ROOT), LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8")
    env.pop("PYTHONUTF8", None)
    runs = {
        "init": [b"init", image, *map(os.fsencode, INIT_QUICK), b"--out", folder + b"/init-\xe9"],
        "fit": [b"fit", image, *map(os.fsencode, QUICK), b"--out", folder + b"/fit-\xe9"],
        "render": [b"render", folder + b"/fit-\xe9/model.npz", b"--out", folder + b"/r\xe9.png"],
    }
    for name, argv in runs.items():
        result = subprocess.run(
            [os.fsencode(sys.executable), b"-m", b"smoe_gui.cli", *argv],
            capture_output=True,
            env=env,
            timeout=300,
        )
        text = (result.stdout + result.stderr).decode("utf-8")
        assert result.returncode == 0, text
        assert "Traceback" not in text and "surrogates" not in text
        assert "\\xe9" in text, (name, text)
    assert sorted(os.listdir(folder + b"/fit-\xe9")) == [
        b"model.npz",
        b"params.json",
        b"reconstruction.png",
        b"report.json",
    ]
    report = json.loads((Path(os.fsdecode(folder + b"/fit-\xe9")) / "report.json").read_text())
    assert report["image"]["path"].endswith("caf\\xe9.png")
    assert os.path.isfile(folder + b"/r\xe9.png")
    # an error about such a file is one printable line too
    missing = folder + b"/gon\xe9.png"
    result = subprocess.run(
        [
            os.fsencode(sys.executable),
            b"-m",
            b"smoe_gui.cli",
            b"fit",
            missing,
            b"--out",
            folder + b"/never",
        ],
        capture_output=True,
        env=env,
        timeout=120,
    )
    err = result.stderr.decode("utf-8")
    assert result.returncode == 2 and "gon\\xe9.png" in err and len(err.strip().splitlines()) == 1


# --- 2. an exact reconstruction -----------------------------------------------------------------
@pytest.mark.parametrize("level", [0, 128, 255])
def test_fit_on_a_constant_image_writes_inf(
    level: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "flat.png"
    write_png(path, np.full((48, 64), level, dtype=np.uint8))
    out = tmp_path / "out"
    status, _, err = run_cli(["fit", str(path), *QUICK, "--out", str(out)], capsys)
    assert status == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["psnr_db"] == "inf" and float(report["psnr_db"]) == math.inf
    assert report["psnr_history"][-1]["psnr_db"] == "inf"
    assert "PSNR inf dB" in err and "Traceback" not in err


# --- 3. progress ------------------------------------------------------------------------
def _event(
    step: int,
    phase: str,
    elapsed: float,
    psnr: float = 25.0,
    final: bool = False,
    message: str | None = None,
) -> FitEvent:
    return FitEvent(
        phase=phase,
        step=step,
        loss=0.0,
        psnr=psnr,
        n_kernels=50,
        elapsed_s=elapsed,
        tile=0 if phase == "tiles" else None,
        n_tiles=4,
        final=final,
        message=message,
    )


def test_fit_progress_plain_lines_off_a_terminal() -> None:
    stream = io.StringIO()
    progress = FitProgress(10.0, stream=stream, plain_interval_s=1e9)
    for step in range(200):
        progress(_event(step, "tiles", step * 0.01))
    progress(_event(200, "merge", 2.0, message="merged 4 tile(s): 50 kernels (0 pruned)"))
    progress(_event(201, "finetune", 2.1))
    # single prunings stay in the report; a re-placement, which explains a dip, shows
    progress(_event(202, "finetune", 2.2,
                    message="fine-tuning: pruned 1 kernel(s) with α < 0.001; 1 re-placed"))
    replaced = replaced_message(203, 3, 0.05)
    progress(_event(203, "finetune", 2.3, message=replaced))
    progress(
        _event(204, "finetune", 3.0, psnr=math.inf, final=True, message="time budget of 10 s spent")
    )
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()
    # throttled: one line per phase change and final, plus the three messages
    assert lines[0] == "fit: tiles 1/4  step 0  PSNR …  (tile 1/4: 25.00 dB)  K 50  0.0 / 10 s"
    assert f"  {replaced}" in lines and not any("pruned 1" in line for line in lines)
    assert len(lines) == 8, lines
    assert "PSNR inf dB" in lines[-2] and lines[-1] == "  time budget of 10 s spent"


def test_progress_bar_on_a_terminal_uses_tqdm() -> None:
    stream = io.StringIO()
    with Progress(4, "experiment", unit="run", stream=stream, tty=True, interval_s=0.0) as bar:
        bar.update(1, "peppers edge 500")
        bar.note("failed: barbara grid 2000")
        bar.update(4, "done", force=True)
    text = stream.getvalue()
    assert "\r" in text and "100%" in text and "failed: barbara grid 2000" in text
    quiet = io.StringIO()
    with Progress(4, "x", stream=quiet, quiet=True, tty=True) as bar:
        bar.update(2, "y")
        bar.note("z")
    assert quiet.getvalue() == ""


def test_no_hand_drawn_escape_codes_in_cli() -> None:
    for path in (ROOT / "smoe_gui" / "cli").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "\\x1b[" not in text and "\\033[" not in text, path
        assert '"#" *' not in text, path


def _read_all(fd: int, quiet_s: float = 0.3) -> str:
    """Everything written to the pseudo-terminal ``fd`` (one read may return only
    the first of the bar's writes)."""
    import select

    chunks = []
    while select.select([fd], [], [], quiet_s)[0]:
        data = os.read(fd, 65536)
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


def test_progress_bar_draws_on_a_terminal_of_size_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pseudo-terminal that reports 0x0 (``script``, CI runners): the bar still shows."""
    import pty

    master, slave = pty.openpty()
    with os.fdopen(slave, "w", encoding="utf-8") as stream:
        monkeypatch.setattr(sys, "stderr", stream)
        assert os.get_terminal_size(slave).columns == 0
        with FitProgress(10.0) as progress:
            assert progress.tty
            progress(_event(3, "finetune", 5.0))
        stream.flush()
        text = _read_all(master)
    os.close(master)
    assert "fit:  50%|" in text and "finetune  step 3" in text, text
