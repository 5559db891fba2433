"""Load a module of ``tests/`` by file name, so a benchmark runs the same code
as its test with more cases (the tests folder is not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_test_module(name: str, filename: str) -> ModuleType:
    """Import ``tests/<filename>`` as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
