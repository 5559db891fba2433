"""Qt-free RGB renderings of the initialisation stages (OpenCV drawing), in
the window's colours, and the legend strip of the ``smoe init`` PNGs.

Each ``draw_*`` function returns an ``(H·s, W·s, 3)`` uint8 RGB image, ``s``
being an integer ``scale``; image coordinates ``(x, y)`` (pixel centres) map to
``((x + 0.5)·s - 0.5, (y + 0.5)·s - 0.5)`` in the drawing.  The colours are
the window's light palette (:mod:`smoe_gui.core.palette`: the same hues, and
the image under the overlays dimmed towards the white background as the
window dims it), so a PNG and the window's view show the same colours.
:func:`with_legend` adds a strip below a drawing listing what each colour
means (:func:`stage_legend` gives each stage's entries).  They serve the
``smoe init`` PNGs and exports; the GUI draws the same data with pyqtgraph.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from .. import registry
from ..labels import label_boundaries
from ..model import SmoeModel, ellipse_axes
from ..palette import LIGHT, kind_label, rgb
from .edge.segments import DIRECTIONS, direction_index

__all__ = [
    "BACKGROUND_COLOUR",
    "CLUSTER_COLOUR",
    "DIRECTION_COLOURS",
    "EDGE_COLOUR",
    "LegendEntry",
    "PAIR_COLOUR",
    "SALIENT_COLOUR",
    "SUPERPIXEL_COLOUR",
    "auto_scale",
    "dimmed_rgb",
    "draw_edges",
    "draw_kernels",
    "draw_reconstruction",
    "draw_reduced",
    "draw_segments",
    "draw_superpixels",
    "gray_rgb",
    "initial_kinds",
    "kernel_kinds",
    "legend_font_px",
    "legend_height",
    "segment_strokes",
    "stage_legend",
    "text_font",
    "with_legend",
]

U8 = NDArray[np.uint8]
RGB = tuple[int, int, int]

#: Colour of each scan direction (the window's ``dir<θ>`` colours), RGB.
DIRECTION_COLOURS: dict[float, RGB] = {
    theta: rgb(f"dir{int(theta)}") for theta in (0.0, 90.0, 45.0, -45.0)
}
#: Edge pixels (the window's view 1: the text colour on the background).
EDGE_COLOUR: RGB = LIGHT.foreground
#: Reduced segments that are not salient.
CLUSTER_COLOUR: RGB = rgb("cluster")
#: Salient reduced segments.
SALIENT_COLOUR: RGB = rgb("salient")
#: Edge-pair kernels.
PAIR_COLOUR: RGB = rgb("pair")
#: Background kernels.
BACKGROUND_COLOUR: RGB = rgb("background")
#: Colour of superpixel boundaries (segment methods).
SUPERPIXEL_COLOUR: RGB = rgb("superpixel")

_SHIFT = 4  # sub-pixel bits for OpenCV drawing
_ONE = 1 << _SHIFT


def segment_strokes(segments: NDArray[np.float64]) -> dict[int, NDArray[np.float64]]:
    """Strokes of the raw segments, one array per scan direction.

    The one place where a segment ``(x, y, θ, length)`` becomes a line from its
    first to its last pixel (drawn here with OpenCV and in the window with
    pyqtgraph).

    Parameters
    ----------
    segments : (N, 4) float64
        Centre x, centre y (px), θ (degrees: 0, 90, 45, -45, see
        :data:`smoe_gui.core.methods.edge.segments.DIRECTIONS`), run length (pixels).

    Returns
    -------
    dict θ (int degrees) -> (2n, 2) float64
        Consecutive rows are the two ends ``(x, y)`` of one stroke (pyqtgraph's
        ``connect="pairs"``); a run of ``L`` pixels spans ``L - 1`` steps, at
        least half a pixel each side of the centre.  Every direction has a key.

    Raises
    ------
    ValueError
        For a direction that is not one of the four.
    """
    segs = np.asarray(segments, dtype=np.float64).reshape(-1, 4)
    d_idx = direction_index(segs[:, 2]) if len(segs) else np.zeros(0, dtype=np.intp)
    out: dict[int, NDArray[np.float64]] = {}
    for d, (theta, dx, dy) in enumerate(DIRECTIONS):
        sel = segs[d_idx == d]
        half = np.maximum((sel[:, 3] - 1.0) / 2.0, 0.5)[:, None] * np.array([dx, dy], np.float64)
        ends = np.stack([sel[:, :2] - half, sel[:, :2] + half], axis=1)
        out[int(theta)] = ends.reshape(-1, 2)
    return out


def auto_scale(height: int, width: int, target: int = 1536) -> int:
    """An integer upscale (1..4) bringing the longer side near ``target`` px."""
    return max(1, min(4, target // max(1, max(height, width))))


def gray_rgb(image: NDArray[np.floating], scale: int = 1, dim: float = 1.0) -> U8:
    """Gray image in [0, 1] as RGB uint8, upscaled ``scale`` times (nearest), times ``dim``
    (an RGB ``(H, W, 3)`` image keeps its colours).

    Returns
    -------
    (H·scale, W·scale, 3) uint8
    """
    if scale < 1 or int(scale) != scale:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    gray = np.clip(np.nan_to_num(np.asarray(image, dtype=np.float64)), 0.0, 1.0) * dim
    u8 = np.round(gray * 255.0).astype(np.uint8)
    if scale > 1:
        u8 = np.asarray(
            cv2.resize(u8, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST), np.uint8
        )
    if u8.ndim == 3:
        return np.ascontiguousarray(u8)
    return np.ascontiguousarray(np.repeat(u8[:, :, None], 3, axis=2))


def dimmed_rgb(image: NDArray[np.floating], scale: int = 1) -> U8:
    """The image dimmed towards the white background, as the window shows it
    under its overlays (:attr:`smoe_gui.core.palette.BasePalette.dim_levels`).

    Returns
    -------
    (H·scale, W·scale, 3) uint8
    """
    low, high = LIGHT.dim_levels
    img = np.clip(np.nan_to_num(np.asarray(image, dtype=np.float64)), 0.0, 1.0)
    return gray_rgb((img - low) / (high - low), scale)


def _fixed(points: NDArray[np.float64], scale: int) -> NDArray[np.int32]:
    """Image coordinates (…, 2) to fixed-point drawing coordinates."""
    drawn = (np.asarray(points, dtype=np.float64) + 0.5) * scale - 0.5
    return np.round(drawn * _ONE).astype(np.int32)


def draw_edges(edges: NDArray[np.bool_], image: NDArray[np.floating] | None = None,
               scale: int = 1) -> U8:
    """Edge pixels as the window's view 1 shows them: the text colour on the
    white background, or, with ``image``, in the ``edge`` colour over the
    image dimmed towards white.

    Returns
    -------
    (H·scale, W·scale, 3) uint8
    """
    mask = np.asarray(edges, dtype=bool)
    if image is None:
        out = np.empty(mask.shape + (3,), np.uint8)
        out[...] = LIGHT.background
        out[mask] = EDGE_COLOUR
    else:
        out = dimmed_rgb(image)
        out[mask] = rgb("edge-pixel")
    if scale > 1:
        out = np.asarray(
            cv2.resize(out, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST), np.uint8
        )
    return out


def draw_segments(image: NDArray[np.floating], segments: NDArray[np.float64], scale: int = 1) -> U8:
    """Each segment as a line from its first to its last pixel, coloured by direction.

    Parameters
    ----------
    image : (H, W) float
        Drawn dimmed underneath.
    segments : (N, 4) float64
        ``x, y, θ, length``.
    """
    out = dimmed_rgb(image, scale)
    thickness = max(1, scale // 2)
    for theta, strokes in segment_strokes(segments).items():
        colour = DIRECTION_COLOURS[float(theta)]
        ends = _fixed(strokes, scale).reshape(-1, 2, 2)
        for start, end in ends:
            cv2.line(out, tuple(start), tuple(end), colour, thickness, cv2.LINE_AA, _SHIFT)
    return out


def draw_reduced(
    image: NDArray[np.floating],
    reduced: NDArray[np.float64],
    salient: NDArray[np.bool_],
    scale: int = 1,
    tick: float = 3.0,
) -> U8:
    """Reduced segments as short ticks along their direction with a dot at the
    centre, clustered ones in :data:`CLUSTER_COLOUR`, salient ones in
    :data:`SALIENT_COLOUR` (larger dots), as the window's view 3.

    Parameters
    ----------
    reduced : (M, 3) float64
        ``x, y, θ``.
    salient : (M,) bool
    tick : float
        Half-length of each tick in image pixels.
    """
    out = dimmed_rgb(image, scale)
    red = np.asarray(reduced, dtype=np.float64).reshape(-1, 3)
    sal = np.asarray(salient, dtype=bool).reshape(-1)
    if red.shape[0] == 0:
        return out
    rad = np.radians(red[:, 2])
    t = np.stack([np.cos(rad), np.sin(rad)], axis=1) * tick
    starts = _fixed(red[:, :2] - t, scale)
    ends = _fixed(red[:, :2] + t, scale)
    centres = _fixed(red[:, :2], scale)
    thickness = max(1, scale // 2)
    for k in np.argsort(sal, kind="stable"):  # salient ones last, on top
        colour = SALIENT_COLOUR if sal[k] else CLUSTER_COLOUR
        dot = (thickness + (2 if sal[k] else 1)) * _ONE
        cv2.line(out, tuple(starts[k]), tuple(ends[k]), colour, thickness + 1, cv2.LINE_AA, _SHIFT)
        cv2.circle(out, tuple(centres[k]), dot, colour, -1, cv2.LINE_AA, _SHIFT)
    return out


def draw_kernels(
    image: NDArray[np.floating], model: SmoeModel, n_background: int = 0, scale: int = 1,
    kinds: Sequence[str] | None = None,
) -> U8:
    """Kernel centres with their 1-σ ellipses (:func:`~smoe_gui.core.model.ellipse_axes`)
    over the image dimmed towards white, in the window's colours of their kinds.

    Parameters
    ----------
    kinds : sequence of str, optional
        Palette key of each kernel (``"pair"``, ``"background"``, ``"grid"``,
        ``"segment"``, ``"trained"``; :func:`smoe_gui.core.palette.kind_label`).
        Default: pair kernels, the last ``n_background`` background kernels.
    """
    out = dimmed_rgb(image, scale)
    axes = ellipse_axes(model)
    centres = _fixed(model.mu, scale)
    k_total = model.n_kernels
    keys = list(kinds) if kinds is not None else kernel_kinds(k_total, n_background)
    if len(keys) != k_total:
        raise ValueError(f"kinds has {len(keys)} entries for {k_total} kernels")
    limit = 4.0 * max(model.height, model.width)
    dot = max(1, scale // 2) + 1
    colours = {key: rgb(key) for key in dict.fromkeys(keys)}
    for k in range(k_total):
        colour = colours[keys[k]]
        major, minor, angle = (float(v) for v in axes[k])
        if math.isfinite(major) and math.isfinite(minor):
            size = (
                int(round(min(major, limit) * scale * _ONE)),
                int(round(min(minor, limit) * scale * _ONE)),
            )
            cv2.ellipse(
                out, tuple(centres[k]), size, angle, 0.0, 360.0, colour, 1, cv2.LINE_AA, _SHIFT
            )
    for k in range(k_total):  # centres over every ellipse, ringed in the background colour
        cv2.circle(out, tuple(centres[k]), (dot + 1) * _ONE, LIGHT.background, -1, cv2.LINE_AA,
                   _SHIFT)
        cv2.circle(out, tuple(centres[k]), dot * _ONE, colours[keys[k]], -1, cv2.LINE_AA, _SHIFT)
    return out


def initial_kinds(init: Any) -> list[str]:
    """Palette key of each kernel of an initialisation's model, as the window's
    view 4 colours them: the kinds its method registers
    (:attr:`smoe_gui.core.registry.Method.kernel_kinds`); a method with two
    kinds (the edge method's pairs and background) has the first for all but
    the last ``n_background`` kernels.

    Parameters
    ----------
    init : Initialization
        :func:`smoe_gui.core.methods.pipeline.initialize`'s result.
    """
    k = int(init.model.n_kernels)
    method = registry.get(init.method)
    keys = [kind.key for kind in getattr(method, "kernel_kinds", ()) or ()] or [method.name]
    if len(keys) == 1:
        return [keys[0]] * k
    n_bg = min(max(int(init.n_background), 0), k)
    return [keys[0]] * (k - n_bg) + [keys[1]] * n_bg


def kernel_kinds(n_kernels: int, n_background: int = 0) -> list[str]:
    """``"pair"`` for the first kernels, ``"background"`` for the last ``n_background``."""
    n_bg = min(max(int(n_background), 0), int(n_kernels))
    return ["pair"] * (int(n_kernels) - n_bg) + ["background"] * n_bg


def draw_reconstruction(
    model: SmoeModel, scale: int = 1, reconstruction: NDArray[np.float32] | None = None
) -> U8:
    """The model rendered at its own size, as RGB uint8 (upscaled by nearest).

    ``reconstruction`` is the model's image when it is already at hand (the
    initialisation computes it), saving the render."""
    if reconstruction is None:
        from ..rendering.culled import render

        reconstruction = render(model)
    return gray_rgb(reconstruction, scale)


def draw_superpixels(
    image: NDArray[np.floating], labels: NDArray[np.integer], scale: int = 1
) -> U8:
    """Superpixel boundaries in :data:`SUPERPIXEL_COLOUR` over the image dimmed
    towards white.

    Returns
    -------
    (H·scale, W·scale, 3) uint8
    """
    out = dimmed_rgb(image)
    out[label_boundaries(labels)] = SUPERPIXEL_COLOUR
    if scale > 1:
        out = np.asarray(
            cv2.resize(out, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST), np.uint8
        )
    return out


# --------------------------------------------------------------------------------------
# The legend strip
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LegendEntry:
    """One entry of a legend: a swatch and what it means.

    Attributes
    ----------
    label : str
    colour : (r, g, b) 0-255
    shape : str
        ``"square"`` (pixels), ``"line"`` (strokes) or ``"dot"`` (points).
    """

    label: str
    colour: RGB
    shape: str = "square"


def stage_legend(stage: str, kinds: Sequence[str] = ()) -> list[LegendEntry]:
    """The legend of a ``smoe init`` stage picture.

    Parameters
    ----------
    stage : str
        ``"edges"``, ``"segments"``, ``"reduced"``, ``"kernels"`` or ``"superpixels"``.
    kinds : sequence of str
        For ``"kernels"``: the kinds drawn (palette keys, e.g. ``"pair"``), in order.

    Raises
    ------
    ValueError
        For another stage.
    """
    if stage == "edges":
        return [LegendEntry("edge pixel (Canny)", EDGE_COLOUR)]
    if stage == "segments":
        return [LegendEntry(f"segment θ = {int(t)}°", c, "line")
                for t, c in DIRECTION_COLOURS.items()]
    if stage == "reduced":
        return [LegendEntry("reduced segment", CLUSTER_COLOUR, "line"),
                LegendEntry("salient reduced segment", SALIENT_COLOUR, "line")]
    if stage == "kernels":
        return [LegendEntry(f"{kind_label(k)} kernel: centre, 1-σ ellipse", rgb(k), "dot")
                for k in dict.fromkeys(kinds)]
    if stage == "superpixels":
        return [LegendEntry("superpixel boundary", SUPERPIXEL_COLOUR, "line")]
    raise ValueError(f"no legend for stage {stage!r}")


@functools.lru_cache(maxsize=16)
def text_font(size: int) -> Any:
    """A Pillow font of ``size`` px with Greek letters (θ, σ, μ): DejaVu Sans,
    which matplotlib ships (found without importing matplotlib), else Pillow's
    own font.  Cached per size."""
    import importlib.util

    from PIL import ImageFont

    try:
        found = importlib.util.find_spec("matplotlib")
        if found is None or found.origin is None:
            raise ImportError("matplotlib is not installed")
        path = os.path.join(os.path.dirname(found.origin), "mpl-data", "fonts", "ttf",
                            "DejaVuSans.ttf")
        return ImageFont.truetype(path, size)
    except (OSError, ValueError, ImportError):  # no TrueType font at hand: Pillow's own
        try:
            return ImageFont.load_default(size=size)
        except TypeError:  # Pillow without FreeType: the fixed bitmap font
            return ImageFont.load_default()


def legend_font_px(width: int) -> int:
    """Text size (px) of the legend of a picture ``width`` px wide: ``max(14, width // 70)``."""
    return max(14, int(width) // 70)


def _layout(width: int, entries: Sequence[LegendEntry]) -> tuple[list[tuple[int, int]], int, Any]:
    """Top-left corner of each entry, the strip's height and the font."""
    font = text_font(legend_font_px(width))
    size = legend_font_px(width)
    row_h = int(round(size * 1.7))
    pad = size // 2
    swatch = 2 * size
    x, y = pad, pad
    places: list[tuple[int, int]] = []
    for entry in entries:
        w = swatch + size // 2 + int(math.ceil(font.getlength(entry.label))) + 2 * size
        if x > pad and x + w > width - pad:
            x, y = pad, y + row_h
        places.append((x, y))
        x += w
    height = y + row_h + pad if entries else 0
    return places, height, font


def legend_height(width: int, entries: Sequence[LegendEntry]) -> int:
    """Height (px) of the legend strip :func:`with_legend` adds below a picture
    ``width`` px wide: rows of ``1.7·legend_font_px(width)`` px, as many as the
    entries need, plus half a text size above and below (0 without entries)."""
    return _layout(width, entries)[1]


def with_legend(picture: U8, entries: Sequence[LegendEntry]) -> U8:
    """``picture`` with a legend strip below it: a swatch and a label per entry,
    dark text on the white background, wrapped to the picture's width.

    Parameters
    ----------
    picture : (H, W, 3) uint8
    entries : sequence of LegendEntry

    Returns
    -------
    (H + legend_height(W, entries), W, 3) uint8
        The picture unchanged on top.
    """
    from PIL import Image, ImageDraw

    h, w = picture.shape[:2]
    places, strip_h, font = _layout(w, entries)
    if not strip_h:
        return np.ascontiguousarray(picture)
    strip = Image.new("RGB", (w, strip_h), LIGHT.background)
    draw = ImageDraw.Draw(strip)
    size = legend_font_px(w)
    draw.line([(0, 0), (w, 0)], fill=(200, 200, 200), width=1)
    for entry, (x, y) in zip(entries, places, strict=True):
        mid = y + int(round(size * 0.85))
        sw = 2 * size
        if entry.shape == "line":
            draw.line([(x, mid), (x + sw, mid)], fill=entry.colour, width=max(2, size // 6))
        elif entry.shape == "dot":
            r = max(3, size // 3)
            draw.ellipse([x + sw // 2 - 2 * r, mid - r - r // 2, x + sw // 2 + 2 * r,
                          mid + r + r // 2], outline=entry.colour, width=1)
            draw.ellipse([x + sw // 2 - r // 2 - 1, mid - r // 2 - 1, x + sw // 2 + r // 2 + 1,
                          mid + r // 2 + 1], fill=entry.colour)
        else:
            draw.rectangle([x + sw // 4, mid - sw // 4, x + 3 * sw // 4, mid + sw // 4],
                           fill=entry.colour)
        draw.text((x + sw + size // 2, mid), entry.label, fill=LIGHT.foreground, font=font,
                  anchor="lm")
    return np.ascontiguousarray(np.concatenate([picture, np.asarray(strip, np.uint8)], axis=0))
