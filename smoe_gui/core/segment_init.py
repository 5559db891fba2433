"""Segmentation-based initialisations: S-SMoE and AS-SMoE.

Both start from DBSCAN superpixels (:mod:`smoe_gui.core.superpixels`) and
return kernel sets ``(mu, A, log_alpha)`` plus a gray value per kernel, from
which :func:`smoe_gui.core.pipeline.initialize` computes the experts the same
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
Each segment's square bounding box (plus a margin of :data:`AS_MARGIN` px) is
cut out and resized to ``P x P`` (:data:`AS_PATCH`) pixels, and a local SMoE
is fitted to it by Adam with an L0 (hard-concrete) gate per kernel
(sparsification).  The fit starts with ``as_initial_kernels`` kernels placed
by the S-SMoE bisection of the segment; the start kernels of up to
:data:`CONTEXT_KERNELS` neighbouring segments take part in the gate, fixed,
so the segment's kernels learn their borders against the neighbours they
will meet in the global model; the loss weighs the segment's pixels 1 and
the rest of the patch :data:`CONTEXT_WEIGHT`.  After every ``as_steps``
steps a segment whose (weighted) patch PSNR is below ``as_target_db``
doubles its kernels (``as_doublings`` times at most).  Export: the
segment's kernels whose L0 gate is open, mapped back to image coordinates
(``log α`` = log of the gate).  The local fits of chunks of :data:`AS_CHUNK`
segments are independent: they run on a thread pool in this process (torch
on one thread per chunk, every core busy), or in a process pool
(``workers > 1``; ``SMOE_AS_WORKERS``) as a cluster would run them.

Kernel budget
-------------
With ``N > 0`` both methods yield exactly ``N`` kernels (when the image has at
least ``N`` pixels): S-SMoE by its allocation; AS-SMoE by merging the
superpixels down to ``N // (as_initial_kernels · 2^as_doublings)`` segments
before the local fits, so that the fits export at most ``N`` kernels even if
every segment doubles as often as allowed, then splitting the exported
kernels of largest residual error (two copies half a standard deviation
apart along the major axis) until there are ``N``.  (Should the fits export
more, the ``N`` of largest gate mass are kept.)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import cv2
import numba
import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from .superpixels import SegmentStats, segment_stats

__all__ = [
    "AS_CHUNK",
    "AS_MARGIN",
    "AS_PATCH",
    "LocalFitConfig",
    "SegmentKernels",
    "allocate_kernels",
    "as_smoe_kernels",
    "bisect_pixels",
    "s_smoe_kernels",
    "steering_from_cov",
]

F64 = NDArray[np.float64]

#: Side of the square patch each segment is resized to for its local fit (public code: 32).
AS_PATCH = 24
#: Margin (px) added to a segment's bounding box before cropping (public code: 10).
AS_MARGIN = 6
#: Segments per local-fit task (fixed, so results do not depend on the worker count).
AS_CHUNK = 48
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
    """

    mu: F64
    A: F64
    log_alpha: F64
    values: F64
    segment: NDArray[np.intp]
    notes: tuple[str, ...] = ()


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
    """``alloc[s]`` kernels for segment ``s``, by bisection (kernels ordered by segment)."""
    n_seg = stats.count.shape[0]
    if np.all(alloc == 1):
        return SegmentKernels(
            stats.centroid.copy(), steering_from_cov(stats.cov), np.zeros(n_seg),
            stats.mean.copy(), np.arange(n_seg, dtype=np.intp),
        )
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
        part[a:b] = first[s] + _bisect_ids(xs.astype(np.float64), ys.astype(np.float64), int(alloc[s]))
    k = int(first[-1])
    ys, xs = np.divmod(order, w)
    cnt = np.bincount(part, minlength=k).astype(np.float64)
    cx = np.bincount(part, xs, k) / cnt
    cy = np.bincount(part, ys, k) / cnt
    dx = xs - cx[part]
    dy = ys - cy[part]
    cov = np.empty((k, 2, 2))
    cov[:, 0, 0] = np.bincount(part, dx * dx, k) / cnt
    cov[:, 1, 1] = np.bincount(part, dy * dy, k) / cnt
    cov[:, 0, 1] = cov[:, 1, 0] = np.bincount(part, dx * dy, k) / cnt
    means = np.bincount(part, img.ravel()[order], k) / cnt
    owner = np.repeat(np.arange(n_seg, dtype=np.intp), alloc)
    return SegmentKernels(
        np.stack([cx, cy], axis=1), steering_from_cov(cov), np.zeros(k), means, owner,
    )


