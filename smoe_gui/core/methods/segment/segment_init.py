"""Segmentation-based initialisations: S-SMoE and AS-SMoE.

Both start from DBSCAN superpixels (:mod:`smoe_gui.core.methods.segment.superpixels`) and
return kernel sets ``(mu, A, log_alpha)`` plus a gray value per kernel, from
which :func:`smoe_gui.core.methods.pipeline.initialize` computes the experts the same
way for every method.  The readings of the papers and of the authors' public
code (github yihsinli/AS-SMoE) are in ``docs/paper-readings.md``.

S-SMoE (Li, Sjöström, Knorr, Sikora, VCIP 2023)
-----------------------------------------------
One kernel per superpixel: centre at the segment's centroid, steering from
the covariance ``C`` of its pixel coordinates (``A Aᵀ = C⁻¹/2``, so the gate
falls off as the Gaussian of covariance ``C``), expert from its mean gray
value.  With a kernel budget ``N`` the superpixels are first merged down to at
most ``N``; the ``N`` kernels are then allocated over the segments (each gets
one, the rest go by largest remainder in proportion to
``count·(std + 0.02)``: big and busy segments get more), and a segment with
``n`` kernels is cut into ``n`` parts by recursive bisection along the
principal axis of its pixels, each part giving one kernel as above.

AS-SMoE (Li, Knorr, Sjöström, Sikora, arXiv 2409.10101)
--------------------------------------------------------
Local SMoE fits per segment decide the kernels' positions, steering, experts
and weights; the local models are then one global initialisation.

* **Start**: with a kernel budget ``N`` the S-SMoE allocation and bisection
  above (so every segment's kernel count follows its size and activity);
  without one ``as_initial_kernels`` bisection kernels per segment.
* **Pieces**: a segment with more than :data:`PIECE_KERNELS` kernels is fitted
  in pieces of that many consecutive bisection parts (compact), so that a
  window keeps enough pixels per kernel.
* **Window** (public code): the piece's square bounding box plus
  :data:`AS_MARGIN` px, resized to ``P x P`` (:data:`AS_PATCH`).
* **Local fit** (:func:`fit_local_chunk`): the piece's kernels (centres,
  steering, experts, L0 hard-concrete gates) are trained by Adam under one
  softmax gate with the *current* kernels of the other pieces near the window
  (fixed context), on the window's pixels within :data:`AS_MARGIN` px of the
  piece; the L0 penalty of the public code switches on once the MSE is below
  0.004 and prunes kernels whose gate closes.  Without a budget a window whose
  PSNR over its piece is below ``as_target_db`` doubles its kernels after each
  round of ``as_steps`` steps (``as_doublings`` times at most), as the public
  code does.  A fit is kept only if it lowers its window's MSE.
* **Rounds**: pieces closer than :data:`CONFLICT_REACH` px get different
  colours (greedy graph colouring); the pieces of one colour are fitted at
  the same time (they share neither loss pixels nor context) and the next
  colour sees their results, so the local fits compose into one global gate
  (a block Gauss-Seidel pass over the image).
* **Export**: every kept kernel, mapped back to image coordinates, with
  ``log α`` = log of its L0 gate and the fitted expert as the expert stage's
  start value.
* **Where the fits run** (:class:`LocalFitRunner`): chunks of
  :data:`AS_CHUNK` fits on a thread pool in this process, a process pool
  (``workers > 1``; ``SMOE_AS_WORKERS``), or, inside a Dask task, the task's
  cluster.  The chunks are fixed and each runs torch on one thread, seeded,
  so the result does not depend on where they run.

Kernel budget
-------------
With ``N > 0`` both methods yield exactly ``N`` kernels (when the image has at
least ``N`` pixels): S-SMoE by its allocation; AS-SMoE starts from the same
allocation, and the kernels its L0 sparsification removes are given back by
splitting the kept kernels of largest residual error (two copies half a
standard deviation apart along the major axis).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numba
import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import find_objects
from scipy.spatial import cKDTree

from ...work import WorkHooks, current_hooks
from .local_fit import (
    AS_CHUNK,
    AS_MARGIN,
    AS_PATCH,
    CONFLICT_REACH,
    CONTEXT_REACH,
    PIECE_KERNELS,
    LocalFitConfig,
    LocalFitRunner,
    LocalTask,
    _from3,
    _lower3,
    default_workers,
    fit_local_chunk,
    warm_torch,
)
from .superpixels import SegmentStats, pixel_moments, segment_stats

#: Without a kernel budget, AS-SMoE warns (:class:`~smoe_gui.core.work.WorkHooks` ``note``)
#: before fitting when the kernels could reach this many after the doublings.
WARN_KERNELS = 1000

__all__ = [
    "AS_CHUNK",
    "AS_MARGIN",
    "AS_PATCH",
    "LocalFitConfig",
    "LocalFitRunner",
    "WARN_KERNELS",
    "LocalTask",
    "SegmentKernels",
    "allocate_kernels",
    "as_smoe_kernels",
    "bisect_pixels",
    "fit_local_chunk",
    "s_smoe_kernels",
    "steering_from_cov",
]

F64 = NDArray[np.float64]

#: Smallest variance (px²) of a kernel along any axis; keeps one-pixel-wide parts finite.
MIN_VARIANCE = 0.25
#: Variance of a uniform unit pixel (px²), added to every part's coordinate covariance.
PIXEL_VARIANCE = 1.0 / 12.0


@dataclass(frozen=True)
class SegmentKernels:
    """Kernels of a segment-based initialisation.

    Attributes
    ----------
    mu : (K, 2) float64
        Centres ``(x, y)`` (px).
    A : (K, 2, 2) float64
        Steering matrices (1/px), lower triangular.
    log_alpha : (K,) float64
    values : (K,) float64
        The gray value each kernel's expert starts from (the mean over its
        pixels for S-SMoE, the local fit's expert for AS-SMoE).
    segment : (K,) intp
        The segment each kernel belongs to.
    notes : tuple of str
    pixel_kernel : (H·W,) int64 or None
        The kernel whose part each pixel is in (row-major), where the kernels
        partition the pixels (S-SMoE); ``None`` otherwise.  A colour image's
        experts start from each part's mean colour through it.
    """

    mu: F64
    A: F64
    log_alpha: F64
    values: F64
    segment: NDArray[np.intp]
    notes: tuple[str, ...] = ()
    pixel_kernel: NDArray[np.int64] | None = None


# --------------------------------------------------------------------------------------
# S-SMoE
# --------------------------------------------------------------------------------------
def steering_from_cov(cov: F64) -> F64:
    """Steering matrices whose gate is the Gaussian of covariance ``cov``.

    ``A Aᵀ = C⁻¹/2`` with ``C = cov + I/12`` and eigenvalues of ``C`` floored
    at :data:`MIN_VARIANCE`; ``A`` is the lower Cholesky factor.

    Parameters
    ----------
    cov : (K, 2, 2) float64
        Coordinate covariances (px²).

    Returns
    -------
    (K, 2, 2) float64
    """
    c = np.asarray(cov, dtype=np.float64).reshape(-1, 2, 2)
    c = 0.5 * (c + np.swapaxes(c, 1, 2)) + PIXEL_VARIANCE * np.eye(2)
    val, vec = np.linalg.eigh(c)
    val = np.maximum(val, MIN_VARIANCE)
    q = np.einsum("kij,kj,klj->kil", vec, 0.5 / val, vec)
    q = 0.5 * (q + np.swapaxes(q, 1, 2))
    return np.ascontiguousarray(np.linalg.cholesky(q))


@numba.njit(cache=True, nogil=True)
def _bisect_ids(xs: np.ndarray, ys: np.ndarray, parts: int) -> np.ndarray:
    n_pix = xs.shape[0]
    piece = np.zeros(n_pix, dtype=np.int64)
    # stack of (start, stop, pieces, first piece id) over a permutation `perm`
    perm = np.arange(n_pix)
    st_a = np.empty(2 * parts + 2, dtype=np.int64)
    st_b = np.empty(2 * parts + 2, dtype=np.int64)
    st_n = np.empty(2 * parts + 2, dtype=np.int64)
    st_id = np.empty(2 * parts + 2, dtype=np.int64)
    top = 0
    st_a[0], st_b[0], st_n[0], st_id[0] = 0, n_pix, parts, 0
    top = 1
    while top > 0:
        top -= 1
        a, b, n, first = st_a[top], st_b[top], st_n[top], st_id[top]
        size = b - a
        if n <= 1 or size <= 1:
            for i in range(a, b):
                piece[perm[i]] = first
            continue
        mx = 0.0
        my = 0.0
        for i in range(a, b):
            mx += xs[perm[i]]
            my += ys[perm[i]]
        mx /= size
        my /= size
        sxx = 0.0
        syy = 0.0
        sxy = 0.0
        for i in range(a, b):
            dx = xs[perm[i]] - mx
            dy = ys[perm[i]] - my
            sxx += dx * dx
            syy += dy * dy
            sxy += dx * dy
        angle = 0.5 * math.atan2(2.0 * sxy, sxx - syy)
        c = math.cos(angle)
        s = math.sin(angle)
        proj = np.empty(size)
        for i in range(size):
            j = perm[a + i]
            proj[i] = (xs[j] - mx) * c + (ys[j] - my) * s
        order = np.argsort(proj, kind="mergesort")
        seg = perm[a:b].copy()
        for i in range(size):
            perm[a + i] = seg[order[i]]
        left = n // 2
        cut = int(round(size * left / n))
        cut = min(max(cut, left), size - (n - left))
        st_a[top], st_b[top], st_n[top], st_id[top] = a + cut, b, n - left, first + left
        top += 1
        st_a[top], st_b[top], st_n[top], st_id[top] = a, a + cut, left, first
        top += 1
    return piece


def bisect_pixels(xs: F64, ys: F64, parts: int) -> list[NDArray[np.intp]]:
    """Cut a pixel set into ``parts`` pieces by recursive principal-axis bisection.

    A set to be cut into ``n`` pieces is sorted (stable) by its pixels'
    projections on their principal axis and cut at the ``floor(n/2)/n``
    quantile; each side is cut again into ``floor(n/2)`` and ``ceil(n/2)``
    pieces.  Every piece is non-empty when ``parts <= len(xs)``.  Compiled
    with numba.

    Returns
    -------
    list of (n_i,) intp
        Indices into ``xs``/``ys``: ``min(parts, len(xs))`` lists, each
        sorted ascending.
    """
    parts = max(1, min(int(parts), xs.shape[0]))
    ids = _bisect_ids(np.ascontiguousarray(xs, dtype=np.float64),
                      np.ascontiguousarray(ys, dtype=np.float64), parts)
    order = np.argsort(ids, kind="stable")
    bounds = np.searchsorted(ids[order], np.arange(parts + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(parts)]


def allocate_kernels(count: NDArray[np.int64], std: F64, total: int) -> NDArray[np.int64]:
    """Kernels per segment: one each, the rest by largest remainder ∝ ``count·(std + 0.02)``.

    A segment never gets more kernels than pixels.  ``total`` must be at least
    the number of segments.

    Returns
    -------
    (S,) int64 summing to ``min(total, count.sum())``.
    """
    s = count.shape[0]
    total = int(min(total, int(count.sum())))
    if total < s:
        raise ValueError(f"cannot give {s} segments one kernel each out of {total}")
    alloc = np.ones(s, dtype=np.int64)
    rest = total - s
    cap = count.astype(np.int64)
    while rest > 0:
        room = cap - alloc
        weight = count * (std + 0.02) * (room > 0)
        if weight.sum() <= 0:
            break
        share = weight / weight.sum() * rest
        add = np.minimum(np.floor(share).astype(np.int64), room)
        left = rest - int(add.sum())
        if left > 0:
            frac = np.where(room - add > 0, share - np.floor(share), -1.0)
            order = np.argsort(-frac, kind="stable")[:left]
            order = order[frac[order] >= 0]
            add[order] += 1
        if add.sum() == 0:
            break
        alloc += add
        rest -= int(add.sum())
    return alloc


def _segment_pixels(labels: NDArray[np.int32]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Pixel indices sorted by segment (stable) and the start of each segment's run."""
    flat = labels.ravel()
    order = np.argsort(flat, kind="stable")
    starts = np.searchsorted(flat[order], np.arange(int(flat.max()) + 2))
    return order, starts


