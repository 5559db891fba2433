"""Packaging sanity: desktop file, AppStream metainfo, icons, samples, bundle data.

A desktop shows what these files say: a wrong ``Exec`` line, an icon name that
matches no file, or a sample image that may not ship are mistakes users see.
"""

from __future__ import annotations

import configparser
import hashlib
import importlib.util
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import smoe_gui
from smoe_gui import resources

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT / "resources"
DESKTOP = RES / "smoe-gui.desktop"
SHARED_IMAGES = ROOT.parent / "shared" / "images"


def _bundle_data():
    spec = importlib.util.spec_from_file_location(
        "bundle_data", ROOT / "packaging" / "bundle_data.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUNDLE = _bundle_data()
METAINFO = ROOT / "packaging" / f"{BUNDLE.APP_ID}.metainfo.xml"


def _desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(DESKTOP, encoding="utf-8")
    return parser["Desktop Entry"]


# --- desktop file ----------------------------------------------------------------


def test_desktop_file_launches_the_app_with_files() -> None:
    entry = _desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Exec"] == "smoe-gui %F"
    assert entry["Icon"] == "smoe-gui"
    assert entry["Terminal"] == "false"
    assert entry["Categories"].split(";")[:4] == ["Education", "Science", "Graphics", "Qt"]
    assert entry["Categories"].endswith(";")


def test_desktop_mime_types_are_images_pillow_reads() -> None:
    from PIL import Image

    Image.init()
    readable = set(Image.MIME.values())
    if "image/x-portable-anymap" in readable:  # Pillow's PPM plugin reads .pbm/.pgm/.ppm/.pnm
        readable |= {
            "image/x-portable-graymap",
            "image/x-portable-pixmap",
            "image/x-portable-bitmap",
        }
    mimes = [m for m in _desktop_entry()["MimeType"].split(";") if m]
    assert {"image/png", "image/jpeg", "image/tiff"} <= set(mimes)
    for mime in mimes:
        assert mime.startswith("image/")
        assert mime in readable, f"{mime} is offered but Pillow cannot read it"


def test_desktop_exec_matches_the_installed_gui_script() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    command = _desktop_entry()["Exec"].split()[0]
    assert project["gui-scripts"][command] == "smoe_gui.ui.app:main"
    assert project["optional-dependencies"]["bundle"], "make bundle needs the 'bundle' extra"


def test_app_accepts_the_files_the_desktop_passes(tmp_path: Path) -> None:
    """``%F`` may pass several files: the app starts (the first opens) or, for a
    missing file, says so in one line with status 2 instead of an argparse usage error."""
    from smoe_gui.ui.app import _parser, main

    assert "%F" in _desktop_entry()["Exec"]
    assert _parser().parse_args(["a.png", "b.png"]).image == ["a.png", "b.png"]
    assert main([str(tmp_path / "missing.png"), str(tmp_path / "other.png")]) == 2


@pytest.mark.skipif(
    shutil.which("desktop-file-validate") is None, reason="desktop-file-utils not installed"
)
def test_desktop_file_validates() -> None:
    result = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    errors = [ln for ln in result.stdout.splitlines() if "error:" in ln]
    assert result.returncode == 0 and not errors, result.stdout


# --- AppStream -----------------------------------------------------------------


def test_metainfo_matches_desktop_file_and_version() -> None:
    root = ET.parse(METAINFO).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == BUNDLE.APP_ID
    assert root.findtext("launchable") == DESKTOP.name
    assert root.findtext("icon") == _desktop_entry()["Icon"]
    assert root.findtext("project_license") == "MIT"
    versions = [r.get("version") for r in root.iter("release")]
    assert versions and versions[0] == smoe_gui.__version__
    binaries = {b.text for b in root.iter("binary")}
    assert "smoe-gui" in binaries
    categories = [c.text for c in root.iter("category")]
    assert categories == _desktop_entry()["Categories"].split(";")[:3]


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstream not installed")
def test_metainfo_validates() -> None:
    result = subprocess.run(
        ["appstreamcli", "validate", "--no-net", str(METAINFO)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- icons ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [16, 24, 32, 48, 64, 128, 256, 512])
def test_png_icon_is_square_rgba_with_transparent_corners(size: int) -> None:
    from PIL import Image

    path = RES / "icons" / f"smoe-gui-{size}.png"
    with Image.open(path) as img:
        assert img.size == (size, size)
        assert img.mode == "RGBA"
        pixels = np.asarray(img)
    assert pixels[0, 0, 3] == 0 and pixels[-1, -1, 3] == 0  # rounded tile
    assert pixels[size // 2, size // 2, 3] == 255  # opaque centre
    assert pixels[..., :3].std() > 10  # a picture, not a flat square


def test_svg_icon_is_valid_and_pngs_are_current() -> None:
    root = ET.parse(RES / "icons" / "smoe-gui.svg").getroot()
    assert root.tag.endswith("svg") and root.get("viewBox") == "0 0 256 256"
    result = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "make_icons.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        "icons stale, run `make icons`:\n" + result.stdout + result.stderr
    )


def test_ico_and_icns_hold_the_renders() -> None:
    ico = (RES / "icons" / "smoe-gui.ico").read_bytes()
    assert ico[:4] == b"\0\0\1\0" and int.from_bytes(ico[4:6], "little") == 7
    icns = (RES / "icons" / "smoe-gui.icns").read_bytes()
    assert icns[:4] == b"icns" and int.from_bytes(icns[4:8], "big") == len(icns)


# --- samples ----------------------------------------------------------------------


def test_only_shippable_samples_are_bundled() -> None:
    names = sorted(p.name for p in resources.sample_images())
    assert names == sorted(BUNDLE.SAMPLES)
    for forbidden in ("peppers", "barbara"):
        assert not any(forbidden in p.name.lower() for p in RES.rglob("*"))
    if SHARED_IMAGES.is_dir():  # also by content, whatever the name
        shipped = {
            hashlib.sha256(p.read_bytes()).hexdigest() for p in RES.rglob("*") if p.is_file()
        }
        for forbidden in ("peppers.png", "barbara.png"):
            source = SHARED_IMAGES / forbidden
            if source.exists():
                assert hashlib.sha256(source.read_bytes()).hexdigest() not in shipped


def test_samples_load_and_are_documented() -> None:
    from smoe_gui.core.io.image import load_image

    readme = (RES / "samples" / "README.md").read_text(encoding="utf-8")
    for path in resources.sample_images():
        assert path.name in readme
        img = load_image(path)
        assert img.shape == (512, 768) and img.dtype == np.float32


# --- bundle data and the resource locator ------------------------------------------


def test_every_bundled_resource_exists_and_is_found_by_the_locator() -> None:
    datas = BUNDLE.bundle_datas(ROOT)
    assert len(datas) >= len(BUNDLE.SAMPLES) + 10
    for source, dest in datas:
        src = Path(source)
        assert src.is_file(), f"listed for the bundle but missing: {src}"
        assert dest.split("/")[0] == "resources"
    shipped = {Path(dest, Path(src).name).as_posix() for src, dest in datas}
    for needed in (
        "resources/smoe-gui.desktop",
        "resources/icons/smoe-gui.svg",
        "resources/icons/smoe-gui-256.png",
        *(f"resources/samples/{n}" for n in BUNDLE.SAMPLES),
    ):
        assert needed in shipped


def test_locator_finds_repo_resources() -> None:
    assert resources.resource_root() == RES
    assert resources.resource_path("icons", "smoe-gui.svg").is_file()
    assert resources.resource_path("smoe-gui.desktop") == DESKTOP


def test_locator_prefers_the_pyinstaller_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lay out resources as the spec does under a fake ``sys._MEIPASS``."""
    for source, dest in BUNDLE.bundle_datas(ROOT):
        target = tmp_path / dest
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    monkeypatch.delenv(resources.ENV_VAR, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.resource_root() == tmp_path / "resources"
    assert [p.name for p in resources.sample_images()] == sorted(BUNDLE.SAMPLES)
    assert all(p.parent == tmp_path / "resources" / "samples" for p in resources.sample_images())


def test_locator_env_override_and_bad_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "mine.png").write_bytes(b"")  # only listed, never decoded
    (tmp_path / "samples" / "notes.txt").write_bytes(b"")
    monkeypatch.setenv(resources.ENV_VAR, str(tmp_path))
    assert resources.resource_root() == tmp_path
    assert [p.name for p in resources.sample_images()] == ["mine.png"]
    with pytest.raises(ValueError, match="relative"):
        resources.resource_path("..", "secret")
    with pytest.raises(ValueError, match="relative"):
        resources.resource_path("/etc/passwd")


def test_locator_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(resources.ENV_VAR, str(tmp_path / "missing"))
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "gone"), raising=False)
    monkeypatch.setattr(resources, "__file__", str(tmp_path / "pkg" / "smoe_gui" / "resources.py"))
    with pytest.raises(ValueError, match="resources not found"):
        resources.resource_root()
    assert resources.sample_images() == []


def test_makefile_has_bundle_targets() -> None:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "\nbundle:" in text and "packaging/smoe-gui.spec" in text
    assert "\nbundle-test:" in text and "--self-test" in text