# --------------------------------------------------------------------------------------
# AS-SMoE: local fits
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalFitConfig:
    """Settings of the per-segment fits (from :class:`~smoe_gui.core.params.Params`)."""

    target_db: float = 30.0
    initial_kernels: int = 4
    doublings: int = 2
    steps: int = 60
    seed: int = 0


#: Hard-concrete L0 gate constants (Louizos et al. 2018; the public code's defaults).
L0_BETA, L0_GAMMA, L0_ZETA = 0.5, -0.1, 1.1
#: Gate logit whose hard-concrete gate is exactly 1 (``sigmoid(p)·(ζ-γ)+γ = 1``): every
#: kernel, own or context, starts with α = 1, as in the global model.
L0_OPEN = math.log((1.0 - L0_GAMMA) / (L0_ZETA - 1.0))
#: Learning rates of the local fits (patch px/step, 1/step).
LR_MU, LR_A, LR_M, LR_P = 0.05, 0.005, 0.003, 0.05
#: Largest number of neighbouring segments whose S-SMoE kernels form a local fit's context.
CONTEXT_KERNELS = 8
#: Largest kernel standard deviation in a local fit, as a share of the patch side.
MAX_WIDTH_SHARE = 0.25
#: Weight of the width penalty (:func:`_width_excess`).
WIDTH_WEIGHT = 10.0
#: Loss weight of the patch pixels outside the segment (its own pixels: 1).
CONTEXT_WEIGHT = 0.3
#: Weight of the L0 penalty once the patch MSE is below :data:`L0_START_MSE` (public code).
L0_WEIGHT, L0_START_MSE = 0.01, 0.004


@dataclass(frozen=True)
class _Patch:
    """One segment cut out and resized: the local fit's data (patch px units)."""

    pixels: NDArray[np.float32]   # (P, P)
    mask: NDArray[np.bool_]       # (P, P) inside the segment
    origin: tuple[float, float]   # image (x, y) of the patch's pixel-edge corner
    scale: float                  # image px per patch px
    mu0: F64                      # (k0, 2) start centres
    a0: F64                       # (k0, 3) start steering: a11, a21, a22
    m0: F64                       # (k0,) start experts
    ctx_mu: F64                   # (c, 2) fixed context kernels (neighbouring segments)
    ctx_a: F64                    # (c, 3)
    ctx_m: F64                    # (c,)


def _lower3(A: F64) -> F64:
    """(k, 3) ``a11, a21, a22`` of lower-triangular (k, 2, 2) steering matrices."""
    return np.stack([A[:, 0, 0], A[:, 1, 0], A[:, 1, 1]], axis=1)


def _crop_patch(
    img: NDArray[np.float32], labels: NDArray[np.int32], label: int, bbox: NDArray[np.int64],
    xs: F64, ys: F64, vals: F64, k0: int, ctx: tuple[F64, F64, F64],
) -> _Patch:
    h, w = img.shape
    x0, y0, x1, y1 = (int(v) for v in bbox)
    side = max(x1 - x0 + 1, y1 - y0 + 1) + 2 * AS_MARGIN
    cx = 0.5 * (x0 + x1 + 1)
    cy = 0.5 * (y0 + y1 + 1)
    ox = int(math.floor(cx - side / 2.0))
    oy = int(math.floor(cy - side / 2.0))
    cols = np.clip(np.arange(ox, ox + side), 0, w - 1)
    rows = np.clip(np.arange(oy, oy + side), 0, h - 1)
    crop = img[np.ix_(rows, cols)]
    inside_c = (np.arange(ox, ox + side) >= 0) & (np.arange(ox, ox + side) < w)
    inside_r = (np.arange(oy, oy + side) >= 0) & (np.arange(oy, oy + side) < h)
    mcrop = (labels[np.ix_(rows, cols)] == label) & inside_r[:, None] & inside_c[None, :]
    p = AS_PATCH
    interp = cv2.INTER_AREA if side >= p else cv2.INTER_LINEAR
    pix = cv2.resize(crop.astype(np.float32), (p, p), interpolation=interp)
    mask = cv2.resize(mcrop.astype(np.float32), (p, p), interpolation=interp) >= 0.5
    scale = side / p
    origin = np.array([ox - 0.5, oy - 0.5])
    # start kernels: the S-SMoE bisection of the segment's pixels
    parts = bisect_pixels(xs, ys, k0)
    mu0 = np.empty((len(parts), 2))
    cov = np.empty((len(parts), 2, 2))
    m0 = np.empty(len(parts))
    for i, part in enumerate(parts):
        px, py = xs[part], ys[part]
        mu0[i] = px.mean(), py.mean()
        dx, dy = px - mu0[i, 0], py - mu0[i, 1]
        cov[i] = np.array([[dx @ dx, dx @ dy], [dx @ dy, dy @ dy]]) / part.shape[0]
        m0[i] = vals[part].mean()
    mu0 = (mu0 - origin) / scale - 0.5
    a0 = _lower3(steering_from_cov(cov)) * scale
    if not mask.any():  # a segment thinner than a patch pixel: mark its centres
        for cx_p, cy_p in mu0:
            mask[int(np.clip(round(cy_p), 0, p - 1)), int(np.clip(round(cx_p), 0, p - 1))] = True
    ctx_mu = (ctx[0] - origin) / scale - 0.5
    return _Patch(np.asarray(pix, dtype=np.float32), mask, (ox - 0.5, oy - 0.5), scale, mu0, a0, m0,
                  ctx_mu, _lower3(ctx[1]) * scale, ctx[2])


