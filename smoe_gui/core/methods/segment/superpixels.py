"""DBSCAN superpixels (MDBSCAN; Shen et al., IEEE TIP 25(12), 2016), for gray images.

The segmentation the S-SMoE and AS-SMoE initialisations start from
(:mod:`smoe_gui.core.methods.segment.segment_init`).  Written from the paper and from the
authors' public code (github yihsinli/AS-SMoE, ``MDBSCAN-old/code``); where the
two differ, ``docs/paper-readings.md`` says which reading is taken and why.

Stages
------
1. **Blur**: a Gaussian of standard deviation ``blur`` px (the public code's
   ``imgaussfilt(im, 1)``), reflected borders; 0 disables it.
2. **Clustering** (DBSCAN-like region growing): pixels are visited in
   row-major order; an unlabelled pixel seeds a new segment, which grows
   breadth-first over 4-neighbours.  A neighbour ``q`` of a segment pixel
   ``n`` joins the segment of seed ``s`` when

   ``0.62·(I_q - I_s)² + 0.38·(I_q - I_n)² < E²``

   (``E`` = ``threshold``, gray levels in [0, 1]): a mix of the distance to
   the seed and to the pixel it is reached from, the weights of the public
   code's ``regionQuery``.  Every pixel gets a label, and a segment is
   4-connected by construction.
3. **Merging small segments**: a segment of fewer than ``min_size`` pixels is
   merged into the 4-adjacent segment that minimises
   ``(mean_a - mean_b)² + 2·‖centroid_a - centroid_b‖²/(H·W)``; passes repeat
   until no small segment is left (or only one segment remains).  Merging
   adjacent segments keeps every segment connected.
4. **Count cap** (optional): while there are more than ``max_segments``
   segments, the smallest are merged the same way (the kernel budget of the
   segment methods uses this).

Labels are ``0 .. n-1``, numbered in row-major order of each segment's first
pixel.  The result depends on nothing but the inputs: same image, same
parameters, same labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numba
import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import find_objects

from .._unionfind import find as find_root

__all__ = [
    "SegmentStats", "mdbscan_superpixels", "merge_segments", "pixel_moments", "relabel",
    "segment_stats",
]

#: Weight of the distance to the seed in the growing criterion (public code).
SEED_WEIGHT = 0.62
#: Weight of the distance to the neighbour a pixel is reached from.
STEP_WEIGHT = 0.38
#: Weight of the squared centroid distance (relative to the image area) in the merge cost.
SPATIAL_WEIGHT = 2.0


@numba.njit(cache=True, nogil=True)
def _grow(image: np.ndarray, e2: float) -> tuple[np.ndarray, int]:
    h, w = image.shape
    labels = np.full((h, w), -1, dtype=np.int32)
    queue = np.empty(h * w, dtype=np.int64)
    n_seg = 0
    for start in range(h * w):
        sy = start // w
        sx = start - sy * w
        if labels[sy, sx] >= 0:
            continue
        seed = image[sy, sx]
        labels[sy, sx] = n_seg
        head = 0
        tail = 0
        queue[tail] = start
        tail += 1
        while head < tail:
            p = queue[head]
            head += 1
            py = p // w
            px = p - py * w
            here = image[py, px]
            for d in range(4):
                qx = px
                qy = py
                if d == 0:
                    qx = px + 1
                elif d == 1:
                    qy = py - 1
                elif d == 2:
                    qx = px - 1
                else:
                    qy = py + 1
                if qx < 0 or qx >= w or qy < 0 or qy >= h or labels[qy, qx] >= 0:
                    continue
                v = image[qy, qx]
                dist = SEED_WEIGHT * (v - seed) ** 2 + STEP_WEIGHT * (v - here) ** 2
                if dist < e2:
                    labels[qy, qx] = n_seg
                    queue[tail] = qy * w + qx
                    tail += 1
        n_seg += 1
    return labels, n_seg


@numba.njit(cache=True, nogil=True)
def _merge_pass(
    labels: np.ndarray, image: np.ndarray, n_seg: int, small: np.ndarray, spatial: float
) -> int:
    """One pass: each segment flagged in ``small`` (in label order) is merged
    into its most similar adjacent segment, which is not itself merged in this
    pass.  Rewrites ``labels`` to ``0..n-1`` (first-pixel order); returns n."""
    h, w = labels.shape
    cnt = np.zeros(n_seg)
    s_v = np.zeros(n_seg)
    s_x = np.zeros(n_seg)
    s_y = np.zeros(n_seg)
    for y in range(h):
        for x in range(w):
            k = labels[y, x]
            cnt[k] += 1.0
            s_v[k] += image[y, x]
            s_x[k] += x
            s_y[k] += y
    # adjacency pairs (right and down neighbours), both directions
    best = np.full(n_seg, -1, dtype=np.int64)
    best_cost = np.full(n_seg, np.inf)
    area = float(h * w)
    for y in range(h):
        for x in range(w):
            a = labels[y, x]
            for d in range(2):
                qx = x + 1 if d == 0 else x
                qy = y if d == 0 else y + 1
                if qx >= w or qy >= h:
                    continue
                b = labels[qy, qx]
                if a == b:
                    continue
                for t in range(2):
                    u = a if t == 0 else b
                    v = b if t == 0 else a
                    if not small[u]:
                        continue
                    dm = s_v[u] / cnt[u] - s_v[v] / cnt[v]
                    dx = s_x[u] / cnt[u] - s_x[v] / cnt[v]
                    dy = s_y[u] / cnt[u] - s_y[v] / cnt[v]
                    cost = dm * dm + spatial * (dx * dx + dy * dy) / area
                    if cost < best_cost[u] or (cost == best_cost[u] and v < best[u]):
                        best_cost[u] = cost
                        best[u] = v
    parent = np.arange(n_seg)
    absorbed = np.zeros(n_seg, dtype=np.bool_)  # received a merge in this pass
    for u in range(n_seg):
        v = best[u]
        if v < 0 or absorbed[u]:
            continue
        ru = find_root(parent, u)
        rv = find_root(parent, v)
        if ru == rv:
            continue
        parent[ru] = rv
        absorbed[rv] = True
    # relabel in first-pixel order
    new = np.full(n_seg, -1, dtype=np.int64)
    n_new = 0
    for y in range(h):
        for x in range(w):
            r = find_root(parent, labels[y, x])
            if new[r] < 0:
                new[r] = n_new
                n_new += 1
            labels[y, x] = new[r]
    return n_new


@numba.njit(cache=True, nogil=True)
def _counts(labels: np.ndarray, n_seg: int) -> np.ndarray:
    cnt = np.zeros(n_seg, dtype=np.int64)
    h, w = labels.shape
    for y in range(h):
        for x in range(w):
            cnt[labels[y, x]] += 1
    return cnt


def _check_image(image: NDArray[np.floating]) -> NDArray[np.float64]:
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"image must be a 2-D (H, W) array, got shape {img.shape}")
    if not np.all(np.isfinite(img)):
        raise ValueError("image contains NaN or infinite values")
    return np.ascontiguousarray(img)


def merge_segments(
    labels: NDArray[np.int32],
    image: NDArray[np.floating],
    *,
    min_size: int = 0,
    max_segments: int = 0,
) -> NDArray[np.int32]:
    """Merge small segments, then the smallest ones until at most ``max_segments`` remain.

    Parameters
    ----------
    labels : (H, W) int32
        Labels ``0 .. n-1``, every segment 4-connected.
    image : (H, W) float
        The (blurred) gray image the merge costs are computed on.
    min_size : int
        Segments of fewer pixels are merged into a neighbour (0: none).
    max_segments : int
        Largest number of segments kept (0: no cap).

    Returns
    -------
    (H, W) int32
        New labels ``0 .. m-1`` (first-pixel order); segments stay 4-connected.

    Raises
    ------
    ValueError
        On mismatched shapes or negative sizes.
    """
    img = _check_image(image)
    lab = np.ascontiguousarray(labels, dtype=np.int32).copy()
    if lab.shape != img.shape:
        raise ValueError(f"labels {lab.shape} and image {img.shape} differ in shape")
    if min_size < 0 or max_segments < 0:
        raise ValueError("min_size and max_segments must be >= 0")
    n_seg = int(lab.max()) + 1 if lab.size else 0
    while n_seg > 1 and min_size > 1:
        cnt = _counts(lab, n_seg)
        small = cnt < min_size
        if not small.any():
            break
        n_seg = int(_merge_pass(lab, img, n_seg, small, SPATIAL_WEIGHT))
    while max_segments and n_seg > max_segments:
        cnt = _counts(lab, n_seg)
        excess = n_seg - max_segments
        # the `excess` smallest segments (stable: ties by label) are merged
        order = np.argsort(cnt, kind="stable")[:excess]
        small = np.zeros(n_seg, dtype=np.bool_)
        small[order] = True
        n_seg = int(_merge_pass(lab, img, n_seg, small, SPATIAL_WEIGHT))
    return lab


def relabel(labels: NDArray[np.integer]) -> NDArray[np.int32]:
    """Labels renumbered ``0 .. n-1`` in row-major order of each segment's first pixel."""
    flat = np.asarray(labels).ravel()
    _, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    rank = np.empty(first.shape[0], dtype=np.int32)
    rank[np.argsort(first, kind="stable")] = np.arange(first.shape[0], dtype=np.int32)
    return rank[inverse].reshape(np.asarray(labels).shape)


