"""A fifth method, defined here and nowhere else: registered (by ``register`` and by a
faked entry point of the ``smoe_gui.methods`` group), it is offered and works in
``smoe init --method``, ``smoe experiment --methods`` and the window, with no other edit."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smoe_gui.core import registry
from smoe_gui.core.io.fileio import write_png
from smoe_gui.core.methods.base import BaseMethod, Placement
from smoe_gui.core.methods.pipeline import STAGES_BY_METHOD, initialize
from smoe_gui.core.params import METHODS, Params, check_method

NAME = "toy"


def _toy_place(
    image: np.ndarray, params: Params, timings: dict[str, float], workers: int | None
) -> Placement:
    """``n_kernels`` round kernels (16 without a budget) on a regular lattice, row by row."""
    start = time.perf_counter()
    h, w = image.shape[:2]
    n = params.n_kernels or 16
    cols = math.ceil(math.sqrt(n * w / h))
    rows = math.ceil(n / cols)
    index = np.arange(n)
    mu = np.stack(
        [(index % cols + 0.5) * w / cols - 0.5, (index // cols + 0.5) * h / rows - 0.5], axis=1
    )
    sigma = 0.5 * max(w / cols, h / rows)
    A = np.repeat((np.eye(2) / sigma)[None], n, axis=0)
    timings["lattice"] = (time.perf_counter() - start) * 1000.0
    return Placement(mu.astype(np.float64), A, np.zeros(n), (f"{NAME}: {n} kernels",))


TOY = BaseMethod(
    name=NAME,
    label="toy lattice (a test method)",
    place=_toy_place,
    stages=("lattice", "experts"),
    no_stage_text={"edges": "toy: no edges", "segments": "toy: no segments", "reduced": "toy: -"},
    hue=200,
)


def _image(h: int = 40, w: int = 52) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 0.2 + 0.5 * xx / w
    img[(xx - 20) ** 2 + (yy - 18) ** 2 < 9**2] = 0.9
    return np.clip(img, 0, 1).astype(np.float32)


@pytest.fixture()
def toy() -> Iterator[BaseMethod]:
    registry.register(TOY)
    yield TOY
    registry.unregister(NAME)


def test_unknown_before_and_registered_after(toy: BaseMethod) -> None:
    assert METHODS[-1] == NAME and check_method(NAME) == NAME
    assert registry.get(NAME) is TOY and TOY in registry.all()
    assert STAGES_BY_METHOD[NAME] == ("lattice", "experts")
    init = initialize(_image(), Params(n_kernels=12, expert_iters=2), NAME)
    assert init.method == NAME and init.n_kernels == 12
    assert set(init.timings_ms) == {"lattice", "experts"} and init.notes == ("toy: 12 kernels",)
    assert init.edges.shape == (40, 52) and not init.edges.any() and len(init.reduced) == 0
    assert registry.get(NAME).plan(_image(), Params(), 30).n_kernels == 30
    registry.unregister(NAME)
    assert NAME not in METHODS
    with pytest.raises(ValueError, match="unknown method 'toy'; known methods: edge, grid"):
        initialize(_image(), None, NAME)
    registry.register(TOY)


def test_listing_the_methods_loads_no_method_code() -> None:
    """The names come from light modules: the CLI's choices cost no numba, torch or OpenCV."""
    code = (
        "import sys; from smoe_gui.core.params import METHODS; names = list(METHODS); "
        "heavy = [m for m in ('numba', 'torch', 'cv2', 'scipy') if m in sys.modules]; "
        "print(names, heavy); assert names[:4] == ['edge', 'grid', 's-smoe', 'as-smoe'], names; "
        "assert not heavy, heavy"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)}, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_register_refuses_what_is_not_a_method(toy: BaseMethod) -> None:
    with pytest.raises(ValueError, match="already registered"):
        registry.register(BaseMethod(name=NAME, label="another", place=_toy_place))
    with pytest.raises(TypeError, match="lacks"):
        registry.register(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="without commas"):
        registry.register(BaseMethod(name="a,b", label="x", place=_toy_place))
    with pytest.raises(ValueError, match="must end with 'experts'"):
        BaseMethod(name="late", label="x", place=_toy_place, stages=("lattice",))


class _EntryPoint:
    """What ``importlib.metadata.entry_points(group=...)`` yields, reduced to its use."""

    def __init__(self, name: str, value: str, target: Any) -> None:
        self.name, self.value, self._target = name, value, target

    def load(self) -> Any:
        if isinstance(self._target, Exception):
            raise self._target
        return self._target