def _l0_gate(torch: Any, p: Any) -> Any:
    return torch.clamp(torch.sigmoid(p) * (L0_ZETA - L0_GAMMA) + L0_GAMMA, 0.0, 1.0)


def _local_forward(torch: Any, grid: Any, mu: Any, a: Any, m: Any, gp: Any, active: Any) -> tuple[Any, Any]:
    """Patch reconstructions (n, P²) and gate weights (n, K, P²) of a batch of local models."""
    d = grid - mu.unsqueeze(2)                                # (n, K, P², 2)
    u0 = a[..., 0:1] * d[..., 0] + a[..., 1:2] * d[..., 1]    # (Aᵀd)_0
    u1 = a[..., 2:3] * d[..., 1]                               # (Aᵀd)_1
    gate = _l0_gate(torch, gp)
    logit = -(u0 * u0 + u1 * u1) + torch.log(gate.clamp_min(1e-12)).unsqueeze(2)
    logit = logit.masked_fill(~active.unsqueeze(2), -1e30)
    w = torch.softmax(logit, dim=1)
    return (w * m.unsqueeze(2)).sum(1), w


def _width_excess(a: Any, act: Any) -> Any:
    """Σ over kernels of ``relu(λ0 - λ_min(A Aᵀ))/λ0``, ``λ0 = 1/(2·σ_max²)``,
    ``σ_max = AS_PATCH·MAX_WIDTH_SHARE``: how far kernels are wider than a
    local fit can vouch for (a kernel wider than its patch would, in the global
    model, win the gate far outside the patch it was fitted in)."""
    q11 = a[..., 0] ** 2
    q12 = a[..., 0] * a[..., 1]
    q22 = a[..., 1] ** 2 + a[..., 2] ** 2
    half_tr = 0.5 * (q11 + q22)
    disc = (0.25 * (q11 - q22) ** 2 + q12**2 + 1e-12).sqrt()
    lam_min = half_tr - disc
    lam0 = 1.0 / (2.0 * (AS_PATCH * MAX_WIDTH_SHARE) ** 2)
    return ((lam0 - lam_min).clamp_min(0.0) / lam0 * act).sum()