def s_smoe_kernels(
    image: NDArray[np.floating], labels: NDArray[np.int32], n_kernels: int = 0
) -> SegmentKernels:
    """S-SMoE kernels of ``image`` over the segments ``labels`` (module doc).

    Parameters
    ----------
    image : (H, W) float
    labels : (H, W) int32
        Segments ``0 .. S-1``.
    n_kernels : int
        Kernel budget (0: one kernel per segment); at least S.

    Returns
    -------
    SegmentKernels
    """
    img = np.asarray(image, dtype=np.float64)
    stats = segment_stats(labels, img)
    n_seg = stats.count.shape[0]
    if n_kernels <= 0:
        alloc = np.ones(n_seg, dtype=np.int64)
    else:
        var = np.bincount(labels.ravel(), img.ravel() ** 2, n_seg) / stats.count - stats.mean**2
        alloc = allocate_kernels(stats.count, np.sqrt(np.maximum(var, 0.0)), n_kernels)
    return _kernels_for_allocation(img, labels, stats, alloc)


def _kernels_for_allocation(
    img: F64, labels: NDArray[np.int32], stats: SegmentStats, alloc: NDArray[np.int64]
) -> SegmentKernels:
    """``alloc[s]`` kernels for segment ``s``, by bisection (kernels ordered by segment),
    with the kernel of every pixel (``pixel_kernel``)."""
    kernels, pixel_part = _allocation_parts(img, labels, stats, alloc)
    return dataclasses.replace(kernels, pixel_kernel=pixel_part)


