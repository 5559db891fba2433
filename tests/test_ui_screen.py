"""The window fits a projector's screen: 1280x720 and 1366x768, at 100 %,
125 % and 150 % scaling (offscreen screens of those sizes, one process each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

ROOT = Path(__file__).resolve().parents[1]


#: Side by side: 1280x720, 1366x768, and 1280x720 at 125 % and 150 % (1024x576, 853x480 logical).
SCREENS = [
    {"name": "hd", "x": 0, "y": 0, "width": 1280, "height": 720, "logicalDpi": 96, "dpr": 1},
    {"name": "wxga", "x": 1280, "y": 0, "width": 1366, "height": 768, "logicalDpi": 96, "dpr": 1},
    {
        "name": "hd-125",
        "x": 2646,
        "y": 0,
        "width": 1280,
        "height": 720,
        "logicalDpi": 96,
        "dpr": 1.25,
    },
    {
        "name": "hd-150",
        "x": 3926,
        "y": 0,
        "width": 1280,
        "height": 720,
        "logicalDpi": 96,
        "dpr": 1.5,
    },
]


def test_window_views_and_buttons_lie_on_small_screens(tmp_path: Path) -> None:
    config = tmp_path / "screens.json"
    config.write_text(json.dumps({"screens": SCREENS}))
    env = dict(
        os.environ,
        QT_QPA_PLATFORM=f"offscreen:configfile={config}",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "_screen_check.py")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    assert out.returncode == 0 and lines and lines[-1] == "OK", out.stdout + out.stderr[-2000:]