def _fit_chunk(patches: Sequence[_Patch], config: LocalFitConfig) -> list[dict[str, F64]]:
    """Fit the local SMoEs of a chunk of patches (batched over segments).

    Each round trains only the segments still below the target, with as many
    kernel slots as the largest of them has.  The loss is the patch MSE,
    the segment's own pixels weighted 1 and the margin :data:`CONTEXT_WEIGHT`,
    plus the L0 penalty once a segment's MSE is below :data:`L0_START_MSE`.

    Returns, per patch, the exported kernels in patch coordinates: ``mu``
    (k, 2), ``A`` (k, 2, 2), ``log_alpha`` (k,), ``m`` (k,), ``mass`` (k,)
    (gate mass over the segment's patch pixels) and ``err`` (k,) (gate-weighted
    squared residual over them).
    """
    import torch

    torch.manual_seed(config.seed)
    p = AS_PATCH
    n = len(patches)
    kmax = config.initial_kernels * (2 ** config.doublings)
    grid = torch.stack(
        torch.meshgrid(torch.arange(p, dtype=torch.float32), torch.arange(p, dtype=torch.float32),
                       indexing="xy"), dim=-1,
    ).reshape(1, 1, p * p, 2)
    target = torch.from_numpy(np.stack([pt.pixels.reshape(-1) for pt in patches])).float()
    inside_all = torch.from_numpy(np.stack([pt.mask.reshape(-1) for pt in patches]))
    weight = torch.where(inside_all, 1.0, CONTEXT_WEIGHT)
    weight = weight / weight.sum(1, keepdim=True)
    mu = torch.zeros(n, kmax, 2)
    a = torch.zeros(n, kmax, 3)  # a11, a21, a22 of the lower-triangular A
    m = torch.zeros(n, kmax)
    gp = torch.zeros(n, kmax)  # L0 gate logits
    active = torch.zeros(n, kmax, dtype=torch.bool)
    cmax = max(1, max(pt.ctx_mu.shape[0] for pt in patches))
    c_mu = torch.zeros(n, cmax, 2)
    c_a = torch.zeros(n, cmax, 3)
    c_m = torch.zeros(n, cmax)
    c_gp = torch.full((n, cmax), L0_OPEN)  # the context's gates stay at 1
    c_act = torch.zeros(n, cmax, dtype=torch.bool)
    for i, pt in enumerate(patches):
        k = pt.mu0.shape[0]
        mu[i, :k] = torch.from_numpy(pt.mu0).float()
        a[i, :k] = torch.from_numpy(pt.a0).float()
        m[i, :k] = torch.from_numpy(pt.m0).float()
        gp[i, :k] = L0_OPEN
        active[i, :k] = True
        c = pt.ctx_mu.shape[0]
        c_mu[i, :c] = torch.from_numpy(pt.ctx_mu).float()
        c_a[i, :c] = torch.from_numpy(pt.ctx_a).float()
        c_m[i, :c] = torch.from_numpy(pt.ctx_m).float()
        c_act[i, :c] = True
    count = active.sum(1)

    def forward(idx: Any, own: Sequence[Any], act: Any) -> tuple[Any, Any]:
        """Own kernels then the fixed context kernels of the patches ``idx``."""
        both = [torch.cat([o, c[idx]], dim=1) for o, c in zip(own, (c_mu, c_a, c_m, c_gp), strict=True)]
        return _local_forward(
            torch, grid, both[0], both[1], both[2], both[3], torch.cat([act, c_act[idx]], dim=1)
        )
    todo = torch.arange(n)
    for rnd in range(config.doublings + 1):
        kr = int(count[todo].max())
        sub = [t[todo, :kr].clone().requires_grad_() for t in (mu, a, m, gp)]
        act = active[todo, :kr]
        tgt, wgt = target[todo], weight[todo]
        cnt = count[todo].float()
        opt = torch.optim.Adam(
            [{"params": [sub[0]], "lr": LR_MU}, {"params": [sub[1]], "lr": LR_A},
             {"params": [sub[2]], "lr": LR_M}, {"params": [sub[3]], "lr": LR_P}]
        )
        l0_shift = L0_BETA * math.log(-L0_GAMMA / L0_ZETA)
        for _ in range(config.steps):
            opt.zero_grad()
            recon, _ = forward(todo, sub, act)
            mse = (wgt * (recon - tgt) ** 2).sum(1)           # (n,)
            gate_pen = (torch.sigmoid(sub[3] - l0_shift) * act).sum(1)
            on = (mse.detach() < L0_START_MSE).float() * (L0_WEIGHT / cnt)
            loss = (1000.0 * mse + on * gate_pen).sum() + WIDTH_WEIGHT * _width_excess(sub[1], act)
            loss.backward()
            opt.step()
        with torch.no_grad():
            for full, part in zip((mu, a, m, gp), sub, strict=True):
                full[todo, :kr] = part.detach()
            if rnd == config.doublings:
                break
            recon, _ = forward(todo, [t[todo, :kr] for t in (mu, a, m, gp)], act)
            psnr = -10.0 * torch.log10(((wgt * (recon - tgt) ** 2).sum(1)).clamp_min(1e-12))
            todo = todo[psnr < config.target_db]
            if todo.numel() == 0:
                break
            for i in todo.tolist():
                k = int(count[i])
                # clone each kernel: the copies a quarter patch px either side of the
                # old centre, along the first column of its steering matrix
                col = torch.stack([a[i, :k, 0], a[i, :k, 1]], dim=1)
                col = col / col.norm(dim=1, keepdim=True).clamp_min(1e-12)
                mu[i, k:2 * k] = mu[i, :k] + 0.25 * col
                mu[i, :k] = mu[i, :k] - 0.25 * col
                a[i, k:2 * k] = a[i, :k]
                m[i, k:2 * k] = m[i, :k]
                gp[i, k:2 * k] = gp[i, :k]
                active[i, k:2 * k] = True
                count[i] = 2 * k
    with torch.no_grad():
        recon, w = forward(torch.arange(n), [mu, a, m, gp], active)
        gate = _l0_gate(torch, gp)
    out: list[dict[str, F64]] = []
    for i in range(n):
        k = int(count[i])
        inside = inside_all[i]
        wi = w[i, :k][:, inside].double()                       # (k, n_in)
        resid = (recon[i][inside] - target[i][inside]).double() ** 2
        mass = wi.sum(1).numpy()
        err = (wi * resid).sum(1).numpy()
        mu_i = mu[i, :k].double().numpy()
        keep = (gate[i, :k] > 0).numpy()
        if not keep.any():
            keep[int(np.argmax(mass))] = True
        a_i = a[i, :k].double().numpy()
        amat = np.zeros((k, 2, 2))
        amat[:, 0, 0] = a_i[:, 0]
        amat[:, 1, 0] = a_i[:, 1]
        amat[:, 1, 1] = a_i[:, 2]
        out.append({
            "mu": mu_i[keep], "A": amat[keep],
            "log_alpha": np.log(gate[i, :k].double().numpy()[keep]),
            "m": m[i, :k].double().numpy()[keep], "mass": mass[keep], "err": err[keep],
        })
    return out


