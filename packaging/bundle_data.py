"""What the PyInstaller bundle ships besides code: one list for the spec and the tests.

The destinations mirror the repository's ``resources/`` folder, so that
:func:`smoe_gui.resources.resource_path` finds the same files under
``sys._MEIPASS/resources`` in the bundle as under ``resources/`` in a checkout.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Sample images that may ship (Kodak; see resources/samples/README.md).
SAMPLES = ("parrots.png", "flowers.png")
#: Application id of the AppStream metainfo.
APP_ID = "io.github.smoe_gui.smoe_gui"


def bundle_datas(root: Path = ROOT) -> list[tuple[str, str]]:
    """``(source file, destination folder in the bundle)`` pairs for the spec's ``datas``.

    Parameters
    ----------
    root : Path
        The repository root.

    Returns
    -------
    list of (str, str)
        Absolute source paths and bundle-relative destination folders.
    """
    res = root / "resources"
    pairs = [(res / "samples" / name, "resources/samples") for name in SAMPLES]
    pairs.append((res / "samples" / "README.md", "resources/samples"))
    pairs.append((res / "smoe-gui.desktop", "resources"))
    pairs.append((root / "packaging" / f"{APP_ID}.metainfo.xml", "resources"))
    pairs += [
        (p, "resources/icons") for p in sorted((res / "icons").glob("smoe-gui*")) if p.is_file()
    ]
    return [(str(src), dest) for src, dest in pairs]