def _allocation_parts(
    img: F64, labels: NDArray[np.int32], stats: SegmentStats, alloc: NDArray[np.int64]
) -> tuple[SegmentKernels, NDArray[np.int64]]:
    """:func:`_kernels_for_allocation` and the kernel (part) of every pixel, ``(H·W,)``
    in row-major pixel order."""
    n_seg = stats.count.shape[0]
    if np.all(alloc == 1):
        return SegmentKernels(
            stats.centroid.copy(), steering_from_cov(stats.cov), np.zeros(n_seg),
            stats.mean.copy(), np.arange(n_seg, dtype=np.intp),
        ), labels.ravel().astype(np.int64)
    w = img.shape[1]
    order, starts = _segment_pixels(labels)
    alloc = np.minimum(alloc, stats.count).astype(np.int64)
    first = np.concatenate([[0], np.cumsum(alloc)])  # first kernel of each segment
    part = np.empty(order.shape[0], dtype=np.int64)  # kernel of each pixel (in `order`)
    for s in range(n_seg):
        a, b = starts[s], starts[s + 1]
        if alloc[s] == 1:
            part[a:b] = first[s]
            continue
        ys, xs = np.divmod(order[a:b], w)
        part[a:b] = first[s] + _bisect_ids(
            xs.astype(np.float64), ys.astype(np.float64), int(alloc[s])
        )
    k = int(first[-1])
    ys, xs = np.divmod(order, w)
    _, centres, cov, means = pixel_moments(part, xs, ys, img.ravel()[order], k)
    owner = np.repeat(np.arange(n_seg, dtype=np.intp), alloc)
    pixel_part = np.empty_like(part)
    pixel_part[order] = part
    return SegmentKernels(
        centres,
        steering_from_cov(cov),
        np.zeros(k),
        means,
        owner,
    ), pixel_part


