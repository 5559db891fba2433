"""Shared fixtures.  Qt runs offscreen; numba/torch use few threads."""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "resources" / "samples"


@pytest.fixture(scope="session")
def sample_path() -> Path:
    """A bundled sample image (Kodak parrots, 768x512)."""
    return SAMPLES / "parrots.png"


@pytest.fixture(scope="session")
def sample_image(sample_path: Path) -> np.ndarray:
    from smoe_gui.core import load_image

    return load_image(sample_path)


@pytest.fixture()
def synthetic_image() -> np.ndarray:
    """A 96x128 image with a bright disc, a dark bar and a smooth ramp."""
    h, w = 96, 128
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 0.2 + 0.3 * xx / w
    img[(xx - 40) ** 2 + (yy - 48) ** 2 < 20**2] = 0.9
    img[20:30, 70:120] = 0.05
    return img.astype(np.float32)


@pytest.fixture()
def disc_png(tmp_path: Path) -> Path:
    """A 96x128 8-bit PNG in ``tmp_path``: a bright disc on a smooth ramp (the
    window tests' small image: a few dozen kernels, stages in milliseconds)."""
    from smoe_gui.core.io.fileio import write_png

    yy, xx = np.mgrid[0:96, 0:128].astype(np.float32)
    img = 0.2 + 0.3 * xx / 128
    img[(xx - 40) ** 2 + (yy - 48) ** 2 < 20**2] = 0.9
    path = tmp_path / "disc.png"
    write_png(path, (img * 255).astype(np.uint8))
    return path


@pytest.fixture()
def no_qthread_left_running():
    """After the test, wait up to 5 s for the window's QThreads to end (their
    finished signals may still be queued), then fail if one is still running.
    Qt modules use it with ``pytestmark = pytest.mark.usefixtures(...)``."""
    yield
    from PySide6.QtWidgets import QApplication

    from smoe_gui.ui.workers import running_threads

    app = QApplication.instance()
    deadline = time.perf_counter() + 5.0
    while running_threads() and time.perf_counter() < deadline:
        if app is not None:
            app.processEvents()
        time.sleep(0.01)
    assert running_threads() == [], f"QThread left running: {running_threads()}"
