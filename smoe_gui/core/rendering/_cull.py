"""Compiled (numba) culling: bounds of the quadratic form over a block's box and the
per-block kernel lists (``docs/rendering.md``, "Culling")."""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

from ._common import _INF

__all__ = ["box_bounds", "build_lists"]

#: Relative safety margin applied to every computed quadratic-form bound, so
#: that floating-point rounding can never turn a bound into a non-bound.
_REL_SAFETY = 1e-12



# --------------------------------------------------------------------------
# bounds of the quadratic form over a box
# --------------------------------------------------------------------------


@nb.njit(inline="always", cache=True)
def _q(s11: float, s12: float, s22: float, dx: float, dy: float) -> float:
    return s11 * dx * dx + 2.0 * s12 * dx * dy + s22 * dy * dy


@nb.njit(inline="always", cache=True)
def _qscale(s11: float, s22: float, dx: float, dy: float) -> float:
    # |every term| of q is at most this (|s12| <= sqrt(s11 s22)): the rounding scale
    return s11 * dx * dx + s22 * dy * dy


@nb.njit(inline="always", cache=True)
def _qmax_box(
    s11: float, s12: float, s22: float, ax0: float, ax1: float, ay0: float, ay1: float
) -> float:
    """An upper bound of ``max q(d)`` over ``d ∈ [ax0, ax1] x [ay0, ay1]``.

    ``q`` is convex, so its maximum over a rectangle is at a corner.
    """
    best = 0.0
    for cx in (ax0, ax1):
        for cy in (ay0, ay1):
            v = _q(s11, s12, s22, cx, cy) + _REL_SAFETY * _qscale(s11, s22, cx, cy)
            if v > best:
                best = v
    return best


@nb.njit(inline="always", cache=True)
def _edge_min(a: float, b: float, c: float, fixed: float, lo: float, hi: float) -> float:
    """Minimum of ``a t² + 2 b t·fixed + c·fixed²`` over ``t ∈ [lo, hi]`` (a >= 0)."""
    if a > 0.0:
        t = -b * fixed / a
        if t < lo:
            t = lo
        elif t > hi:
            t = hi
    else:
        t = lo  # then b = 0 too (S is PSD): constant along the edge
    v = a * t * t + 2.0 * b * t * fixed + c * fixed * fixed
    v -= _REL_SAFETY * (a * t * t + c * fixed * fixed)
    return v


@nb.njit(inline="always", cache=True)
def _qmin_box(
    s11: float, s12: float, s22: float, ax0: float, ax1: float, ay0: float, ay1: float
) -> float:
    """A lower bound of ``min q(d)`` over ``d ∈ [ax0, ax1] x [ay0, ay1]``.

    Zero when the box holds ``d = 0`` (the centre); otherwise the minimum of the
    convex ``q`` lies on the boundary, and each edge is a 1-D quadratic with a
    closed-form minimum.
    """
    if ax0 <= 0.0 and ax1 >= 0.0 and ay0 <= 0.0 and ay1 >= 0.0:
        return 0.0
    best = _edge_min(s11, s12, s22, ay0, ax0, ax1)
    v = _edge_min(s11, s12, s22, ay1, ax0, ax1)
    if v < best:
        best = v
    v = _edge_min(s22, s12, s11, ax0, ay0, ay1)
    if v < best:
        best = v
    v = _edge_min(s22, s12, s11, ax1, ay0, ay1)
    if v < best:
        best = v
    return max(best, 0.0)


@nb.njit(inline="always", cache=True)
def _block_box(
    b: int, nbx: int, bs: int, nx: int, ny: int, ox: float, oy: float, sx: float, sy: float,
    pad: float,
) -> tuple[float, float, float, float]:
    bx = b % nbx
    by = b // nbx
    i0 = bx * bs
    j0 = by * bs
    i1 = min(i0 + bs, nx) - 1
    j1 = min(j0 + bs, ny) - 1
    return (
        ox + (i0 - pad) * sx,
        ox + (i1 + pad) * sx,
        oy + (j0 - pad) * sy,
        oy + (j1 + pad) * sy,
    )