def mdbscan_superpixels(
    image: NDArray[np.floating],
    threshold: float = 0.045,
    min_size: int = 50,
    blur: float = 1.0,
    max_segments: int = 0,
) -> NDArray[np.int32]:
    """DBSCAN superpixels of a gray image (module doc for the stages).

    Parameters
    ----------
    image : (H, W) float in [0, 1]
        Gray image.
    threshold : float
        ``E``, the growing threshold in gray levels of [0, 1] (> 0).  The
        public code's ``E = 20`` on 8-bit RGB copies of a gray image is
        ``20/(255·√3) ≈ 0.045`` here.
    min_size : int
        Segments smaller than this many pixels are merged into a neighbour
        (the public code: 50).
    blur : float
        Standard deviation (px) of the Gaussian blur first applied; 0: none.
    max_segments : int
        If > 0, the smallest segments are merged until at most this many remain.

    Returns
    -------
    (H, W) int32
        Segment labels ``0 .. n-1``: every pixel labelled, every segment
        4-connected.

    Raises
    ------
    ValueError
        For a bad image or parameter.
    """
    img = _check_image(image)
    if not (threshold > 0.0 and np.isfinite(threshold)):
        raise ValueError(f"superpixel threshold must be > 0, got {threshold}")
    if not (blur >= 0.0 and np.isfinite(blur)):
        raise ValueError(f"superpixel blur must be >= 0, got {blur}")
    if blur > 0.0:
        ksize = 2 * int(np.ceil(3.0 * blur)) + 1
        img = np.asarray(
            cv2.GaussianBlur(img, (ksize, ksize), blur, borderType=cv2.BORDER_REFLECT),
            dtype=np.float64,
        )
    labels, _ = _grow(img, float(threshold) ** 2)
    return merge_segments(labels, img, min_size=int(min_size), max_segments=int(max_segments))


