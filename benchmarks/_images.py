"""Where the benchmarks find their images: one rule for every script.

``find_images(names, option_value)``:

1. ``option_value`` (a benchmark's ``--images``): files and folders; a file is
   taken as it is, a folder is searched for the wanted names (or, without
   names, for every image in it);
2. else ``../shared/images`` relative to the checkout (the paper's test
   images, which may not be redistributed);
3. else the bundled samples in ``resources/samples``.

A name is a file stem (``"peppers"``); it is looked up in each default folder
in turn, so a fresh clone without ``../shared`` gets the bundled samples
(parrots, flowers) and skips the others.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from smoe_gui.core.io.image import IMAGE_SUFFIXES

ROOT = Path(__file__).resolve().parents[1]
#: The paper's test images, next to the checkout.
SHARED_IMAGES = ROOT.parent / "shared" / "images"
#: The bundled samples.
SAMPLE_IMAGES = ROOT / "resources" / "samples"
#: The paper's four test images (section IV).
PAPER_IMAGES = ("peppers", "barbara", "parrots", "flowers")
#: The Kodak photographs, in ``../shared/images/kodak``.
KODAK_IMAGES = SHARED_IMAGES / "kodak"
#: Texture-rich 768x512 images (foliage, many edges), in order of preference;
#: the bundled flowers when no Kodak image is at hand.
TEXTURE_IMAGES = ("kodim13", "kodim05", "kodim07", "kodim02", "flowers")
PathArg = str | os.PathLike[str]


def _in_folder(folder: Path, name: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _all_in_folder(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def find_images(
    names: Sequence[str] | None,
    option_value: PathArg | Iterable[PathArg] | None = None,
    *,
    folders: Sequence[Path] | None = None,
) -> list[Path]:
    """Image files for a benchmark, by the rule in the module docstring.

    Parameters
    ----------
    names : sequence of str or None
        Wanted file stems, in order; None or empty: every image of the first
        folder that has any.
    option_value : path, paths or None
        The ``--images`` option's value(s): files and folders.
    folders : sequence of Path, optional
        The default folders (default: ``../shared/images``, then
        ``resources/samples``); tests pass their own.

    Returns
    -------
    list of Path
        The images found, in the order of ``names`` (names found nowhere are
        left out: compare with ``names`` to report them).

    Raises
    ------
    ValueError
        For an ``--images`` path that does not exist.
    """
    wanted = list(names or [])
    if option_value is not None:
        items = (
            [option_value] if isinstance(option_value, str | os.PathLike) else list(option_value)
        )
        given = [Path(p) for p in items]
        for path in given:
            if not path.exists():
                raise ValueError(f"{path}: no such file or folder")
        files = [p for p in given if p.is_file()]
        search = [p for p in given if p.is_dir()]
    else:
        files = []
        search = list(folders) if folders is not None else [SHARED_IMAGES, SAMPLE_IMAGES]
    search = [f for f in search if f.is_dir()]
    if not wanted:
        for folder in search:
            found = _all_in_folder(folder)
            if found:
                return files + found
        return files
    out = list(files)
    for name in wanted:
        if any(p.stem == name for p in out):
            continue
        for folder in search:
            path = _in_folder(folder, name)
            if path is not None:
                out.append(path)
                break
    return out


def texture_image(
    option_value: PathArg | Iterable[PathArg] | None = None,
    *,
    folders: Sequence[Path] | None = None,
) -> Path | None:
    """The first of :data:`TEXTURE_IMAGES` found, by the rule of :func:`find_images`.

    The default folders are ``../shared/images/kodak``, ``../shared/images``,
    then ``resources/samples`` (so a fresh clone gets the bundled flowers);
    ``option_value`` and ``folders`` are those of :func:`find_images`.  Returns
    None when none of them is found.
    """
    search = list(folders) if folders is not None else [KODAK_IMAGES, SHARED_IMAGES, SAMPLE_IMAGES]
    found = find_images(TEXTURE_IMAGES, option_value, folders=search)
    return found[0] if found else None


def missing(names: Sequence[str], found: Sequence[Path]) -> list[str]:
    """The names of ``names`` that ``found`` does not hold."""
    stems = {p.stem for p in found}
    return [n for n in names if n not in stems]
