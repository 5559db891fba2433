"""Render ``resources/icons/smoe-gui.svg`` to the PNG sizes a desktop wants.

Usage::

    .venv/bin/python packaging/make_icons.py          # writes resources/icons/smoe-gui-<N>.png
    .venv/bin/python packaging/make_icons.py --check  # exit 1 if a PNG is missing or stale

Rendering uses Qt's own SVG renderer (``PySide6.QtSvg``, part of
PySide6-Essentials), offscreen, so no cairo or Inkscape is needed.  The PNGs
are committed; run this again after editing the SVG.  ``smoe-gui.ico``
(Windows) and ``smoe-gui.icns`` (macOS) are written from the same renders.
"""

from __future__ import annotations

import argparse
import io
import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from smoe_gui.core.io.fileio import write_bytes  # noqa: E402

ICON_DIR = ROOT / "resources" / "icons"
SVG = ICON_DIR / "smoe-gui.svg"
#: Square PNG sizes in pixels (freedesktop hicolor sizes).
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
#: Sizes packed into the Windows .ico (the format stores at most 256).
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
#: macOS .icns chunk types by size.
ICNS_TYPES = {16: b"icp4", 32: b"icp5", 64: b"icp6", 128: b"ic07", 256: b"ic08", 512: b"ic09"}


def png_name(size: int) -> str:
    """File name of the PNG of side ``size`` px."""
    return f"smoe-gui-{size}.png"


def render_png(svg: Path, size: int) -> bytes:
    """Render ``svg`` to a ``size`` x ``size`` RGBA PNG and return its bytes.

    Raises
    ------
    ValueError
        If Qt cannot parse the SVG.
    """
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])  # noqa: F841
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg}: Qt cannot parse this SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.convertToFormat(QImage.Format.Format_ARGB32).save(buffer, "PNG"):
        raise ValueError(f"cannot encode the {size}px icon as PNG")
    buffer.close()
    return bytes(data.data())


def build_ico(pngs: dict[int, bytes]) -> bytes:
    """A Windows ``.ico`` holding the given PNG renders (PNG-compressed entries)."""
    sizes = [s for s in ICO_SIZES if s in pngs]
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = 6 + 16 * len(sizes)
    entries, blobs = b"", b""
    for s in sizes:
        blob = pngs[s]
        dim = 0 if s >= 256 else s  # 0 means 256 in the ICO directory
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(blob), offset)
        offset += len(blob)
        blobs += blob
    return header + entries + blobs


def build_icns(pngs: dict[int, bytes]) -> bytes:
    """A macOS ``.icns`` holding the given PNG renders."""
    chunks = b""
    for size, kind in ICNS_TYPES.items():
        if size in pngs:
            chunks += kind + struct.pack(">I", 8 + len(pngs[size])) + pngs[size]
    return b"icns" + struct.pack(">I", 8 + len(chunks)) + chunks


#: Largest per-channel difference (0-255) between a committed PNG and a fresh
#: render that still counts as current (Qt versions anti-alias slightly differently).
PIXEL_TOLERANCE = 8


def _same_icon(path: Path, blob: bytes) -> bool:
    """Whether the file at ``path`` matches the fresh render ``blob``.

    PNGs are compared pixel by pixel within :data:`PIXEL_TOLERANCE`; the
    ``.ico``/``.icns`` containers only by the PNGs they hold (their count), since
    their bytes follow the renders.
    """
    import numpy as np
    from PIL import Image

    old = path.read_bytes()
    if path.suffix == ".png":
        with Image.open(io.BytesIO(old)) as a, Image.open(io.BytesIO(blob)) as b:
            if a.size != b.size:
                return False
            pixels_a = np.asarray(a.convert("RGBA"), np.int16)
            diff = np.abs(pixels_a - np.asarray(b.convert("RGBA"), np.int16))
        return int(diff.max()) <= PIXEL_TOLERANCE
    return old.count(b"\x89PNG") == blob.count(b"\x89PNG")


def expected_files() -> dict[Path, bytes]:
    """Every file this script writes, with its content."""
    pngs = {s: render_png(SVG, s) for s in SIZES}
    files = {ICON_DIR / png_name(s): blob for s, blob in pngs.items()}
    files[ICON_DIR / "smoe-gui.ico"] = build_ico(pngs)
    files[ICON_DIR / "smoe-gui.icns"] = build_icns(pngs)
    return files


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) the icon files; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the files are current")
    args = parser.parse_args(argv)
    files = expected_files()
    if args.check:
        stale = [p for p, blob in files.items() if not p.exists() or not _same_icon(p, blob)]
        for p in stale:
            print(f"stale or missing: {p.relative_to(ROOT)}")
        return 1 if stale else 0
    for path, blob in files.items():
        write_bytes(path, blob)
        print(f"wrote {path.relative_to(ROOT)} ({len(blob)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
