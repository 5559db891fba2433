"""Where the bundled files are: sample images and the icon.

Looked up in this order: next to the package (an installed wheel that ships
``smoe_gui/resources``), the repository root (a source checkout:
``Path(smoe_gui.__file__).parents[1] / "resources"``), a PyInstaller bundle
(``sys._MEIPASS/resources``) and ``<prefix>/share/smoe-gui``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import smoe_gui

__all__ = ["DEFAULT_SAMPLE", "default_sample", "icon_path", "resource_dirs", "sample_paths"]

#: The sample opened when no image is given.
DEFAULT_SAMPLE = "parrots.png"


def resource_dirs() -> list[Path]:
    """Existing candidate ``resources`` folders, most specific first."""
    package = Path(smoe_gui.__file__).resolve().parent
    candidates = [package / "resources", package.parent / "resources"]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.append(Path(bundle) / "resources")
    candidates.append(Path(sys.prefix) / "share" / "smoe-gui")
    return [c for c in candidates if c.is_dir()]


def sample_paths() -> list[Path]:
    """The bundled sample images (``samples/*.png``), sorted by name, first
    folder that has any."""
    for folder in resource_dirs():
        found = sorted((folder / "samples").glob("*.png"))
        if found:
            return found
    return []


def default_sample() -> Path | None:
    """The sample opened at start-up, or None when no sample is installed."""
    samples = sample_paths()
    for p in samples:
        if p.name == DEFAULT_SAMPLE:
            return p
    return samples[0] if samples else None


def icon_path() -> Path | None:
    """The application icon (SVG or PNG), or None."""
    for folder in resource_dirs():
        for name in ("icons/smoe-gui.svg", "icons/smoe-gui-256.png"):
            if (folder / name).is_file():
                return folder / name
    return None