@dataclass(frozen=True)
class SegmentStats:
    """Per-segment moments.

    Attributes
    ----------
    count : (S,) int64
        Pixels per segment.
    centroid : (S, 2) float64
        Mean pixel coordinates ``(x, y)``.
    cov : (S, 2, 2) float64
        Covariance of the pixel coordinates (px²), population form.
    mean : (S,) float64
        Mean gray value.
    bbox : (S, 4) int64
        ``x0, y0, x1, y1`` inclusive bounding box.
    """

    count: NDArray[np.int64]
    centroid: NDArray[np.float64]
    cov: NDArray[np.float64]
    mean: NDArray[np.float64]
    bbox: NDArray[np.int64]


def pixel_moments(
    group: NDArray[np.integer], xs: NDArray[np.integer], ys: NDArray[np.integer],
    values: NDArray[np.floating], n: int,
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Moments of ``n`` groups of pixels, by ``np.bincount`` (the one home of this
    computation: segments here, S-SMoE's kernel parts in ``segment_init``).

    Parameters
    ----------
    group : (P,) int
        The group ``0 .. n-1`` of each pixel (every group non-empty).
    xs, ys : (P,) int
        The pixels' coordinates (px).
    values : (P,) float
        The pixels' values.
    n : int

    Returns
    -------
    count : (n,) int64
    centroid : (n, 2) float64
        Mean ``(x, y)``.
    cov : (n, 2, 2) float64
        Covariance of the coordinates (px², population form).
    mean : (n,) float64
        Mean value.
    """
    cnt = np.bincount(group, minlength=n).astype(np.int64)
    c = cnt.astype(np.float64)
    mx = np.bincount(group, xs, n) / c
    my = np.bincount(group, ys, n) / c
    dx = xs - mx[group]
    dy = ys - my[group]
    cov = np.empty((n, 2, 2))
    cov[:, 0, 0] = np.bincount(group, dx * dx, n) / c
    cov[:, 1, 1] = np.bincount(group, dy * dy, n) / c
    cov[:, 0, 1] = cov[:, 1, 0] = np.bincount(group, dx * dy, n) / c
    mean = np.bincount(group, values, n) / c
    return cnt, np.stack([mx, my], axis=1), cov, mean


def segment_stats(labels: NDArray[np.int32], image: NDArray[np.floating]) -> SegmentStats:
    """Moments of every segment of ``labels`` (module :class:`SegmentStats`)."""
    lab = np.asarray(labels)
    h, w = lab.shape
    n = int(lab.max()) + 1
    ys, xs = np.divmod(np.arange(h * w, dtype=np.int64), w)
    values = np.asarray(image, dtype=np.float64).ravel()
    cnt, centroid, cov, mean = pixel_moments(lab.ravel(), xs, ys, values, n)
    bbox = np.empty((n, 4), dtype=np.int64)
    for k, sl in enumerate(find_objects(lab + 1, max_label=n)):
        assert sl is not None, "labels must be 0 .. n-1 without gaps"
        bbox[k] = (sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1)
    return SegmentStats(cnt, centroid, cov, mean, bbox)
