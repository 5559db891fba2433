"""The core stays Qt-free and cheap to import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "smoe_gui" / "core"


def test_core_sources_do_not_import_qt() -> None:
    paths = sorted(CORE.rglob("*.py"))
    assert CORE / "experiment" / "run.py" in paths  # subpackages too
    for path in paths:
        text = path.read_text()
        for banned in ("PySide6", "pyqtgraph", "PyQt5", "PyQt6", "shiboken"):
            assert f"import {banned}" not in text and f"from {banned}" not in text, path


def test_importing_the_core_api_loads_no_qt() -> None:
    code = (
        "import sys\n"
        "import smoe_gui.core as c\n"
        "from smoe_gui.core import Params, SmoeModel, load_image, initialize, render, fit\n"
        "qt = ('PySide6', 'pyqtgraph', 'shiboken6')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in qt]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_public_name_is_shadowed_by_a_submodule() -> None:
    """Every submodule of ``smoe_gui.core`` imported, each public name is still the object.

    Importing ``smoe_gui.core.X`` sets the package attribute ``X`` to the module, so a
    public function named like a submodule would turn into a module once anything
    imported that submodule.
    """
    code = (
        "import importlib, pkgutil, types\n"
        "import smoe_gui.core as core\n"
        "names = [m.name for m in pkgutil.walk_packages(core.__path__, 'smoe_gui.core.')]\n"
        "assert len(names) > 10, names\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "bad = [n for n in core.__all__ if isinstance(getattr(core, n), types.ModuleType)]\n"
        "assert not bad, f'public names shadowed by submodules: {bad}'\n"
        "from smoe_gui.core import render, psnr\n"
        "assert callable(render) and callable(psnr)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_core_draws_no_terminal_output() -> None:
    """Progress bars and printed lines belong to the command line (``smoe_gui.cli``)."""
    for path in sorted(CORE.rglob("*.py")):
        text = path.read_text()
        for banned in ("\\x1b[", "sys.stderr", "sys.stdout", "print("):
            assert banned not in text, (path, banned)


#: The most lines a module of ``smoe_gui`` may have: a longer one holds several ideas.
MAX_MODULE_LINES = 800


def test_no_module_is_over_the_line_limit() -> None:
    package = CORE.parent
    long = {
        path.relative_to(package).as_posix(): n
        for path in sorted(package.rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_layer_contracts_hold() -> None:
    """The import-linter contracts of pyproject.toml, on the real import graph."""
    import shutil

    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    root = CORE.parents[1]
    done = subprocess.run([exe, "--no-cache"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "BROKEN" not in done.stdout and "KEPT" in done.stdout
