"""The bundled files the window uses: sample images and the icon.

A thin layer over :mod:`smoe_gui.resources`, which finds the resource folder
in a source checkout, a PyInstaller bundle or ``$SMOE_GUI_RESOURCES``.
"""

from __future__ import annotations

from pathlib import Path

from ..resources import resource_path, sample_images

__all__ = ["DEFAULT_SAMPLE", "default_sample", "icon_path", "sample_paths"]

#: The sample opened when no image is given.
DEFAULT_SAMPLE = "parrots.png"


def sample_paths() -> list[Path]:
    """The bundled sample images, sorted by name."""
    return sample_images()


def default_sample() -> Path | None:
    """The sample opened at start-up, or None when no sample is installed."""
    samples = sample_images()
    for p in samples:
        if p.name == DEFAULT_SAMPLE:
            return p
    return samples[0] if samples else None


def icon_path() -> Path | None:
    """The application icon (SVG, else a PNG), or None."""
    for parts in (("icons", "smoe-gui.svg"), ("icons", "smoe-gui-256.png")):
        try:
            path = resource_path(*parts)
        except ValueError:
            return None
        if path.is_file():
            return path
    return None