# --------------------------------------------------------------------------------------
# AS-SMoE: local fits
# --------------------------------------------------------------------------------------


def _colour_graph(neighbours: Sequence[NDArray[np.int64]]) -> NDArray[np.int64]:
    """Greedy colouring in index order: no two neighbours share a colour."""
    n = len(neighbours)
    colour = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        used = set(colour[neighbours[i]].tolist())
        c = 0
        while c in used:
            c += 1
        colour[i] = c
    return colour


@dataclass(frozen=True)
class _PieceGeometry:
    """A piece's square window (origin ``ox, oy`` and ``side``, image px) and the
    distance (px) of every pixel of the window grown by :data:`CONTEXT_REACH` to
    the piece (``dist``, origin ``ox - R, oy - R``)."""

    ox: int
    oy: int
    side: int
    dist: NDArray[np.float32]
    neighbours: NDArray[np.int64]


def _piece_geometry(piece_map: NDArray[np.int64], i: int, box: NDArray[np.int64]) -> _PieceGeometry:
    h, w = piece_map.shape
    x0, y0, x1, y1 = (int(v) for v in box)
    side = max(x1 - x0 + 1, y1 - y0 + 1) + 2 * AS_MARGIN
    ox = int(math.floor(0.5 * (x0 + x1 + 1) - side / 2.0))
    oy = int(math.floor(0.5 * (y0 + y1 + 1) - side / 2.0))
    r = int(math.ceil(CONFLICT_REACH))
    xs = np.arange(ox - r, ox + side + r)
    ys = np.arange(oy - r, oy + side + r)
    inside = ((ys >= 0) & (ys < h))[:, None] & ((xs >= 0) & (xs < w))[None, :]
    lab = np.where(inside, piece_map[np.ix_(np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1))], -1)
    dist = cv2.distanceTransform((lab != i).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    near = lab[(dist <= CONFLICT_REACH) & (lab >= 0)]
    neighbours = np.unique(near[near != i]).astype(np.int64)
    return _PieceGeometry(ox, oy, side, dist, neighbours)


def _cut_window(
    img: NDArray[np.float32], piece_map: NDArray[np.int64], i: int, geo: _PieceGeometry
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_], tuple[float, float], float]:
    """A piece's window resized to :data:`AS_PATCH`: pixels, loss weight (in the
    image and within :data:`AS_MARGIN` px of the piece), piece mask, ``x0``
    (image coordinates of patch pixel (0, 0)) and scale (image px per patch px)."""
    h, w = img.shape
    ox, oy, side = geo.ox, geo.oy, geo.side
    xs = np.arange(ox, ox + side)
    ys = np.arange(oy, oy + side)
    cols = np.clip(xs, 0, w - 1)
    rows = np.clip(ys, 0, h - 1)
    in_img = ((ys >= 0) & (ys < h))[:, None] & ((xs >= 0) & (xs < w))[None, :]
    r = int(math.ceil(CONFLICT_REACH))
    dist = geo.dist[r : r + side, r : r + side]
    crop = img[np.ix_(rows, cols)]
    mcrop = ((piece_map[np.ix_(rows, cols)] == i) & in_img).astype(np.float32)
    near = (in_img & (dist <= AS_MARGIN)).astype(np.float32)
    p = AS_PATCH
    interp = cv2.INTER_AREA if side >= p else cv2.INTER_LINEAR
    pix = cv2.resize(crop, (p, p), interpolation=interp)
    wgt = cv2.resize(near, (p, p), interpolation=interp)
    inside = cv2.resize(mcrop, (p, p), interpolation=interp) >= 0.5
    scale = side / p
    corner = (ox - 0.5 + 0.5 * scale, oy - 0.5 + 0.5 * scale)
    return pix.astype(np.float32), wgt.astype(np.float32), inside, corner, scale


