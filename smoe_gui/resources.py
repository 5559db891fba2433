"""Find the files shipped with smoe-gui: sample images, icons, the desktop file.

The same code works from a source checkout (editable install), where the files
live in ``resources/`` beside the ``smoe_gui`` package, and from a PyInstaller
bundle, where the spec copies them to ``resources/`` under ``sys._MEIPASS``.
The environment variable ``SMOE_GUI_RESOURCES`` overrides both (a folder with
the same layout), for distributions that install the data elsewhere.

This module imports neither Qt nor numpy at import time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["resource_root", "resource_path", "sample_images"]

#: Name of the environment variable that points at another resource folder.
ENV_VAR = "SMOE_GUI_RESOURCES"


def _candidates() -> list[Path]:
    """Resource folders to try, best first."""
    found: list[Path] = []
    override = os.environ.get(ENV_VAR)
    if override:
        found.append(Path(override))
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        found.append(Path(bundle) / "resources")
    # source checkout / editable install: <repo>/smoe_gui/resources.py -> <repo>/resources
    found.append(Path(__file__).resolve().parents[1] / "resources")
    return found


def resource_root() -> Path:
    """The folder that holds the shipped resources.

    Returns
    -------
    Path
        The first existing folder among ``$SMOE_GUI_RESOURCES``,
        ``sys._MEIPASS/resources`` (PyInstaller bundle) and ``resources/``
        beside the package (source checkout).

    Raises
    ------
    ValueError
        If none of them exists (a broken installation); the message lists
        the places looked at.
    """
    candidates = _candidates()
    for folder in candidates:
        if folder.is_dir():
            return folder
    tried = ", ".join(str(c) for c in candidates)
    raise ValueError(f"smoe-gui resources not found (looked in: {tried}); set {ENV_VAR}")


def resource_path(*parts: str) -> Path:
    """Path of a shipped resource, e.g. ``resource_path("icons", "smoe-gui.svg")``.

    Parameters
    ----------
    *parts : str
        Path components relative to the resource folder.

    Returns
    -------
    Path
        The path (it is not checked that the file exists; use ``.exists()``).

    Raises
    ------
    ValueError
        If a component is absolute or climbs out of the resource folder with
        ``..``, or if the resource folder cannot be found.
    """
    for part in parts:
        if Path(part).is_absolute() or ".." in Path(part).parts:
            raise ValueError(f"resource path component {part!r} must be relative, without '..'")
    return resource_root().joinpath(*parts)


def sample_images() -> list[Path]:
    """The bundled sample images, sorted by file name.

    Returns
    -------
    list of Path
        Image files in ``resources/samples`` (empty if that folder is missing).
    """
    from .core.io.image import IMAGE_SUFFIXES

    try:
        folder = resource_path("samples")
    except ValueError:
        return []
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
