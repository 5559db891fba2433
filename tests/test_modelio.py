"""The .npz model format: round trip and refusal of damaged files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smoe_gui.core.io.modelio import FORMAT_VERSION, load_model, read_model_params, save_model
from smoe_gui.core.model import SmoeModel
from smoe_gui.core.params import Params


def _model() -> SmoeModel:
    rng = np.random.default_rng(3)
    return SmoeModel(rng.uniform(0, 20, (5, 2)), rng.normal(0, 0.3, (5, 2, 2)),
                     rng.uniform(0, 1, 5), rng.normal(0, 0.1, 5), 24, 32)


def test_round_trip_bit_exact_with_params(tmp_path: Path) -> None:
    model, params = _model(), Params(lam=0.3, max_pts=77)
    save_model(model, tmp_path / "m.npz", params)
    back = load_model(tmp_path / "m.npz")
    for key in ("mu", "A", "m", "log_alpha"):
        np.testing.assert_array_equal(getattr(back, key), getattr(model, key))
    assert (back.height, back.width) == (24, 32)
    assert read_model_params(tmp_path / "m.npz") == params
    with np.load(tmp_path / "m.npz") as data:
        assert set(data.files) == {"mu", "A", "m", "log_alpha", "height", "width",
                                   "format_version", "params"}
        assert int(data["format_version"]) == FORMAT_VERSION


def test_without_params(tmp_path: Path) -> None:
    save_model(_model(), tmp_path / "m.npz")
    assert read_model_params(tmp_path / "m.npz") is None


def _write(path: Path, **overrides: object) -> Path:
    model = _model()
    data: dict[str, object] = dict(mu=model.mu, A=model.A, m=model.m, log_alpha=model.log_alpha,
                                   height=np.int64(24), width=np.int64(32),
                                   format_version=np.int64(1))
    for k, v in overrides.items():
        if v is None:
            data.pop(k)
        else:
            data[k] = v
    np.savez(path, **data)
    return path


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"A": None}, "missing keys: A"),
        ({"mu": np.zeros((5, 3))}, "'mu' has shape"),
        ({"m": np.array([0.1, np.nan, 0.2, 0.3, 0.4])}, "NaN"),
        ({"mu": np.zeros((5, 2), dtype=np.int32)}, "dtype"),
        ({"format_version": np.int64(99)}, "newer"),
        ({"height": np.array([1, 2])}, "'height'"),
    ],
)
def test_damaged_models_refused(tmp_path: Path, overrides: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        load_model(_write(tmp_path / "bad.npz", **overrides))


def test_not_a_model_file(tmp_path: Path) -> None:
    (tmp_path / "x.npz").write_text("garbage")
    with pytest.raises(ValueError, match="damaged or not a smoe-gui model file"):
        load_model(tmp_path / "x.npz")
    with pytest.raises(ValueError, match="no such file"):
        load_model(tmp_path / "missing.npz")


def test_save_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    save_model(_model(), path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left


def test_written_files_get_ordinary_permissions(tmp_path: Path) -> None:
    import os
    import stat

    save_model(_model(), tmp_path / "m.npz")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "m.npz").stat().st_mode) == 0o666 & ~umask
    os.chmod(tmp_path / "m.npz", 0o640)
    save_model(_model(), tmp_path / "m.npz")
    assert stat.S_IMODE((tmp_path / "m.npz").stat().st_mode) == 0o640


def test_colour_model_round_trip(tmp_path: Path) -> None:
    base = _model()
    colour = base.replace(m=np.random.default_rng(1).uniform(0, 1, (5, 3)))
    save_model(colour, tmp_path / "c.npz", Params(channels="rgb"))
    back = load_model(tmp_path / "c.npz")
    np.testing.assert_array_equal(back.m, colour.m)
    assert back.n_channels == 3
    assert read_model_params(tmp_path / "c.npz") == Params(channels="rgb")


def _write_version_1(path: Path, model: SmoeModel, m: np.ndarray | None = None) -> None:
    """A model file in the layout of format version 1 (the first release), written
    without the current writer: gray experts, params without the newer keys."""
    old_params = {k: v for k, v in Params().to_dict().items()
                  if k not in ("channels", "experts", "expert_stop")}
    import json

    np.savez_compressed(
        path, mu=model.mu, A=model.A, m=model.m if m is None else m, log_alpha=model.log_alpha,
        height=np.int64(model.height), width=np.int64(model.width),
        format_version=np.int64(1), params=np.array(json.dumps(old_params)),
    )


def test_version_1_files_still_load(tmp_path: Path) -> None:
    model = _model()
    _write_version_1(tmp_path / "old.npz", model)
    back = load_model(tmp_path / "old.npz")
    np.testing.assert_array_equal(back.m, model.m)
    assert back.n_channels == 1 and not back.is_colour
    assert read_model_params(tmp_path / "old.npz") == Params()
    # version 1 never held colour experts: such a file is damaged
    _write_version_1(tmp_path / "bad.npz", model, m=np.zeros((5, 3)))
    with pytest.raises(ValueError, match="version 1"):
        load_model(tmp_path / "bad.npz")