def _fit_chunk_task(args: tuple[Sequence[_Patch], LocalFitConfig]) -> list[dict[str, F64]]:
    """Process-pool task: one chunk, torch on one thread."""
    from .threads import set_threads

    set_threads(1)
    return _fit_chunk(args[0], args[1])


def _fit_in_process(chunks: Sequence[Sequence[_Patch]], config: LocalFitConfig) -> list[dict[str, F64]]:
    """The chunks on a thread pool, one thread per core, torch on one thread each.

    Torch releases the GIL inside its operations, and these are small, so
    chunk-level threads use the cores far better than torch's intra-op
    threads; the previous torch thread count is restored afterwards.
    """
    import torch

    from .threads import default_threads, set_threads

    previous = torch.get_num_threads()
    set_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(default_threads(), len(chunks)))) as pool:
            parts = list(pool.map(lambda c: _fit_chunk(c, config), chunks))
    finally:
        set_threads(previous)
    return [r for part in parts for r in part]


def default_workers() -> int:
    """Worker processes for the local fits: ``SMOE_AS_WORKERS`` if set to a
    positive integer, else 1 (in this process, torch on every core)."""
    value = os.environ.get("SMOE_AS_WORKERS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 1


def as_smoe_kernels(
    image: NDArray[np.floating],
    labels: NDArray[np.int32],
    config: LocalFitConfig,
    n_kernels: int = 0,
    workers: int | None = None,
) -> SegmentKernels:
    """AS-SMoE kernels of ``image`` over the segments ``labels`` (module doc).

    Parameters
    ----------
    image : (H, W) float
    labels : (H, W) int32
        Segments ``0 .. S-1``.
    config : LocalFitConfig
    n_kernels : int
        Kernel budget (0: as many as the local fits export).
    workers : int, optional
        Processes for the local fits (default :func:`default_workers`; 1: in
        this process).  The result does not depend on it beyond float
        rounding of torch's threaded reductions.

    Returns
    -------
    SegmentKernels
    """
    img = np.ascontiguousarray(image, dtype=np.float32)
    h, w = img.shape
    stats: SegmentStats = segment_stats(labels, img)
    n_seg = stats.count.shape[0]
    order, starts = _segment_pixels(labels)
    vals = img.ravel().astype(np.float64)
    # context: the start kernels of the neighbouring segments
    start_k = _kernels_for_allocation(
        img.astype(np.float64), labels, stats,
        np.minimum(config.initial_kernels, stats.count).astype(np.int64),
    )
    k_first = np.searchsorted(start_k.segment, np.arange(n_seg + 1))
    tree = cKDTree(stats.centroid)
    patches: list[_Patch] = []
    for s in range(n_seg):
        pix = order[starts[s]:starts[s + 1]]
        ys, xs = np.divmod(pix, w)
        x0, y0, x1, y1 = (int(v) for v in stats.bbox[s])
        reach = max(x1 - x0 + 1, y1 - y0 + 1) / 2.0 + AS_MARGIN
        k_near = min(CONTEXT_KERNELS + 1, n_seg)
        dist, near = tree.query(
            [0.5 * (x0 + x1), 0.5 * (y0 + y1)], k=k_near, p=np.inf, distance_upper_bound=2.0 * reach
        )
        near = np.atleast_1d(near)[np.isfinite(np.atleast_1d(dist))]
        near = near[near != s][:CONTEXT_KERNELS]
        ctx = np.concatenate([np.arange(k_first[t], k_first[t + 1]) for t in near]).astype(np.intp) \
            if near.size else np.zeros(0, dtype=np.intp)
        patches.append(_crop_patch(
            img, labels, s, stats.bbox[s], xs.astype(np.float64), ys.astype(np.float64),
            vals[pix], config.initial_kernels,
            (start_k.mu[ctx], start_k.A[ctx], start_k.values[ctx]),
        ))
    chunks = [patches[i:i + AS_CHUNK] for i in range(0, n_seg, AS_CHUNK)]
    nw = default_workers() if workers is None else int(workers)
    if nw < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    results: list[dict[str, F64]] = []
    if nw == 1 or len(chunks) == 1:
        results = _fit_in_process(chunks, config)
    else:
        with ProcessPoolExecutor(max_workers=min(nw, len(chunks)), mp_context=get_context("spawn")) as pool:
            for part in pool.map(_fit_chunk_task, [(c, config) for c in chunks]):
                results.extend(part)
    mus, amats, las, ms, mass, err, owner = [], [], [], [], [], [], []
    for s, (pt, res) in enumerate(zip(patches, results, strict=True)):
        sc = pt.scale
        mus.append(pt.origin + (res["mu"] + 0.5) * sc)
        amats.append(res["A"] / sc)
        las.append(res["log_alpha"])
        ms.append(res["m"])
        mass.append(res["mass"] * sc * sc)
        err.append(res["err"] * sc * sc)
        owner.append(np.full(res["mu"].shape[0], s, dtype=np.intp))
    mu = np.concatenate(mus)
    A = np.concatenate(amats)
    la = np.concatenate(las)
    m = np.clip(np.concatenate(ms), 0.0, 1.0)
    gmass = np.concatenate(mass)
    gerr = np.concatenate(err)
    seg = np.concatenate(owner)
    notes: list[str] = []
    exported = mu.shape[0]
    if n_kernels > 0 and exported > n_kernels:
        keep = np.sort(np.argsort(-gmass, kind="stable")[:n_kernels])
        mu, A, la, m, seg = mu[keep], A[keep], la[keep], m[keep], seg[keep]
        notes.append(f"AS-SMoE: local fits exported {exported} kernels; kept the {n_kernels} of largest gate mass")
    elif n_kernels > 0 and exported < n_kernels:
        mu, A, la, m, seg = _split_kernels(mu, A, la, m, seg, gerr, n_kernels - exported)
        notes.append(f"AS-SMoE: local fits exported {exported} kernels; split {n_kernels - exported} "
                     "of largest residual to meet the budget")
    mu[:, 0] = np.clip(mu[:, 0], -0.5, w - 0.5)
    mu[:, 1] = np.clip(mu[:, 1], -0.5, h - 0.5)
    return SegmentKernels(mu, A, la, m, seg, tuple(notes))


def _split_kernels(
    mu: F64, A: F64, la: F64, m: F64, seg: NDArray[np.intp], err: F64, extra: int
) -> tuple[F64, F64, F64, F64, NDArray[np.intp]]:
    """Split ``extra`` kernels (largest ``err`` first, repeatedly if needed) in two."""
    while extra > 0:
        k = mu.shape[0]
        take = np.sort(np.argsort(-err, kind="stable")[:min(extra, k)])
        # major axis of Σ⁻¹-Gaussian: eigenvector of the smallest eigenvalue of A Aᵀ
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

