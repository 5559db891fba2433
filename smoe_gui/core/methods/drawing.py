"""Qt-free RGB renderings of the initialisation stages (OpenCV drawing).

Each function returns an ``(H·s, W·s, 3)`` uint8 RGB image, ``s`` being an
integer ``scale``; image coordinates ``(x, y)`` (pixel centres) map to
``((x + 0.5)·s - 0.5, (y + 0.5)·s - 0.5)`` in the drawing.  They serve the
``smoe init`` PNGs and exports; the GUI draws the same data with pyqtgraph and
takes its colours from :data:`DIRECTION_COLOURS`.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from ..labels import label_boundaries
from ..model import SmoeModel, ellipse_axes
from .edge.segments import DIRECTIONS, direction_index

__all__ = [
    "BACKGROUND_COLOUR",
    "DIRECTION_COLOURS",
    "EDGE_COLOUR",
    "PAIR_COLOUR",
    "SALIENT_COLOUR",
    "SUPERPIXEL_COLOUR",
    "draw_superpixels",
    "auto_scale",
    "draw_edges",
    "draw_kernels",
    "draw_reconstruction",
    "draw_reduced",
    "draw_segments",
    "gray_rgb",
    "segment_strokes",
]

U8 = NDArray[np.uint8]
RGB = tuple[int, int, int]

#: Colour of each scan direction (Okabe-Ito palette, colour-blind safe), RGB.
DIRECTION_COLOURS: dict[float, RGB] = {
    0.0: (230, 159, 0),  # orange
    90.0: (86, 180, 233),  # sky blue
    45.0: (0, 158, 115),  # bluish green
    -45.0: (204, 121, 167),  # reddish purple
}
#: Edge pixels.
EDGE_COLOUR: RGB = (255, 255, 255)
#: Ring around salient reduced segments.
SALIENT_COLOUR: RGB = (213, 94, 0)  # vermillion
#: Edge-pair kernels.
PAIR_COLOUR: RGB = (240, 228, 66)  # yellow
#: Background kernels.
BACKGROUND_COLOUR: RGB = (86, 180, 233)  # sky blue
#: Colour of superpixel boundaries (segment methods).
SUPERPIXEL_COLOUR: RGB = (240, 228, 66)  # yellow

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


def _fixed(points: NDArray[np.float64], scale: int) -> NDArray[np.int32]:
    """Image coordinates (…, 2) to fixed-point drawing coordinates."""
    drawn = (np.asarray(points, dtype=np.float64) + 0.5) * scale - 0.5
    return np.round(drawn * _ONE).astype(np.int32)


def draw_edges(edges: NDArray[np.bool_], image: NDArray[np.floating] | None = None, scale: int = 1) -> U8:
    """Edge pixels in white over the image dimmed to 35 % (or over black).

    Returns
    -------
    (H·scale, W·scale, 3) uint8
    """
    mask = np.asarray(edges, dtype=bool)
    base = np.zeros(mask.shape, np.float32) if image is None else image
    out = gray_rgb(base, 1, 0.35)
    out[mask] = EDGE_COLOUR
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
    out = gray_rgb(image, scale, 0.35)
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
    """Reduced segments as short ticks along their direction; salient ones ringed.

    Parameters
    ----------
    reduced : (M, 3) float64
        ``x, y, θ``.
    salient : (M,) bool
    tick : float
        Half-length of each tick in image pixels.
    """
    out = gray_rgb(image, scale, 0.35)
    red = np.asarray(reduced, dtype=np.float64).reshape(-1, 3)
    sal = np.asarray(salient, dtype=bool).reshape(-1)
    if red.shape[0] == 0:
        return out
    d_idx = direction_index(red[:, 2])
    rad = np.radians(red[:, 2])
    t = np.stack([np.cos(rad), np.sin(rad)], axis=1) * tick
    starts = _fixed(red[:, :2] - t, scale)
    ends = _fixed(red[:, :2] + t, scale)
    centres = _fixed(red[:, :2], scale)
    ring = int(round((tick + 1.5) * scale * _ONE))
    thickness = max(1, scale // 2)
    for k in range(red.shape[0]):
        colour = DIRECTION_COLOURS[DIRECTIONS[int(d_idx[k])][0]]
        cv2.line(out, tuple(starts[k]), tuple(ends[k]), colour, thickness + 1, cv2.LINE_AA, _SHIFT)
        if sal[k]:
            cv2.circle(out, tuple(centres[k]), ring, SALIENT_COLOUR, thickness, cv2.LINE_AA, _SHIFT)
    return out


def draw_kernels(
    image: NDArray[np.floating], model: SmoeModel, n_background: int = 0, scale: int = 1
) -> U8:
    """Kernel centres with their 1-σ ellipses (:func:`~smoe_gui.core.model.ellipse_axes`).

    Pair kernels are yellow, the last ``n_background`` kernels sky blue.
    """
    out = gray_rgb(image, scale, 0.35)
    axes = ellipse_axes(model)
    centres = _fixed(model.mu, scale)
    k_total = model.n_kernels
    first_background = k_total - int(n_background)
    limit = 4.0 * max(model.height, model.width)
    dot = max(1, scale // 2)
    for k in range(k_total):
        colour = BACKGROUND_COLOUR if k >= first_background else PAIR_COLOUR
        major, minor, angle = (float(v) for v in axes[k])
        if math.isfinite(major) and math.isfinite(minor):
            size = (
                int(round(min(major, limit) * scale * _ONE)),
                int(round(min(minor, limit) * scale * _ONE)),
            )
            cv2.ellipse(
                out, tuple(centres[k]), size, angle, 0.0, 360.0, colour, 1, cv2.LINE_AA, _SHIFT
            )
        cv2.circle(out, tuple(centres[k]), dot * _ONE, colour, -1, cv2.LINE_AA, _SHIFT)
    return out


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
    """Superpixel boundaries in :data:`SUPERPIXEL_COLOUR` over the image dimmed to 60 %.

    Returns
    -------
    (H·scale, W·scale, 3) uint8
    """
    out = gray_rgb(image, 1, 0.6)
    out[label_boundaries(labels)] = SUPERPIXEL_COLOUR
    if scale > 1:
        out = np.asarray(
            cv2.resize(out, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST), np.uint8
        )
    return out