def as_smoe_kernels(
    image: NDArray[np.floating],
    labels: NDArray[np.int32],
    config: LocalFitConfig,
    n_kernels: int = 0,
    workers: int | None = None,
    hooks: WorkHooks | None = None,
) -> SegmentKernels:
    """AS-SMoE kernels of ``image`` over the segments ``labels`` (module doc).

    Parameters
    ----------
    image : (H, W) float
    labels : (H, W) int32
        Segments ``0 .. S-1``.
    config : LocalFitConfig
    n_kernels : int
        Kernel budget (0: the local fits decide the count); at least S.
    workers : int, optional
        Processes for the local fits (default :func:`default_workers`; 1: in
        this process).  Inside a Dask task the fits go to its cluster
        (:class:`LocalFitRunner`).  The result does not depend on where the
        fits run.
    hooks : WorkHooks, optional
        Progress ``(local fits done, local fits in all)``, reported as each
        chunk of :data:`AS_CHUNK` fits ends; a cancel callback (the fits stop
        within a step, about 0.1 s, and :class:`~smoe_gui.core.work.Cancelled`
        is raised); a note when, without a budget, at least
        :data:`WARN_KERNELS` kernels are about to be fitted.  Default: those
        set by :func:`smoe_gui.core.work.reporting`.

    Returns
    -------
    SegmentKernels

    Raises
    ------
    smoe_gui.core.work.Cancelled
        When the cancel callback asked to stop.
    """
    hooks = current_hooks() if hooks is None else hooks
    hooks.check()
    img = np.ascontiguousarray(image, dtype=np.float32)
    img64 = img.astype(np.float64)
    h, w = img.shape
    stats: SegmentStats = segment_stats(labels, img)
    n_seg = stats.count.shape[0]
    nw = default_workers() if workers is None else int(workers)
    if nw < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if n_kernels > 0:
        var = np.bincount(labels.ravel(), img64.ravel() ** 2, n_seg) / stats.count - stats.mean**2
        alloc = allocate_kernels(stats.count, np.sqrt(np.maximum(var, 0.0)), n_kernels)
        grow = False
    else:
        alloc = np.minimum(config.initial_kernels, stats.count).astype(np.int64)
        grow = config.doublings > 0
    start, pixel_part = _allocation_parts(img64, labels, stats, alloc)
    # pieces: groups of at most PIECE_KERNELS consecutive bisection parts of a segment
    first = np.concatenate([[0], np.cumsum(np.minimum(alloc, stats.count))])
    piece_of_kernel = np.empty(start.mu.shape[0], dtype=np.int64)
    piece_segment: list[int] = []
    for s in range(n_seg):
        k = int(first[s + 1] - first[s])
        groups = -(-k // PIECE_KERNELS)
        piece_of_kernel[first[s] : first[s + 1]] = len(piece_segment) + (np.arange(k) * groups) // k
        piece_segment.extend([s] * groups)
    n_piece = len(piece_segment)
    piece_map = piece_of_kernel[pixel_part].reshape(h, w)
    boxes = np.empty((n_piece, 4), dtype=np.int64)
    for i, sl in enumerate(find_objects(piece_map + 1, max_label=n_piece)):
        assert sl is not None
        boxes[i] = (sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1)
    # windows (square, as the public code's patches) and their colours: pieces
    # within AS_MARGIN + CONTEXT_REACH px of each other get different colours, so
    # the fits of one colour share neither pixels nor context
    geos = [_piece_geometry(piece_map, i, boxes[i]) for i in range(n_piece)]
    colour = _colour_graph([g.neighbours for g in geos])
    rr = int(math.ceil(CONFLICT_REACH))
    # the kernels of every piece (image coordinates), updated colour by colour
    own: list[dict[str, F64]] = []
    for i in range(n_piece):
        idx = np.nonzero(piece_of_kernel == i)[0]
        own.append(
            {
                "mu": start.mu[idx],
                "A": start.A[idx],
                "m": start.values[idx],
                "la": start.log_alpha[idx],
                "err": np.zeros(idx.shape[0]),
            }
        )
    kept = 0
    n_start = int(start.mu.shape[0])
    if n_kernels <= 0 and n_start * 2 ** (config.doublings if grow else 0) >= WARN_KERNELS:
        hooks.warn(
            f"AS-SMoE without a kernel budget (N = 0): {n_seg:,} segments, {n_start:,} "
            f"kernels to start, up to {n_start * 2 ** config.doublings:,} after the local "
            f"fits' doublings, in {n_piece:,} local fits (minutes); a budget "
            "(n_kernels, e.g. 2000) bounds both"
        )
    warm_torch()  # seconds of imports once per process: before the first report, not amid it
    hooks.check()
    fitted = 0
    hooks.report(0, n_piece)

    def chunk_done(n: int) -> None:
        nonlocal fitted
        fitted += n
        hooks.report(fitted, n_piece)

    with LocalFitRunner(nw) as runner:
        for c in range(int(colour.max()) + 1 if n_piece else 0):
            hooks.check()
            members = np.nonzero(colour == c)[0]
            owner_all = np.concatenate([np.full(o["mu"].shape[0], i) for i, o in enumerate(own)])
            mu_all = np.concatenate([o["mu"] for o in own])
            a_all = np.concatenate([o["A"] for o in own])
            m_all = np.concatenate([o["m"] for o in own])
            la_all = np.concatenate([o["la"] for o in own])
            tree = cKDTree(mu_all)
            tasks: list[LocalTask] = []
            for i in members.tolist():
                hooks.check()
                geo = geos[i]
                pix, wgt, inside, corner, scale = _cut_window(img, piece_map, i, geo)
                half_side = 0.5 * geo.side + rr
                near = np.asarray(
                    tree.query_ball_point(
                        [geo.ox - 0.5 + 0.5 * geo.side, geo.oy - 0.5 + 0.5 * geo.side],
                        r=half_side,
                        p=np.inf,
                    ),
                    dtype=np.intp,
                )
                near = np.sort(near[owner_all[near] != i])
                gx = np.clip(
                    np.rint(mu_all[near, 0]).astype(np.int64) - (geo.ox - rr),
                    0,
                    geo.dist.shape[1] - 1,
                )
                gy = np.clip(
                    np.rint(mu_all[near, 1]).astype(np.int64) - (geo.oy - rr),
                    0,
                    geo.dist.shape[0] - 1,
                )
                near = near[geo.dist[gy, gx] <= AS_MARGIN + CONTEXT_REACH]
                org = np.asarray(corner)
                o = own[i]
                tasks.append(
                    LocalTask(
                        pix,
                        wgt,
                        inside,
                        corner,
                        scale,
                        (o["mu"] - org) / scale,
                        _lower3(o["A"]) * scale,
                        o["m"],
                        o["la"],
                        (mu_all[near] - org) / scale,
                        _lower3(a_all[near]) * scale,
                        m_all[near],
                        la_all[near],
                        grow,
                    )
                )
            chunks = [tasks[j : j + AS_CHUNK] for j in range(0, len(tasks), AS_CHUNK)]
            results = [
                r for part in runner.map(chunks, config, chunk_done, hooks.cancel) for r in part
            ]
            for i, task, res in zip(members.tolist(), tasks, results, strict=True):
                org = np.asarray(task.x0)
                kept += int(res["kept"])
                own[i] = {
                    "mu": org + res["mu"] * task.scale,
                    "A": _from3(res["a"]) / task.scale,
                    "m": res["m"],
                    "la": res["la"],
                    "err": res["err"] * task.scale**2,
                }
    mu = np.concatenate([o["mu"] for o in own])
    A = np.concatenate([o["A"] for o in own])
    la = np.concatenate([o["la"] for o in own])
    m = np.clip(np.concatenate([o["m"] for o in own]), 0.0, 1.0)
    gerr = np.concatenate([o["err"] for o in own])
    seg = np.concatenate(
        [np.full(o["mu"].shape[0], piece_segment[i], dtype=np.intp) for i, o in enumerate(own)]
    )
    notes = [
        f"AS-SMoE: {n_piece} local fits in {int(colour.max()) + 1 if n_piece else 0} rounds "
        f"({runner.kind}); {kept} kept"
    ]
    exported = mu.shape[0]
    if n_kernels > 0 and exported > n_kernels:
        keep = np.sort(np.argsort(gerr, kind="stable")[::-1][:n_kernels])
        mu, A, la, m, seg = mu[keep], A[keep], la[keep], m[keep], seg[keep]
        notes.append(f"AS-SMoE: local fits exported {exported} kernels; kept {n_kernels}")
    elif n_kernels > 0 and exported < n_kernels:
        mu, A, la, m, seg = _split_kernels(mu, A, la, m, seg, gerr, n_kernels - exported)
        notes.append(
            f"AS-SMoE: local fits exported {exported} kernels (L0 sparsification); split "
            f"{n_kernels - exported} of largest residual to meet the budget"
        )
    mu[:, 0] = np.clip(mu[:, 0], -0.5, w - 0.5)
    mu[:, 1] = np.clip(mu[:, 1], -0.5, h - 0.5)
    return SegmentKernels(mu, A, la, m, seg, tuple(notes))


def _split_kernels(
    mu: F64, A: F64, la: F64, m: F64, seg: NDArray[np.intp], err: F64, extra: int
) -> tuple[F64, F64, F64, F64, NDArray[np.intp]]:
    """Split ``extra`` kernels (largest ``err`` first, repeatedly if needed) in two."""
    while extra > 0:
        k = mu.shape[0]
        take = np.sort(np.argsort(-err, kind="stable")[: min(extra, k)])
        # major axis of the kernel's Gaussian: eigenvector of the smallest eigenvalue of A Aᵀ
        q = np.einsum("kij,klj->kil", A[take], A[take])
        val, vec = np.linalg.eigh(q)
        sd = np.sqrt(0.5 / np.maximum(val[:, 0], 1e-12))
        off = 0.5 * sd[:, None] * vec[:, :, 0]
        new_mu = mu[take] + off
        mu = mu.copy()
        mu[take] -= off
        mu = np.concatenate([mu, new_mu])
        A = np.concatenate([A, A[take]])
        la = np.concatenate([la, la[take]])
        m = np.concatenate([m, m[take]])
        seg = np.concatenate([seg, seg[take]])
        err = err.copy()
        err[take] *= 0.5
        err = np.concatenate([err, err[take]])
        extra -= take.shape[0]
    return mu, A, la, m, seg
