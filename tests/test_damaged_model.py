"""A damaged or foreign model file gives one clear line (core, CLI and window
share the message), never numpy's advice about pickled data."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from smoe_gui.cli import main
from smoe_gui.core.io.modelio import load_model, save_model
from smoe_gui.core.model import SmoeModel


def _model() -> SmoeModel:
    k = 3
    return SmoeModel(
        mu=np.array([[2.0, 2.0], [5.0, 5.0], [8.0, 3.0]]),
        A=np.tile(np.eye(2), (k, 1, 1)),
        m=np.full(k, 0.5),
        log_alpha=np.zeros(k),
        height=10,
        width=12,
    )


def _damaged(kind: str, folder: Path) -> Path:
    path = folder / f"{kind}.npz"
    if kind == "random":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "truncated":
        save_model(_model(), path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "object-array":
        np.save(path.with_suffix(".npy"), np.array([{"a": 1}], dtype=object), allow_pickle=True)
        path.write_bytes(path.with_suffix(".npy").read_bytes())
    elif kind == "object-member":
        buf = io.BytesIO()
        np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("mu.npy", buf.getvalue())
    elif kind == "corrupt-member":
        save_model(_model(), path)
        data = bytearray(path.read_bytes())
        data[60:120] = b"\xff" * 60  # inside the first member's data
        path.write_bytes(bytes(data))
    return path


KINDS = ("random", "truncated", "object-array", "object-member", "corrupt-member")


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_model_file_one_clear_line(kind: str, tmp_path: Path) -> None:
    path = _damaged(kind, tmp_path)
    with pytest.raises(ValueError) as info:
        load_model(path)
    text = str(info.value)
    assert "\n" not in text and "pickle" not in text[len(str(path)) :].lower()
    assert text.startswith(str(path)) and ("damaged" in text or "not a smoe model" in text)


@pytest.mark.parametrize("kind", ("random", "object-array"))
def test_cli_says_the_same_line(kind: str, tmp_path: Path, capsys) -> None:
    path = _damaged(kind, tmp_path)
    out = tmp_path / "r.png"
    with pytest.raises(SystemExit) as info:
        main(["render", str(path), "--out", str(out)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "damaged or not a smoe-gui model file" in err
    assert not out.exists()
