"""benchmarks/_images.py: --images, else ../shared/images next to the checkout, else the samples."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _images import (  # noqa: E402
    SAMPLE_IMAGES,
    SHARED_IMAGES,
    find_images,
    missing,
    texture_image,
)


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n")
    return path


def test_default_folders_are_relative_to_the_checkout() -> None:
    assert SHARED_IMAGES == ROOT.parent / "shared" / "images"
    assert SAMPLE_IMAGES == ROOT / "resources" / "samples"


def test_fresh_clone_without_shared_falls_back_to_the_samples(tmp_path: Path) -> None:
    # a checkout with no ../shared next to it: copy the module into one and ask it there
    clone = tmp_path / "clone"
    (clone / "benchmarks").mkdir(parents=True)
    shutil.copy(ROOT / "benchmarks" / "_images.py", clone / "benchmarks" / "_images.py")
    for name in ("parrots.png", "flowers.png"):
        shutil.copy(SAMPLE_IMAGES / name, _touch(clone / "resources" / "samples" / name))
    code = (
        "import sys; sys.path.insert(0, 'benchmarks'); from _images import find_images;"
        "print('\\n'.join(str(p) for p in find_images(['peppers', 'parrots', 'flowers'])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=clone, capture_output=True, text=True, check=True
    )
    found = [Path(line) for line in out.stdout.split()]
    assert found == [
        clone / "resources" / "samples" / "parrots.png",
        clone / "resources" / "samples" / "flowers.png",
    ]

    # with ../shared/images next to the checkout, its images come first
    shared = _touch(tmp_path / "shared" / "images" / "peppers.png")
    _touch(tmp_path / "shared" / "images" / "parrots.png")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=clone, capture_output=True, text=True, check=True
    )
    found = [Path(line) for line in out.stdout.split()]
    assert found == [
        shared,
        tmp_path / "shared" / "images" / "parrots.png",
        clone / "resources" / "samples" / "flowers.png",
    ]


def test_each_name_is_looked_up_folder_by_folder(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    a = _touch(first / "peppers.png")
    b = _touch(second / "peppers.jpg")
    c = _touch(second / "barbara.tif")
    assert find_images(["peppers", "barbara", "nowhere"], folders=[first, second]) == [a, c]
    assert find_images(["peppers"], folders=[tmp_path / "absent", second]) == [b]
    assert missing(["peppers", "barbara", "nowhere"], [a, c]) == ["nowhere"]
    # without names: every image of the first folder that has any
    assert find_images(None, folders=[tmp_path / "absent", second]) == [c, b]


def test_images_option_overrides_the_defaults(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    own = _touch(folder / "parrots.png")
    other = _touch(tmp_path / "kodim01.png")
    (folder / "notes.txt").write_text("not an image")
    assert find_images(["parrots", "peppers"], [folder]) == [
        own
    ]  # no fallback to shared or samples
    assert find_images(["parrots"], str(folder)) == [own]
    assert find_images(["parrots"], [other, folder]) == [other, own]  # a file is taken as it is
    assert find_images(None, [folder]) == [own]
    with pytest.raises(ValueError, match="no such file or folder"):
        find_images(["parrots"], [tmp_path / "missing"])


def test_texture_image_prefers_the_kodak_foliage_then_the_samples(tmp_path: Path) -> None:
    kodak, shared, samples = tmp_path / "kodak", tmp_path / "shared", tmp_path / "samples"
    flowers = _touch(samples / "flowers.png")
    _touch(samples / "parrots.png")
    assert texture_image(folders=[kodak, shared, samples]) == flowers  # a fresh clone
    door = _touch(kodak / "kodim02.png")
    assert texture_image(folders=[kodak, shared, samples]) == door
    foliage = _touch(kodak / "kodim07.png")
    assert texture_image(folders=[kodak, shared, samples]) == foliage
    assert texture_image(folders=[tmp_path / "absent"]) is None
    own = _touch(tmp_path / "mine.png")
    assert texture_image(own, folders=[kodak]) == own  # an --images file is taken as it is
