"""A video of a training run for slides: the reconstruction over the run,
optionally beside the kernel centres (the window's view 4) and the PSNR curve.

The frames come from the models a run kept
(:class:`~smoe_gui.core.train.snapshots.ModelHistory`, the ``snapshots`` of a
:class:`~smoe_gui.core.train.runs.FitResult`) and its PSNR history
(:class:`~smoe_gui.core.train.runs.FitHistory`); each is drawn by the core:
the reconstruction by the exact renderer
(:func:`smoe_gui.core.rendering.culled.render`) at the panel's size, the
kernel centres with OpenCV in the window's colours
(:mod:`smoe_gui.core.palette`), the PSNR curve with Pillow.
Nothing is grabbed from a screen.

The encoding is imageio's, through the ffmpeg binary that imageio-ffmpeg
bundles: MP4 as H.264 (yuv420p), GIF with one 256-colour palette made from
every frame (ffmpeg's ``palettegen`` / ``paletteuse``, no dithering: the gray
levels of a gray run are exact) and only the changed rectangle stored per
frame.  The frames are piped to the encoder's own process as they are drawn,
so the encoding neither holds this process's interpreter lock (a window's
event loop keeps its speed) nor keeps the frames in memory here.  Each file is
encoded into a temporary file beside the target, renamed onto it at the end
(:func:`smoe_gui.core.io.fileio.atomic_path`): a failure or a cancel leaves no
file.  Qt-free.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import show_path
from ..methods.drawing import text_font
from ..palette import LIGHT, rgb
from .runs import FitHistory
from .snapshots import ModelHistory, Snapshot

__all__ = [
    "PANELS",
    "VIDEO_SUFFIXES",
    "VideoCancelled",
    "VideoInfo",
    "check_video_path",
    "parse_panels",
    "prepare_export",
    "video_frames",
    "write_training_video",
]

#: Output kinds, by file suffix (lower case).
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".gif")
#: The panels a frame can show, left to right; the reconstruction is always there.
PANELS: tuple[str, ...] = ("reconstruction", "kernels", "psnr")
#: Panel titles drawn above each panel.
PANEL_TITLES: dict[str, str] = {
    "reconstruction": "reconstruction",
    "kernels": "kernel centres",
    "psnr": "PSNR (whole image)",
}
#: Largest panel height (px) of an MP4 and of a GIF (GIFs are kept small: the
#: encoder holds every frame until it has made the palette, and GIF files grow fast).
MAX_PANEL_HEIGHT = {".mp4": 720, ".gif": 360}
#: Largest frame width (px) of an MP4 and of a GIF.
MAX_FRAME_WIDTH = {".mp4": 1920, ".gif": 1200}
#: Most frames of a GIF (snapshots are taken evenly when there are more).
MAX_GIF_FRAMES = 120
#: Frame rate (frames per second) by default.
DEFAULT_FPS = 10.0
#: Frames of the last image held at the end of the video.
HOLD_LAST = 10

_MARGIN = 8
_TITLE_H = 28
_STATUS_H = 28


class VideoCancelled(Exception):
    """The video was cancelled (``cancelled()`` said so); no file was written."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`write_training_video` wrote.

    Attributes
    ----------
    path : Path
    n_frames : int
        Frames in the file (the snapshots, then the last one held).
    width, height : int
        Frame size in pixels.
    fps : float
    """

    path: Path
    n_frames: int
    width: int
    height: int
    fps: float

    @property
    def seconds(self) -> float:
        """Playing time (s)."""
        return self.n_frames / self.fps


def check_video_path(path: str | os.PathLike[str]) -> Path:
    """Check that ``path`` names a video that can be written: suffix ``.mp4``
    or ``.gif`` (any case), not a folder, in an existing, writable folder.

    Nothing is created.

    Raises
    ------
    ValueError
        One line naming the file and what is wrong.
    """
    from ..io.fileio import check_output_dir

    out = Path(path)
    shown = show_path(out)
    if out.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(
            f"{shown}: a training video must be .mp4 or .gif, not {out.suffix or 'no suffix'!r}"
        )
    if out.is_dir():
        raise ValueError(f"{shown}: is a folder")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"{shown}: folder {show_path(folder)} does not exist")
    check_output_dir(folder)
    return out


def prepare_export() -> None:
    """Import what the first export needs (imageio and its FFmpeg plugin,
    Pillow's drawing and FreeType) and load the fonts of the frames, so that
    a later export does none of it.  A C extension's first import holds the
    GIL: done on the export's own thread it stalled the window's event loop;
    the window runs this in its warm-up thread at start-up instead
    (:func:`smoe_gui.ui.control.jobs.warm_up_training`).  It also finds the
    FFmpeg binary (imageio-ffmpeg runs ``ffmpeg -version`` once per process);
    a missing one is reported by the export itself.
    """
    import imageio.v2  # noqa: F401 (imported for its side effect: loaded once)
    import imageio.v3  # noqa: F401
    import imageio_ffmpeg
    from imageio.plugins import ffmpeg, pillow  # noqa: F401
    from PIL import Image, ImageDraw  # noqa: F401

    try:
        imageio_ffmpeg.get_ffmpeg_exe()  # cached by imageio-ffmpeg
    except RuntimeError:  # no binary: the MP4 export says so in a dialog
        pass

    for size in range(12, 19):  # the PSNR panel's sizes, the titles' and the status line's
        text_font(size)


def parse_panels(text: str | Sequence[str]) -> tuple[str, ...]:
    """Panels from ``"reconstruction,kernels,psnr"`` (any order, any subset
    that has ``reconstruction``), in :data:`PANELS` order.

    Raises
    ------
    ValueError
        For an unknown panel or a list without ``reconstruction``.
    """
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text)]
    items = [t for t in items if t]
    unknown = [t for t in items if t not in PANELS]
    if unknown:
        raise ValueError(
            f"unknown video panel {unknown[0]!r}; expected a list of {', '.join(PANELS)}"
        )
    if "reconstruction" not in items:
        raise ValueError("the video panels must include reconstruction")
    return tuple(p for p in PANELS if p in items)


# --------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------
def _panel_size(height: int, width: int, n_panels: int, suffix: str) -> tuple[int, int]:
    """``(panel_h, panel_w)`` of one square-pixel panel of the image."""
    max_h = MAX_PANEL_HEIGHT[suffix]
    room = (MAX_FRAME_WIDTH[suffix] - _MARGIN * (n_panels + 1)) / n_panels
    scale = min(max_h / height, room / width, 2.0)
    return max(16, int(round(height * scale))), max(16, int(round(width * scale)))


def _to_u8(image: NDArray[Any]) -> NDArray[np.uint8]:
    arr = np.clip(np.nan_to_num(np.asarray(image, dtype=np.float64)), 0.0, 1.0)
    u8 = np.round(arr * 255.0).astype(np.uint8)
    if u8.ndim == 2:
        u8 = np.repeat(u8[:, :, None], 3, axis=2)
    return np.ascontiguousarray(u8)


def _resized(image: NDArray[Any], size: tuple[int, int]) -> NDArray[np.float32]:
    import cv2

    h, w = size
    arr = np.asarray(image, dtype=np.float32)
    return np.asarray(cv2.resize(arr, (w, h), interpolation=cv2.INTER_AREA), np.float32)


def _nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) within [low, high]."""
    span = max(high - low, 1e-9)
    raw = span / max(most - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


class _PsnrPlot:
    """The PSNR curve of the run with a moving cursor, drawn with Pillow: the
    axes, grid, ticks and the whole curve (faint) once, then per frame the
    curve up to the frame's time and a dot at its end.  (Pillow rather than
    matplotlib: no figure code to import on the export's thread, and a few
    milliseconds per frame.)"""

    def __init__(self, history: FitHistory | None, size: tuple[int, int]) -> None:
        from PIL import Image, ImageDraw

        h, w = size
        self.size = size
        whole = history.whole_image() if history is not None else FitHistory()
        a = whole.arrays()
        finite = np.isfinite(a["psnr_db"])
        self.t = a["elapsed_s"][finite]
        self.p = a["psnr_db"][finite]
        fs = max(12, min(18, h // 22))
        font = text_font(fs)
        self.left, self.right = int(3.6 * fs), w - fs
        self.top, self.bottom = int(1.8 * fs), h - int(3.0 * fs)
        t_end = max(float(self.t[-1]), 1e-3) if len(self.t) else 1.0
        lo, hi = (float(np.min(self.p)), float(np.max(self.p))) if len(self.p) else (0.0, 1.0)
        pad = max(0.5, 0.05 * (hi - lo))
        self.x_range = (0.0, t_end * 1.02)
        self.y_range = (lo - pad, hi + pad)
        fg = LIGHT.foreground
        grid = (225, 225, 225)
        self.colour = rgb("curve-train")
        faint = tuple(int(round(255 - 0.3 * (255 - c))) for c in self.colour)
        base = Image.new("RGB", (w, h), LIGHT.background)
        draw = ImageDraw.Draw(base)
        for value in _nice_ticks(*self.x_range):
            x = self._x(value)
            draw.line([(x, self.top), (x, self.bottom)], fill=grid)
            draw.text((x, self.bottom + fs // 3), f"{value:g}", fill=fg, font=font, anchor="mt")
        for value in _nice_ticks(*self.y_range):
            y = self._y(value)
            draw.line([(self.left, y), (self.right, y)], fill=grid)
            draw.text((self.left - fs // 3, y), f"{value:g}", fill=fg, font=font, anchor="rm")
        draw.rectangle([self.left, self.top, self.right, self.bottom], outline=fg)
        draw.text(((self.left + self.right) // 2, h - fs // 3), "training time (s)", fill=fg,
                  font=font, anchor="md")
        draw.text((self.left, self.top - fs // 3), "PSNR (dB)", fill=fg, font=font, anchor="ld")
        self.points = [(self._x(t), self._y(p)) for t, p in zip(self.t, self.p, strict=True)]
        if len(self.points) > 1:
            draw.line(self.points, fill=faint, width=2)
        self.base = base
        self.width = max(2, fs // 5)

    def _x(self, t: float) -> float:
        lo, hi = self.x_range
        return self.left + (self.right - self.left) * (t - lo) / (hi - lo)

    def _y(self, p: float) -> float:
        lo, hi = self.y_range
        return self.bottom - (self.bottom - self.top) * (p - lo) / (hi - lo)

    def frame(self, elapsed_s: float) -> NDArray[np.uint8]:
        from PIL import ImageDraw

        image = self.base.copy()
        n = int(np.searchsorted(self.t, elapsed_s, side="right"))
        if n:
            draw = ImageDraw.Draw(image)
            if n > 1:
                draw.line(self.points[:n], fill=self.colour, width=self.width, joint="curve")
            x, y = self.points[n - 1]
            r = 2 * self.width
            draw.ellipse([x - r, y - r, x + r, y + r], fill=self.colour)
        return np.asarray(image, dtype=np.uint8)


def _psnr_at(times: NDArray[np.float64], psnr: NDArray[np.float64], elapsed_s: float) -> float:
    """The latest PSNR measured at or before ``elapsed_s`` (the first one before
    any; NaN: none)."""
    if not len(times):
        return math.nan
    n = int(np.searchsorted(times, elapsed_s, side="right"))
    return float(psnr[max(n - 1, 0)])


class _FrameDrawer:
    """Draws one frame of the video for a snapshot."""

    def __init__(self, image: NDArray[Any], history: FitHistory | None,
                 panels: tuple[str, ...], suffix: str,
                 initial_keys: Sequence[str] | None) -> None:
        img = np.asarray(image, dtype=np.float32)
        self.panels = panels
        self.history = history
        self.initial_keys = None if initial_keys is None else list(initial_keys)
        self.image_h, self.image_w = img.shape[:2]
        self.ph, self.pw = _panel_size(self.image_h, self.image_w, len(panels), suffix)
        width = _MARGIN + len(panels) * (self.pw + _MARGIN)
        height = _TITLE_H + self.ph + _STATUS_H + _MARGIN
        # multiples of 16: H.264's macro blocks, so the encoder never rescales
        self.width = int(math.ceil(width / 16) * 16)
        self.height = int(math.ceil(height / 16) * 16)
        small = _resized(img, (self.ph, self.pw))
        self.dimmed = _to_u8(_dim(small))
        self.plot = _PsnrPlot(history, (self.ph, self.pw)) if "psnr" in panels else None
        self.title_font = text_font(18)
        self.status_font = text_font(18)
        whole = history.whole_image().arrays() if history is not None else None
        self.psnr_t = whole["elapsed_s"] if whole is not None else np.zeros(0)
        self.psnr_db = whole["psnr_db"] if whole is not None else np.zeros(0)

    def _kernels(self, snap: Snapshot) -> NDArray[np.uint8]:
        import cv2

        out = self.dimmed.copy()
        model = snap.model
        sx, sy = self.pw / self.image_w, self.ph / self.image_h
        pts = (model.mu + 0.5) * np.array([sx, sy]) - 0.5
        keep = ((pts[:, 0] > -2) & (pts[:, 0] < self.pw + 2)
                & (pts[:, 1] > -2) & (pts[:, 1] < self.ph + 2))
        initial = self.initial_keys
        if snap.phase == "init" and initial is not None and len(initial) == model.n_kernels:
            keys = np.asarray(initial)
        else:
            keys = np.full(model.n_kernels, "trained")
        # a dot a little smaller than the kernels' spacing, 1-4 px
        spacing = math.sqrt(self.pw * self.ph / max(1, model.n_kernels))
        radius = int(max(1, min(3, round(spacing / 6))))
        shift = 4
        fixed = np.round(pts * (1 << shift)).astype(np.int32)
        for key in dict.fromkeys(keys.tolist()):
            colour = rgb(str(key))
            for x, y in fixed[(keys == key) & keep]:
                cv2.circle(out, (int(x), int(y)), radius << shift, colour, -1, cv2.LINE_AA, shift)
        return out

    def draw(self, snap: Snapshot) -> NDArray[np.uint8]:
        from PIL import Image, ImageDraw

        from ..rendering.culled import render

        frame = np.empty((self.height, self.width, 3), np.uint8)
        frame[...] = LIGHT.background
        tiles: list[NDArray[np.uint8]] = []
        for name in self.panels:
            if name == "reconstruction":
                tiles.append(_to_u8(render(snap.model, height=self.ph, width=self.pw)))
            elif name == "kernels":
                tiles.append(self._kernels(snap))
            else:
                assert self.plot is not None
                tiles.append(self.plot.frame(snap.elapsed_s))
        for i, tile in enumerate(tiles):
            x0 = _MARGIN + i * (self.pw + _MARGIN)
            frame[_TITLE_H:_TITLE_H + self.ph, x0:x0 + self.pw] = tile
        pil = Image.fromarray(frame)
        draw = ImageDraw.Draw(pil)
        fg = LIGHT.foreground
        for i, name in enumerate(self.panels):
            x0 = _MARGIN + i * (self.pw + _MARGIN)
            draw.text((x0, 4), PANEL_TITLES[name], fill=fg, font=self.title_font)
        psnr = _psnr_at(self.psnr_t, self.psnr_db, snap.elapsed_s)
        psnr_text = f"{psnr:.2f} dB" if math.isfinite(psnr) else ("inf dB" if psnr > 0 else "")
        phase = "initial model" if snap.phase == "init" else snap.phase
        status = (f"step {snap.step} · {snap.elapsed_s:.1f} s · {phase} · "
                  f"{snap.model.n_kernels:,} kernels" + (f" · {psnr_text}" if psnr_text else ""))
        draw.text((_MARGIN, _TITLE_H + self.ph + 4), status, fill=fg, font=self.status_font)
        return np.asarray(pil, dtype=np.uint8)


def _dim(image: NDArray[np.float32]) -> NDArray[np.float32]:
    low, high = LIGHT.dim_levels
    return np.clip((image - low) / (high - low), 0.0, 1.0).astype(np.float32)


def _chosen(snaps: list[Snapshot], most: int) -> list[Snapshot]:
    """At most ``most`` snapshots, evenly spread, first and last kept."""
    if len(snaps) <= most:
        return snaps
    idx = np.unique(np.round(np.linspace(0, len(snaps) - 1, most)).astype(np.int64))
    return [snaps[i] for i in idx.tolist()]


def video_frames(
    image: NDArray[Any],
    snapshots: ModelHistory | Sequence[Snapshot],
    history: FitHistory | None = None,
    panels: Sequence[str] = PANELS,
    suffix: str = ".mp4",
    initial_keys: Sequence[str] | None = None,
) -> tuple[list[Snapshot], Callable[[Snapshot], NDArray[np.uint8]], tuple[int, int]]:
    """The snapshots a video shows, the function drawing one frame and the frame size.

    Returns
    -------
    snapshots : list of Snapshot
    draw : callable Snapshot -> (height, width, 3) uint8
    size : (height, width)
        Multiples of 16 px.
    """
    snaps = list(snapshots)
    if suffix == ".gif":
        snaps = _chosen(snaps, MAX_GIF_FRAMES)
    drawer = _FrameDrawer(image, history, parse_panels(list(panels)), suffix, initial_keys)
    return snaps, drawer.draw, (drawer.height, drawer.width)


def write_training_video(
    path: str | os.PathLike[str],
    image: NDArray[Any],
    snapshots: ModelHistory | Sequence[Snapshot],
    history: FitHistory | None = None,
    *,
    panels: Sequence[str] = PANELS,
    fps: float = DEFAULT_FPS,
    initial_keys: Sequence[str] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> VideoInfo:
    """Write the video of a training run to ``path`` (``.mp4`` or ``.gif``).

    Parameters
    ----------
    path : path-like
        Checked with :func:`check_video_path`.
    image : (H, W) or (H, W, 3) float array in [0, 1]
        The image fitted (under the kernel centres).
    snapshots : ModelHistory or sequence of Snapshot
        The run's models, oldest first (at least one): one frame each (a GIF
        takes at most :data:`MAX_GIF_FRAMES`, evenly spread); the last frame is
        held for :data:`HOLD_LAST` frames.
    history : FitHistory, optional
        The run's PSNR history (the curve and the PSNR in the status line).
    panels : sequence of str
        Subset of :data:`PANELS` with ``"reconstruction"``.
    fps : float
        Frames per second, in (0, 60].
    initial_keys : sequence of str, optional
        Palette key (:data:`smoe_gui.core.palette.HUES`) of each kernel of the
        initial model (step 0), e.g. ``"pair"``/``"background"``; later frames
        draw every kernel as ``"trained"``, as the window does.
    on_progress : callable (done, total), optional
        Called after each frame, in the calling thread.
    cancelled : callable () -> bool, optional
        Asked before each frame; True stops the encoding (:class:`VideoCancelled`).

    Returns
    -------
    VideoInfo

    Raises
    ------
    ValueError
        For a bad path, no snapshots, bad panels or a bad frame rate (before
        any work), or when the encoder fails (one line).
    VideoCancelled
        When ``cancelled()`` returned True; no file is left.
    """
    from ..io.fileio import atomic_path

    out = check_video_path(path)
    suffix = out.suffix.lower()
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and 0 < fps <= 60):
        raise ValueError(f"the frame rate must be in (0, 60] frames per second, got {fps!r}")
    snaps, draw, (height, width) = video_frames(image, snapshots, history, panels, suffix,
                                                initial_keys)
    if not snaps:
        raise ValueError("there are no models of the run to make a video of")
    total = len(snaps)

    def frames() -> Any:
        last: NDArray[np.uint8] | None = None
        for i, snap in enumerate(snaps):
            if cancelled is not None and cancelled():
                raise VideoCancelled("the video was cancelled")
            last = draw(snap)
            yield last
            if on_progress is not None:
                on_progress(i + 1, total)
        assert last is not None
        for _ in range(HOLD_LAST):
            yield last

    with atomic_path(out) as tmp:
        _encode(tmp, frames(), fps, suffix)
    return VideoInfo(out, total + HOLD_LAST, width, height, float(fps))


#: ffmpeg's filter graph of a GIF: one palette from every frame, used without dithering.
GIF_FILTER = ("split[a][b];[a]palettegen=stats_mode=full[p];"
              "[b][p]paletteuse=dither=none:diff_mode=rectangle")


def _encode(path: Path, frames: Any, fps: float, suffix: str) -> None:
    """Pipe ``frames`` to the ffmpeg binary: an MP4 (H.264, through imageio's
    FFMPEG writer) or a looping GIF (imageio-ffmpeg's frame writer: imageio's
    FFMPEG format takes no ``.gif``)."""
    kind = suffix.lstrip(".").upper()
    try:
        writer = _Writer(path, fps, suffix)
    except Exception as exc:  # the encoder cannot start: missing binary, bad path
        raise ValueError(f"cannot start the {kind} encoder ({exc})") from None
    try:
        for frame in frames:
            writer.append(frame)
    except (VideoCancelled, KeyboardInterrupt):
        _close_quietly(writer)
        raise
    except OSError as exc:
        _close_quietly(writer)
        raise ValueError(f"the {kind} encoder failed ({exc})") from None
    try:
        writer.close()
    except OSError as exc:  # the encoder failed at the end (a full disk, say)
        raise ValueError(f"the {kind} encoder failed ({exc})") from None


class _Writer:
    """One encoder process: ``append(frame)`` for each (H, W, 3) uint8 frame, then
    ``close()``; whatever the encoder raises comes out as :class:`OSError`."""

    def __init__(self, path: Path, fps: float, suffix: str) -> None:
        self.path, self.fps = path, fps
        self._gif: Any = None  # started with the first frame, whose size it needs
        self._mp4: Any = None
        if suffix == ".mp4":
            import imageio.v2 as imageio

            self._mp4 = imageio.get_writer(
                str(path), format="FFMPEG", mode="I", fps=fps, codec="libx264",
                pixelformat="yuv420p", quality=8, macro_block_size=16, ffmpeg_log_level="error",
            )

    def append(self, frame: NDArray[np.uint8]) -> None:
        with _as_os_error():
            if self._mp4 is not None:
                self._mp4.append_data(frame)
                return
            if self._gif is None:
                import imageio_ffmpeg

                height, width = frame.shape[:2]
                self._gif = imageio_ffmpeg.write_frames(
                    str(self.path), (width, height), fps=self.fps, codec="gif",
                    pix_fmt_in="rgb24", pix_fmt_out="pal8", quality=None, macro_block_size=1,
                    ffmpeg_log_level="error",
                    output_params=["-filter_complex", GIF_FILTER, "-loop", "0"],
                )
                self._gif.send(None)  # start the process
            self._gif.send(np.ascontiguousarray(frame))

    def close(self) -> None:
        with _as_os_error():
            for writer in (self._mp4, self._gif):
                if writer is not None:
                    writer.close()


@contextlib.contextmanager
def _as_os_error() -> Iterator[None]:
    """An encoder's own error (imageio-ffmpeg's: the process died) as an OSError."""
    try:
        yield
    except OSError:
        raise
    except Exception as exc:
        raise OSError(str(exc)) from None


def _close_quietly(writer: Any) -> None:
    try:
        writer.close()
    except Exception:  # closing after a failure: the file is discarded anyway
        pass

