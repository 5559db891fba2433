"""File operations of the window: images, models, parameters, exports, recent files.

Every file dialog goes through :meth:`FileOps.ask_open_path`,
:meth:`FileOps.ask_save_path` and :meth:`FileOps.ask_folder` (tests replace
them) and starts in the last folder used (kept in QSettings), else the user's
Pictures folder, else the home folder.  Every message goes through the
window's messenger.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QSettings, QStandardPaths
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog, QMenu

from ..core.errors import one_line
from ..core.io.fileio import write_png, write_text
from ..core.io.image import IMAGE_SUFFIXES, MAX_SIDE, LoadedImage, is_image_file, read_image
from ..core.io.modelio import (
    image_digest,
    load_model,
    read_model_image_digest,
    read_model_params,
    save_model,
)
from ..core.params import Params
from .views.stage_views import STAGES
from .views.view_items import widget_rgb

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["EXPORT_SCALES", "IMAGE_FILTER", "MAX_RECENT", "FileOps", "default_folder", "qimage_rgb"]

#: The open dialog's filter: every suffix of :data:`smoe_gui.core.io.image.IMAGE_SUFFIXES`.
IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ");;All files (*)"
MAX_RECENT = 8


def image_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from the file's header (Pillow, nothing decoded), or
    None when it cannot be read (the loader then says why)."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            return int(opened.size[0]), int(opened.size[1])
    except Exception:  # any unreadable file: read_image gives the one-line reason
        return None


#: Pixels per image pixel offered for stage-view exports (2x and 4x: slides).
EXPORT_SCALES = (1, 2, 4)


def _keep_colour(loaded: LoadedImage) -> LoadedImage:
    """The window keeps a file's colours (the Gray/Colour switch then takes
    the luma or the RGB without reading it again); a file whose three
    channels are equal (a gray file) is kept as (H, W)."""
    img = loaded.image
    if (
        img.ndim == 3
        and np.array_equal(img[..., 0], img[..., 1])
        and np.array_equal(img[..., 1], img[..., 2])
    ):
        return dataclasses.replace(loaded, image=np.ascontiguousarray(img[..., 0]))
    return loaded


def qimage_rgb(image: QImage) -> NDArray[np.uint8]:
    """``(H, W, 3)`` uint8 RGB copy of ``image``."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h = rgb.width(), rgb.height()
    buf = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=rgb.sizeInBytes())
    return buf.reshape(h, rgb.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()


def default_folder() -> str:
    """The user's Pictures folder when it exists, else the home folder."""
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    if pictures and Path(pictures).is_dir():
        return pictures
    return str(Path.home())


class FileOps:
    """Opening and saving for ``window`` (its session, panel, views, messenger)."""

    def __init__(self, window: MainWindow, settings: QSettings) -> None:
        self.window = window
        self.settings = settings
        self.recent_menu: QMenu | None = None

    # ------------------------------------------------------------- dialogs (tests replace these)
    def ask_open_path(self, title: str, file_filter: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self.window, title, self.dialog_folder(), file_filter)
        return self._remember(path)

    def ask_save_path(self, title: str, default_name: str, file_filter: str) -> str | None:
        start = str(Path(self.dialog_folder()) / default_name)
        path, _ = QFileDialog.getSaveFileName(self.window, title, start, file_filter)
        return self._remember(path)

    def ask_folder(self, title: str) -> str | None:
        path = QFileDialog.getExistingDirectory(self.window, title, self.dialog_folder())
        if path:
            self.settings.setValue("last_folder", path)
        return path or None

    def dialog_folder(self) -> str:
        """Where dialogs start: the last folder used, else Pictures, else home."""
        last = self.settings.value("last_folder")
        if last and Path(str(last)).is_dir():
            return str(last)
        return default_folder()

    def _remember(self, path: str) -> str | None:
        if not path:
            return None
        self.settings.setValue("last_folder", str(Path(path).parent))
        return path

    # ------------------------------------------------------------------ recent files
    def recent_files(self) -> list[str]:
        """Recently opened images, newest first."""
        value = self.settings.value("recent_files", [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            return []
        return [str(v) for v in value][:MAX_RECENT]

    def add_recent(self, path: Path) -> None:
        text = str(path.resolve())
        files = [text] + [p for p in self.recent_files() if p != text]
        self.settings.setValue("recent_files", files[:MAX_RECENT])
        self.rebuild_recent_menu()

    def remove_recent(self, path: str) -> None:
        self.settings.setValue("recent_files", [p for p in self.recent_files() if p != path])
        self.rebuild_recent_menu()

    def rebuild_recent_menu(self) -> None:
        menu = self.recent_menu
        if menu is None:
            return
        menu.clear()
        files = self.recent_files()
        for path in files:
            action = menu.addAction(path)
            action.triggered.connect(lambda _c=False, p=path: self.open_recent(p))
        menu.setEnabled(bool(files))

    def open_recent(self, path: str) -> None:
        if not Path(path).is_file():
            self.window.messenger.error(
                "Cannot open image", f"{path}: no such file (removed from the recent files)"
            )
            self.remove_recent(path)
            return
        self.open_image(path)

    # ------------------------------------------------------------------ images
    def open_image_dialog(self) -> None:
        path = self.ask_open_path("Open image", IMAGE_FILTER)
        if path:
            self.open_image(path)

    def load(self, path: Path) -> LoadedImage | None:
        """Read ``path`` for the window: an image larger than
        :data:`~smoe_gui.core.io.image.MAX_SIDE` on a side is offered downscaled
        to it (the CLI's ``--max-size`` rule); None when the user declines.

        Raises
        ------
        ValueError
            One line, for a file that cannot be read as an image.
        """
        size = image_size(path)
        if size is not None and max(size) > MAX_SIDE:
            w, h = size
            if not self.window.messenger.ask(
                "Large image",
                f"{path.name} is {w}×{h} px; the window works on images of at most {MAX_SIDE} px "
                f"a side.\nOpen it downscaled so that its longer side is {MAX_SIDE} px (what "
                f"`smoe fit --max-size {MAX_SIDE}` does)?",
            ):
                return None
            return _keep_colour(read_image(path, max_size=MAX_SIDE, channels="rgb"))
        return _keep_colour(read_image(path, channels="rgb"))

    def _show(self, loaded: LoadedImage, path: Path) -> None:
        # what was done to the values (a range stretched, a downscale) is shown
        # with the stages' notes once they are drawn
        self.window.set_image(
            loaded.image, path, tuple(f"{path.name}: {m}" for m in loaded.messages)
        )

    def open_image(self, path: str | os.PathLike[str]) -> bool:
        """Load ``path`` and recompute every stage; on failure say why and keep
        the current image and results.  Returns whether it opened."""
        p = Path(path)
        try:
            loaded = self.load(p)
        except ValueError as exc:
            self.window.messenger.error("Cannot open image", one_line(exc))
            return False
        if loaded is None:
            return False
        self._show(loaded, p)
        self.add_recent(p)
        return True

    def open_dropped(self, paths: list[str]) -> None:
        """Open what was dropped: the first image (folders are searched), or a
        model (.npz) or parameter file (.json); say what was ignored."""
        messenger = self.window.messenger
        files: list[Path] = []
        notes: list[str] = []
        for text in paths:
            p = Path(text)
            if p.is_dir():
                inside = sorted(q for q in p.iterdir() if is_image_file(q))
                if not inside:
                    notes.append(f"{p}: folder without images")
                files.extend(inside)
            else:
                files.append(p)
        if not files:
            messenger.error("Nothing to open", "\n".join(notes) or "Nothing usable was dropped.")
            return
        opened: Path | None = None
        for p in files:
            if opened is not None:
                notes.append(f"{p.name}: ignored (one file at a time)")
                continue
            suffix = p.suffix.lower()
            if suffix == ".npz":
                if self.load_model_file(p):
                    opened = p
                continue
            if suffix == ".json":
                if self.load_params_file(p):
                    opened = p
                continue
            try:
                loaded = self.load(p)
            except ValueError as exc:
                notes.append(one_line(exc))
                continue
            if loaded is None:
                notes.append(f"{p.name}: not opened (too large, not downscaled)")
                continue
            self._show(loaded, p)
            self.add_recent(p)
            opened = p
        if opened is None:
            messenger.error(
                "Cannot open what was dropped",
                "None of the dropped files could be opened:\n" + "\n".join(notes),
            )
        elif len(files) > 1 or notes:
            messenger.info("Dropped several files", f"Opened {opened.name}.\n" + "\n".join(notes))

    # ------------------------------------------------------------------ models and parameters
    def _no_image(self, what: str) -> bool:
        """Say (before any file dialog) that ``what`` needs an image; True when none is open."""
        if self.window.session.image is not None:
            return False
        self.window.messenger.warning(f"Nothing to {what}", f"Open an image first: {what} needs "
                                      "one (File → Open image or Samples).")
        return True

    def save_model_dialog(self) -> None:
        if self._no_image("save"):
            return
        path = self.ask_save_path("Save model", "model.npz", "SMoE model (*.npz)")
        if path:
            self.save_model_file(path)

    def save_model_file(self, path: str | os.PathLike[str]) -> bool:
        window = self.window
        model = window.session.model_to_save()
        if model is None:
            window.messenger.warning(
                "Nothing to save", "There is no model yet: open an image first."
            )
            return False
        try:
            save_model(model, path, params=window.panel.params(),
                       image=window.session.source_image)
        except (ValueError, OSError) as exc:
            window.messenger.error("Cannot save model", one_line(exc))
            return False
        window.show_status(f"saved {model.n_kernels} kernels to {path}", 5000)
        return True

    def load_model_dialog(self) -> None:
        path = self.ask_open_path("Load model", "SMoE model (*.npz);;All files (*)")
        if path:
            self.load_model_file(path)

    def load_model_file(self, path: str | os.PathLike[str]) -> bool:
        """Show a saved model over the current image (sizes must match)."""
        window = self.window
        try:
            model = load_model(path)
        except ValueError as exc:
            window.messenger.error("Cannot load model", one_line(exc))
            return False
        try:
            window.session.check_model_fits(model, Path(path).name)
        except ValueError as exc:
            title = (
                "Cannot load model"
                if window.session.image is None
                else "Model does not fit the image"
            )
            window.messenger.error(title, one_line(exc))
            return False
        try:
            stored = read_model_params(path)
        except ValueError as exc:
            stored = None
            window.show_status(f"ignoring the stored parameters: {one_line(exc)}", 6000)
        note = self._digest_note(path)
        window.session.show_model(model)
        if stored is not None and stored != window.panel.params():
            window.panel.set_params(stored, emit=False)
            window.session.set_params(stored, window.panel.method(), affects_stages=False)
            window.recompute()
        window.show_status(f"loaded {model.n_kernels} kernels from {path}{note}", 10_000)
        return True

    def _digest_note(self, path: str | os.PathLike[str]) -> str:
        """Check the image fingerprint stored with a model against the open
        image: a warning when they differ, a status note when none is stored."""
        window = self.window
        try:
            stored = read_model_image_digest(path)
        except ValueError as exc:
            return f" (its image fingerprint is unreadable: {one_line(exc)})"
        source = window.session.source_image
        if stored is None or source is None:
            return " (no image fingerprint stored: not checked against this image)"
        if stored != image_digest(source):
            h, w = source.shape[:2]
            window.messenger.warning(
                "Model of another image",
                f"{Path(path).name} was made for another image of the same size ({w}×{h}): "
                "it is shown over this one, but its reconstruction will not match it.",
            )
            return " (made for another image of this size)"
        return " (made for this image)"

    def save_params_dialog(self) -> None:
        path = self.ask_save_path("Save parameters", "params.json", "Parameters (*.json)")
        if path:
            self.save_params_file(path)

    def save_params_file(self, path: str | os.PathLike[str]) -> bool:
        try:
            write_text(path, self.window.panel.params().to_json())
        except (ValueError, OSError) as exc:
            self.window.messenger.error("Cannot save parameters", one_line(exc))
            return False
        self.window.show_status(f"saved parameters to {path}", 5000)
        return True

    def load_params_dialog(self) -> None:
        path = self.ask_open_path("Load parameters", "Parameters (*.json);;All files (*)")
        if path:
            self.load_params_file(path)

    def load_params_file(self, path: str | os.PathLike[str]) -> bool:
        try:
            params = Params.from_json(Path(path))
        except ValueError as exc:
            self.window.messenger.error("Cannot load parameters", one_line(exc))
            return False
        self.window.panel.set_params(params, emit=True)
        return True

    # ------------------------------------------------------------------ exports
    def _write_png(self, path: str | os.PathLike[str], rgb: NDArray[Any]) -> bool:
        try:
            write_png(path, rgb)
        except (ValueError, OSError) as exc:
            self.window.messenger.error("Cannot export", one_line(exc))
            return False
        return True

    @property
    def export_scale(self) -> int:
        """Pixels per image pixel of stage-view exports: 1, 2 or 4 (kept in QSettings)."""
        try:
            value = int(str(self.settings.value("export_scale", 1)))
        except ValueError:
            return 1
        return value if value in EXPORT_SCALES else 1

    def set_export_scale(self, scale: int | str) -> None:
        value = int(scale)
        if value not in EXPORT_SCALES:
            raise ValueError(f"export scale must be one of {EXPORT_SCALES}, got {scale!r}")
        self.settings.setValue("export_scale", value)

    def stage_image(self, name: str, scale: int | None = None) -> NDArray[np.uint8]:
        """Stage view ``name`` as an RGB image, ``(scale·H, scale·W, 3)`` uint8:
        the image's area only, at its resolution times ``scale`` (default
        :attr:`export_scale`), overlays included, the hover text never."""
        return self.window.stages.export_rgb(name, self.export_scale if scale is None else scale)

    def export_stage(
        self, name: str, path: str | os.PathLike[str], scale: int | None = None
    ) -> bool:
        """Write stage view ``name`` to a PNG (see :meth:`stage_image`): the
        whole image whatever the zoom, every edge pixel, the overlays, never
        the hover label (:meth:`StageViews.export_rgb`)."""
        try:
            rgb = self.stage_image(name, scale)
        except ValueError as exc:
            self.window.messenger.warning("Nothing to export", one_line(exc))
            return False
        return self._write_png(path, rgb)

    def export_stage_dialog(self, name: str) -> None:
        if self._no_image("export"):
            return
        path = self.ask_save_path(
            f"Export stage view '{name}'", f"stage-{name}.png", "PNG image (*.png)"
        )
        if path:
            self.export_stage(name, path)

    def export_all_stages(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write every stage view to ``folder/stage-<name>.png``."""
        written = []
        for name in STAGES:
            target = Path(folder) / f"stage-{name}.png"
            if not self.export_stage(name, target):
                break
            written.append(target)
        return written

    def export_all_stages_dialog(self) -> None:
        if self._no_image("export"):
            return
        folder = self.ask_folder("Export all stage views to")
        if folder:
            written = self.export_all_stages(folder)
            self.window.show_status(f"wrote {len(written)} PNG files to {folder}", 5000)

    def export_reconstruction(self, path: str | os.PathLike[str]) -> bool:
        recon = self.window.stages.reconstruction()
        if recon is None:
            self.window.messenger.warning("Nothing to export", "There is no reconstruction yet.")
            return False
        return self._write_png(path, recon)

    def export_reconstruction_dialog(self) -> None:
        if self._no_image("export"):
            return
        path = self.ask_save_path(
            "Export reconstruction", "reconstruction.png", "PNG image (*.png)"
        )
        if path:
            self.export_reconstruction(path)

    def export_psnr_png(self, path: str | os.PathLike[str]) -> bool:
        return self._write_png(path, widget_rgb(self.window.plots.psnr_plot))

    def export_psnr_png_dialog(self) -> None:
        path = self.ask_save_path("Export PSNR curve", "psnr.png", "PNG image (*.png)")
        if path:
            self.export_psnr_png(path)

    def export_psnr_csv(self, path: str | os.PathLike[str]) -> bool:
        try:
            write_text(path, self.window.plots.csv_text())
        except (ValueError, OSError) as exc:
            self.window.messenger.error("Cannot export", one_line(exc))
            return False
        return True

    def export_psnr_csv_dialog(self) -> None:
        path = self.ask_save_path("Export PSNR curve", "psnr.csv", "CSV (*.csv)")
        if path:
            self.export_psnr_csv(path)