@nb.njit(parallel=True, cache=True, nogil=True)
def _level(
    mux: np.ndarray, muy: np.ndarray, s11: np.ndarray, s12: np.ndarray, s22: np.ndarray,
    la: np.ndarray, lmin: np.ndarray,
    cand_off: np.ndarray, cand_idx: np.ndarray, parent: np.ndarray,
    nbx: int, nblk: int, bs: int, nx: int, ny: int,
    ox: float, oy: float, sx: float, sy: float, pad: float, margin: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One level of list building.

    Block ``b`` considers the candidate kernels ``cand_idx[cand_off[p]:cand_off[p+1]]``
    of its parent ``p = parent[b]`` (a superset of the kernels that can matter,
    see :func:`build_lists`).  ``L_b`` = the best lower bound of a candidate's
    logit over the box; kernel ``k`` is kept when its upper bound over the box
    is at least ``L_b - margin``.

    Returns
    -------
    off : (nblk+1,) int64, idx : (pairs,) int32
        The lists (CSR).
    best : (nblk,) float64
        ``L_b``.
    arg : (nblk,) int64
        The kernel giving ``L_b``.
    qmax : (nblk,) float64
        Upper bound of its quadratic form over the box (``la[arg] - best``).
    """
    best_all = np.empty(nblk)
    arg_all = np.empty(nblk, dtype=np.int64)
    qmax_all = np.empty(nblk)
    counts = np.zeros(nblk + 1, dtype=np.int64)
    # scratch: block b writes the kernels it keeps at tmp[toff[b]:], room for all candidates
    toff = np.zeros(nblk + 1, dtype=np.int64)
    for b in range(nblk):
        toff[b + 1] = toff[b] + cand_off[parent[b] + 1] - cand_off[parent[b]]
    tmp = np.empty(toff[nblk], dtype=np.int32)
    for b in prange(nblk):
        bx0, bx1, by0, by1 = _block_box(b, nbx, bs, nx, ny, ox, oy, sx, sy, pad)
        p = parent[b]
        c0 = cand_off[p]
        n = cand_off[p + 1] - c0
        cheap = np.empty(n)
        # cheap upper bound: la - λmin·dist²(μ, box), vectorisable
        for t in range(n):
            k = cand_idx[c0 + t]
            dx = max(max(bx0 - mux[k], mux[k] - bx1), 0.0)
            dy = max(max(by0 - muy[k], muy[k] - by1), 0.0)
            cheap[t] = la[k] - lmin[k] * (dx * dx + dy * dy)
        # L_b: the best lower bound; a kernel whose upper bound is below the
        # current best cannot improve it
        best = -_INF
        barg = -1
        bq = 0.0
        for t in range(n):
            if cheap[t] > best:
                k = cand_idx[c0 + t]
                qm = _qmax_box(s11[k], s12[k], s22[k], bx0 - mux[k], bx1 - mux[k],
                               by0 - muy[k], by1 - muy[k])
                lb = la[k] - qm
                if lb > best:
                    best = lb
                    barg = k
                    bq = qm
        thr = best - margin
        cnt = 0
        w = toff[b]
        for t in range(n):
            if cheap[t] >= thr:
                k = cand_idx[c0 + t]
                qn = _qmin_box(s11[k], s12[k], s22[k], bx0 - mux[k], bx1 - mux[k],
                               by0 - muy[k], by1 - muy[k])
                if la[k] - qn >= thr:
                    tmp[w + cnt] = k
                    cnt += 1
        best_all[b] = best
        arg_all[b] = barg
        qmax_all[b] = bq
        counts[b + 1] = cnt
    off = np.cumsum(counts)
    idx = np.empty(off[nblk], dtype=np.int32)
    for b in prange(nblk):
        o = off[b]
        w = toff[b]
        for t in range(off[b + 1] - o):
            idx[o + t] = tmp[w + t]
    return off, idx, best_all, arg_all, qmax_all


def build_lists(
    karr: tuple[np.ndarray, ...],
    nx: int, ny: int, ox: float, oy: float, sx: float, sy: float,
    bs: int, pad: float, margin: float, coarse: int = 4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-block lists of the kernels that can matter.

    Kernel ``k`` is left out of block ``b`` only when an upper bound of its logit
    over the block's box is more than ``margin`` below ``L_b``, the best lower
    bound of any kernel's logit over the box.  Then at every point of the box
    its weight is below ``exp(-margin)`` (the largest logit there is at least
    ``L_b``).

    Two levels: superblocks of ``coarse x coarse`` blocks scan all ``K`` kernels;
    each block scans only its superblock's list.  That is exact: over a
    sub-box, upper bounds only fall and ``L_b`` only rises, so whatever a block
    keeps, its superblock kept too.

    Parameters
    ----------
    karr : the output of :func:`kernel_arrays`
    nx, ny : output size (pixels); ox, oy, sx, sy : grid origin and step (px)
    bs : block side (pixels); pad : box widening (pixel steps)
    margin : float
        ``τ`` (plus any slack), in logit units.

    Returns
    -------
    off : (nblk+1,) int64, idx : (pairs,) int32, L : (nblk,), arg : (nblk,) int64,
    qmax : (nblk,)
        See :func:`_level`.
    """
    mux, muy, s11, s12, s22, la, lmin = karr
    k = mux.shape[0]
    nbx = -(-nx // bs)
    nby = -(-ny // bs)
    nblk = nbx * nby
    all_off = np.array([0, k], dtype=np.int64)
    all_idx = np.arange(k, dtype=np.int32)
    if coarse > 1 and nblk > 4:
        cbs = bs * coarse
        cnbx = -(-nx // cbs)
        cnby = -(-ny // cbs)
        coff, cidx, _, _, _ = _level(
            mux, muy, s11, s12, s22, la, lmin, all_off, all_idx,
            np.zeros(cnbx * cnby, dtype=np.int64), cnbx, cnbx * cnby, cbs, nx, ny,
            ox, oy, sx, sy, pad, margin,
        )
        bx = np.arange(nblk) % nbx
        by = np.arange(nblk) // nbx
        parent = (by // coarse) * cnbx + bx // coarse
        return _level(
            mux, muy, s11, s12, s22, la, lmin, coff, cidx, parent.astype(np.int64),
            nbx, nblk, bs, nx, ny, ox, oy, sx, sy, pad, margin,
        )
    return _level(
        mux, muy, s11, s12, s22, la, lmin, all_off, all_idx,
        np.zeros(nblk, dtype=np.int64), nbx, nblk, bs, nx, ny, ox, oy, sx, sy, pad, margin,
    )


@nb.njit(cache=True)
def box_bounds(
    s11: float, s12: float, s22: float, ax0: float, ax1: float, ay0: float, ay1: float
) -> tuple[float, float]:
    """``(lower bound of min q, upper bound of max q)`` over the box of ``d``
    (for tests of the bounds)."""
    return (_qmin_box(s11, s12, s22, ax0, ax1, ay0, ay1),
            _qmax_box(s11, s12, s22, ax0, ax1, ay0, ay1))