def test_entry_point_plugins_load_once_and_broken_ones_warn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []

    def fake_entry_points() -> list[_EntryPoint]:
        seen.append(registry.ENTRY_POINT_GROUP)
        return [
            _EntryPoint("toy", "tests.test_method_plugin:TOY", TOY),
            _EntryPoint("broken", "nowhere:METHOD", ImportError("No module named 'nowhere'")),
            _EntryPoint("odd", "tests:object", object()),
        ]

    monkeypatch.setattr(registry, "_entry_points", fake_entry_points)
    monkeypatch.setitem(registry._loaded, "plugins", False)  # as on the first look-up
    try:
        with pytest.warns(RuntimeWarning) as warned:
            assert NAME in METHODS  # the first look-up loads the plug-ins
        texts = [str(w.message) for w in warned]
        assert any("'broken'" in t and "No module named 'nowhere'" in t for t in texts)
        assert any("'odd'" in t and "lacks" in t for t in texts)
        assert seen == ["smoe_gui.methods"]
        assert NAME in METHODS and seen == ["smoe_gui.methods"]  # loaded once
        init = initialize(_image(), Params(expert_iters=1), NAME)
        assert init.n_kernels == 16
    finally:
        registry.unregister(NAME)


def test_smoe_init_offers_and_runs_the_toy(toy: BaseMethod, tmp_path: Path) -> None:
    from smoe_gui.cli import build_parser, main

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    init_parser = sub.choices["init"]  # type: ignore[attr-defined]
    assert NAME in next(a for a in init_parser._actions if a.dest == "method").choices
    image = tmp_path / "disc.png"
    write_png(image, np.round(_image() * 255).astype(np.uint8))
    out = tmp_path / "out"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = main(["init", str(image), "--method", NAME, "--set", "n_kernels=20",
                       "--out", str(out)])
    assert status == 0
    text = buffer.getvalue()
    assert "method       toy" in text and "lattice" in text and "note         toy: 20" in text
    assert (out / "kernels.png").is_file() and (out / "reconstruction.png").is_file()
    from smoe_gui.core.io.modelio import load_model

    assert load_model(out / "model.npz").n_kernels == 20
    assert json.loads((out / "params.json").read_text(encoding="utf-8"))["n_kernels"] == 20


def test_smoe_experiment_runs_the_toy_beside_the_grid(toy: BaseMethod, tmp_path: Path) -> None:
    from smoe_gui.cli import main

    folder = tmp_path / "images"
    folder.mkdir()
    write_png(folder / "disc.png", np.round(_image() * 255).astype(np.uint8))
    fast = {"tile_size": 48, "tile_steps": 4, "max_steps": 6, "time_budget": 120,
            "expert_iters": 2, "background_spacing": 12, "patience": 50}
    out = tmp_path / "out"
    with contextlib.redirect_stdout(io.StringIO()):
        status = main(["experiment", str(folder), "--methods", f"{NAME},grid", "--budgets", "30",
                       *[f"--set={k}={v}" for k, v in fast.items()], "--out", str(out)])
    assert status == 0
    with (out / "results.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["method"] for r in rows) == ["grid", NAME]
    assert all(r["status"] == "ok" for r in rows), rows
    toy_row = next(r for r in rows if r["method"] == NAME)
    assert int(toy_row["init_kernels"]) == 30 and float(toy_row["psnr_db"]) > 10
    assert NAME in (out / "results.md").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- the window
def test_the_window_offers_the_toy_and_draws_it(toy: BaseMethod, qtbot, tmp_path: Path) -> None:
    pytest.importorskip("pytestqt")
    from PySide6.QtCore import QSettings

    from smoe_gui.ui import create_main_window
    from smoe_gui.ui.guide import guide_html
    from smoe_gui.ui.messages import RecordingMessenger

    path = tmp_path / "disc.png"
    write_png(path, np.round(_image(64, 80) * 255).astype(np.uint8))
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("params", Params(max_pts=20, expert_iters=2, n_kernels=24).to_json())
    window = create_main_window(path, settings=settings)
    window.messenger = RecordingMessenger()
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()

    def drawn() -> bool:
        return window.latest_request > 0 and (
            window.stages.views["edges"].shown_id == window.latest_request
        )

    qtbot.waitUntil(drawn, timeout=60_000)
    combo = window.panel.method_combo
    offered = [combo.itemData(i) for i in range(combo.count())]
    assert offered[-1] == NAME and combo.itemText(offered.index(NAME)) == TOY.label
    compare = window.compare_combo
    assert NAME in [compare.itemData(i) for i in range(compare.count())]
    window.panel.set_method(NAME)
    qtbot.waitUntil(lambda: drawn() and window.session.stage_result.init.method == NAME,
                    timeout=60_000)
    model = window.session.stage_result.snapshot.model
    assert model.n_kernels == 24
    kv = window.stages.views["kernels"]
    assert kv.point_count(NAME) == 24 and kv.point_count("trained") == 0
    assert window.stages.title_of("edges").endswith("toy: no edges")
    assert window.stages.title_of("reduced").endswith("toy: -")
    assert window.counts_label.text().startswith("toy: kernels 24 · init PSNR")
    assert "lattice" in window.times_label.text()
    legend = window.stages.legend_html()
    assert "toy" in legend and "pair link" not in legend and "edge pixel" not in legend
    window.actions_by_id["lecture"].trigger()
    assert window.lecture.active and window.lecture.method == NAME
    assert window.lecture.current().title == "1 Kernels"
    window.actions_by_id["lecture"].trigger()
    assert TOY.label in guide_html(window.theme if hasattr(window, "theme") else _theme(), NAME)
    window.close()


def _theme() -> Any:
    from smoe_gui.ui.theme import current_theme

    return current_theme()
