"""Compiled (numba) kernels of the fast SMoE evaluation.

Everything here works on plain float64 arrays in "structure of arrays" form;
:mod:`smoe_gui.core.rendering.culled` and :mod:`smoe_gui.core.methods.experts` wrap it.  See
``docs/rendering.md`` for the mathematics.

Kernel ``k`` is given by its centre ``(mux[k], muy[k])`` (px), the quadratic
form ``S_k = A_k A_kᵀ = [[s11, s12], [s12, s22]]`` (1/px²) and ``la[k] = log α_k``;
its gate logit at ``x`` is ``la[k] - (x-μ_k)ᵀ S_k (x-μ_k)``.

An output grid has ``nx x ny`` pixels; pixel ``(i, j)`` (column, row) sits at
``(ox + i·sx, oy + j·sy)`` in model coordinates.  Pixels are grouped in square
blocks of ``bs x bs``; block ``b = by·nbx + bx``.  A block's *box* is the
rectangle spanned by its pixel centres, widened by ``pad`` pixel steps on every
side (``pad = 0.5`` makes the boxes tile the plane, so that any point of the
image area lies in the box of the block that holds it).

All kernels are compiled with ``cache=True``: the compile cost (some seconds) is
paid once per machine.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

__all__ = [
    "backward_blocks",
    "box_bounds",
    "csr_matvec",
    "exp_neg_array",
    "build_lists",
    "experts_sse",
    "forward_blocks",
    "gate_normal_equations",
    "kernel_arrays",
    "point_weights",
    "reduce_pairs",
]

# Flags that let LLVM vectorise the reductions (sum, max) and contract a*b+c
# into FMAs.  No "nnan"/"ninf"/"afn": inputs are checked to be finite, and the
# exponential is our own polynomial (below), so no approximate libm is needed.
_FM = {"reassoc", "contract", "nsz"}
_INF = np.inf

#: Relative safety margin applied to every computed quadratic-form bound, so
#: that floating-point rounding can never turn a bound into a non-bound.
_REL_SAFETY = 1e-12


@nb.njit(inline="always", fastmath=_FM, cache=True)
def _exp_neg(x: float) -> float:
    """``exp(x)`` for ``x <= 0``, vectorisable (no libm call).

    ``exp(x) = exp(x/32)^32``: a degree-8 Taylor polynomial of ``exp(x/32)``,
    then five squarings.  Relative error < 3e-6 for ``x >= -20`` (< 1e-12 for
    ``x >= -5``); absolute error < 2e-13 everywhere (the largest term of a
    pixel is ``exp(0) = 1``, so this is the error of a weight).  Arguments
    below -80 are clamped (result ~1e-33 instead of ``exp(x)``).
    """
    y = max(x, -80.0) * 0.03125
    p = 1.0 + y * (1.0 + y * (0.5 + y * (1.0 / 6.0 + y * (1.0 / 24.0 + y * (
        1.0 / 120.0 + y * (1.0 / 720.0 + y * (1.0 / 5040.0 + y * (1.0 / 40320.0))))))))
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    return p


@nb.njit(cache=True)
def exp_neg_array(x: np.ndarray) -> np.ndarray:
    """:func:`_exp_neg` over an array (for tests)."""
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = _exp_neg(x[i])
    return out


def kernel_arrays(
    mu: np.ndarray, A: np.ndarray, log_alpha: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Structure-of-arrays form of the kernels.

    Parameters
    ----------
    mu : (K, 2), A : (K, 2, 2), log_alpha : (K,) float64

    Returns
    -------
    mux, muy, s11, s12, s22, la, lmin : (K,) float64, C-contiguous
        Centres (px), the quadratic form ``S = A Aᵀ`` (1/px²), log α and a
        lower bound of the smallest eigenvalue of ``S`` (1/px², >= 0).
    """
    mu = np.asarray(mu, dtype=np.float64)
    A = np.asarray(A, dtype=np.float64)
    a00, a01, a10, a11 = A[:, 0, 0], A[:, 0, 1], A[:, 1, 0], A[:, 1, 1]
    s11 = a00 * a00 + a01 * a01
    s12 = a00 * a10 + a01 * a11
    s22 = a10 * a10 + a11 * a11
    half_tr = 0.5 * (s11 + s22)
    rad = np.hypot(0.5 * (s11 - s22), s12)
    # rounding-safe: shrink by a relative margin and an absolute one of the trace
    lmin = np.maximum((half_tr - rad) * (1.0 - 1e-9) - 1e-14 * half_tr, 0.0)
    return (
        np.ascontiguousarray(mu[:, 0]),
        np.ascontiguousarray(mu[:, 1]),
        np.ascontiguousarray(s11),
        np.ascontiguousarray(s12),
        np.ascontiguousarray(s22),
        np.ascontiguousarray(np.asarray(log_alpha, dtype=np.float64)),
        np.ascontiguousarray(lmin),
    )


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


# --------------------------------------------------------------------------
# forward and backward over the blocks
# --------------------------------------------------------------------------


@nb.njit(inline="always", cache=True)
def _gather_block(
    idx: np.ndarray, o: int, n: int, px0: float, py0: float,
    mux: np.ndarray, muy: np.ndarray, s11: np.ndarray, s12: np.ndarray, s22: np.ndarray,
    la: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ``n`` kernels listed at ``idx[o:o+n]`` as contiguous arrays for one
    block: centres relative to the block origin ``(px0, py0)``, ``s11``,
    ``2·s12``, ``s22`` and ``log α``."""
    lx = np.empty(n)
    ly = np.empty(n)
    a = np.empty(n)
    b2 = np.empty(n)
    c = np.empty(n)
    l0 = np.empty(n)
    for t in range(n):
        k = idx[o + t]
        lx[t] = mux[k] - px0
        ly[t] = muy[k] - py0
        a[t] = s11[k]
        b2[t] = 2.0 * s12[k]
        c[t] = s22[k]
        l0[t] = la[k]
    return lx, ly, a, b2, c, l0


@nb.njit(inline="always", fastmath=_FM, cache=True)
def _row_logits(
    n: int, v: float, lanes: int, lx: np.ndarray, ly: np.ndarray, a: np.ndarray,
    b2: np.ndarray, c: np.ndarray, l0: np.ndarray, u: np.ndarray, lg: np.ndarray,
    mx: np.ndarray,
) -> None:
    """Logits of the ``n`` listed kernels at the first ``lanes`` pixels of one
    block row (``v``: the row's offset, ``u``: the pixels' offsets, both
    relative to the block origin like ``lx, ly``) into ``lg[t, p]``, and their
    largest value per pixel into ``mx``."""
    for p in range(lanes):
        mx[p] = -_INF
    for t in range(n):
        dy = v - ly[t]
        rc = l0[t] - c[t] * dy * dy
        rl = b2[t] * dy
        at = a[t]
        xt = lx[t]
        for p in range(lanes):
            dx = u[p] - xt
            val = rc - dx * (at * dx + rl)
            lg[t, p] = val
            mx[p] = max(mx[p], val)


@nb.njit(parallel=True, fastmath=_FM, cache=True, nogil=True)
def forward_blocks(
    off: np.ndarray, idx: np.ndarray,
    mux: np.ndarray, muy: np.ndarray, s11: np.ndarray, s12: np.ndarray, s22: np.ndarray,
    la: np.ndarray, m: np.ndarray,
    nx: int, ny: int, ox: float, oy: float, sx: float, sy: float, bs: int,
    out: np.ndarray, shift: np.ndarray, invsum: np.ndarray, save: bool,
) -> None:
    """The image over the lists: ``out[j, i, c] = Σ_k w_k m_kc`` (log-domain softmax).

    ``m`` is ``(K, C)`` (a gray model passes ``C = 1``) and ``out`` is
    ``(ny, nx, C)`` (float32 or float64).  The gate is computed once per pixel
    and shared by the ``C`` channels: each extra channel costs one
    multiply-add per kernel and pixel, not an exponential.  With ``save``, also
    writes per pixel the largest logit ``shift`` and ``invsum = 1/Σ_k
    exp(logit - shift)`` (both ``(ny, nx)`` float64), which
    :func:`backward_blocks` needs.  The innermost loops run over the pixels of
    a block row, so they vectorise without horizontal sums.
    """
    nbx = -(-nx // bs)
    nblk = off.shape[0] - 1
    nc = m.shape[1]
    for b in prange(nblk):
        bx = b % nbx
        by = b // nbx
        i0 = bx * bs
        j0 = by * bs
        wd = min(i0 + bs, nx) - i0
        j1 = min(j0 + bs, ny)
        px0 = ox + i0 * sx
        py0 = oy + j0 * sy
        o = off[b]
        n = off[b + 1] - o
        lx, ly, a, b2, c, l0 = _gather_block(idx, o, n, px0, py0, mux, muy, s11, s12, s22, la)
        mm = np.empty((n, nc))
        for t in range(n):
            for ch in range(nc):
                mm[t, ch] = m[idx[o + t], ch]
        u = np.empty(bs)
        for p in range(bs):
            u[p] = p * sx
        lg = np.empty((n, bs))
        mx = np.empty(bs)
        ss = np.empty(bs)
        ev = np.empty(bs)
        sm = np.empty((nc, bs))
        for j in range(j0, j1):
            v = (j - j0) * sy
            _row_logits(n, v, wd, lx, ly, a, b2, c, l0, u, lg, mx)
            ss[:] = 0.0
            sm[:, :] = 0.0
            for t in range(n):
                for p in range(wd):
                    e = _exp_neg(lg[t, p] - mx[p])
                    ev[p] = e
                    ss[p] += e
                for ch in range(nc):
                    mt = mm[t, ch]
                    for p in range(wd):
                        sm[ch, p] += ev[p] * mt
            for p in range(wd):
                if n == 0:
                    for ch in range(nc):
                        out[j, i0 + p, ch] = 0.0
                    continue
                inv = 1.0 / ss[p]
                for ch in range(nc):
                    out[j, i0 + p, ch] = sm[ch, p] * inv
                if save:
                    shift[j, i0 + p] = mx[p]
                    invsum[j, i0 + p] = inv


@nb.njit(parallel=True, fastmath=_FM, cache=True, nogil=True)
def backward_blocks(
    off: np.ndarray, idx: np.ndarray,
    mux: np.ndarray, muy: np.ndarray, s11: np.ndarray, s12: np.ndarray, s22: np.ndarray,
    la: np.ndarray, m: np.ndarray,
    nx: int, ny: int, ox: float, oy: float, sx: float, sy: float, bs: int,
    image: np.ndarray, shift: np.ndarray, invsum: np.ndarray, grad: np.ndarray,
) -> np.ndarray:
    """Per-pair partial sums of the gradient.

    ``m`` is ``(K, C)``, ``image`` and ``grad = dLoss/dimage`` are ``(ny, nx,
    C)`` float64.  With ``w_k`` the (shared) gate weight, the derivative of the
    loss by the logit of kernel ``k`` at a pixel is ``gℓ = w_k Σ_c g_c (m_kc -
    L_c)``; with ``d = x - μ_k`` this returns ``(C + 6, pairs)`` float64, for
    each (block, listed kernel): ``Σ g_c w`` (rows ``0..C-1``), then ``Σ gℓ``,
    ``Σ gℓ dx``, ``Σ gℓ dy``, ``Σ gℓ dx²``, ``Σ gℓ dx dy``, ``Σ gℓ dy²`` over
    the block's pixels.  One slot per pair: no two threads write the same
    place, and the result does not depend on the number of threads.

    Loop order: per block row, the pixels' values (``g_c/Σ``, ``Σ_c g_c L_c/Σ``,
    the largest logit) go into lane arrays; then per listed kernel one loop over
    the row's pixels computes its gate terms (the exponential polynomial) into a
    lane array, and a second accumulates its sums in registers (a vectorised
    reduction, no stores).  Two loops rather than one keep each within the
    vector registers (the polynomial's constants in the first, the
    accumulators in the second): measured 15-25 % faster than the fused loop.  ``dy`` is constant along a row, so only ``Σ gℓ``, ``Σ gℓ dx``
    and ``Σ gℓ dx²`` are accumulated and the ``dy`` terms follow from them.  The
    gate (one exponential per kernel and pixel) is shared by the channels: a
    channel adds two multiply-adds per pair.
    """
    nbx = -(-nx // bs)
    nblk = off.shape[0] - 1
    nc = m.shape[1]
    acc = np.zeros((nc + 6, idx.shape[0]))
    for b in prange(nblk):
        bx = b % nbx
        by = b // nbx
        i0 = bx * bs
        j0 = by * bs
        wd = min(i0 + bs, nx) - i0
        j1 = min(j0 + bs, ny)
        px0 = ox + i0 * sx
        py0 = oy + j0 * sy
        o = off[b]
        n = off[b + 1] - o
        lx, ly, a, b2, c, l0 = _gather_block(idx, o, n, px0, py0, mux, muy, s11, s12, s22, la)
        mm = np.empty((n, nc))
        for t in range(n):
            for ch in range(nc):
                mm[t, ch] = m[idx[o + t], ch]
        gm = np.zeros((nc, n))
        gl0 = np.zeros(n)
        gx = np.zeros(n)
        gy = np.zeros(n)
        gxx = np.zeros(n)
        gxy = np.zeros(n)
        gyy = np.zeros(n)
        u = np.empty(bs)
        for p in range(bs):
            u[p] = p * sx
        sh = np.empty(bs)
        gs = np.empty(bs)
        ev = np.empty(bs)
        gcl = np.empty((nc, bs))
        sgm = np.empty(nc)
        for j in range(j0, j1):
            v = (j - j0) * sy
            for p in range(wd):
                inv = invsum[j, i0 + p]
                sh[p] = shift[j, i0 + p]
                tot = 0.0
                for ch in range(nc):
                    g = grad[j, i0 + p, ch] * inv
                    gcl[ch, p] = g
                    tot += g * image[j, i0 + p, ch]
                gs[p] = tot
            for t in range(n):
                dy = v - ly[t]
                rc = l0[t] - c[t] * dy * dy
                rl = b2[t] * dy
                at = a[t]
                xt = lx[t]
                s_l = 0.0
                s_x = 0.0
                s_xx = 0.0
                # pass 1: the gate terms of the row (few registers: the exp polynomial)
                for p in range(wd):
                    dx = u[p] - xt
                    ev[p] = _exp_neg(rc - dx * (at * dx + rl) - sh[p])
                if nc == 1:
                    m0 = mm[t, 0]
                    s_m0 = 0.0
                    for p in range(wd):
                        dx = u[p] - xt
                        e = ev[p]
                        g0 = gcl[0, p]
                        gl = e * (g0 * m0 - gs[p])
                        s_m0 += g0 * e
                        s_l += gl
                        s_x += gl * dx
                        s_xx += gl * dx * dx
                    gm[0, t] += s_m0
                elif nc == 3:
                    m0 = mm[t, 0]
                    m1 = mm[t, 1]
                    m2 = mm[t, 2]
                    s_m0 = 0.0
                    s_m1 = 0.0
                    s_m2 = 0.0
                    for p in range(wd):
                        dx = u[p] - xt
                        e = ev[p]
                        g0 = gcl[0, p]
                        g1 = gcl[1, p]
                        g2 = gcl[2, p]
                        gl = e * (g0 * m0 + g1 * m1 + g2 * m2 - gs[p])
                        s_m0 += g0 * e
                        s_m1 += g1 * e
                        s_m2 += g2 * e
                        s_l += gl
                        s_x += gl * dx
                        s_xx += gl * dx * dx
                    gm[0, t] += s_m0
                    gm[1, t] += s_m1
                    gm[2, t] += s_m2
                else:
                    sgm[:] = 0.0
                    for p in range(wd):
                        dx = u[p] - xt
                        e = ev[p]
                        dot = -gs[p]
                        for ch in range(nc):
                            g = gcl[ch, p]
                            dot += g * mm[t, ch]
                            sgm[ch] += g * e
                        gl = e * dot
                        s_l += gl
                        s_x += gl * dx
                        s_xx += gl * dx * dx
                    for ch in range(nc):
                        gm[ch, t] += sgm[ch]
                gl0[t] += s_l
                gx[t] += s_x
                gy[t] += dy * s_l
                gxx[t] += s_xx
                gxy[t] += dy * s_x
                gyy[t] += dy * dy * s_l
        for t in range(n):
            for ch in range(nc):
                acc[ch, o + t] = gm[ch, t]
            acc[nc, o + t] = gl0[t]
            acc[nc + 1, o + t] = gx[t]
            acc[nc + 2, o + t] = gy[t]
            acc[nc + 3, o + t] = gxx[t]
            acc[nc + 4, o + t] = gxy[t]
            acc[nc + 5, o + t] = gyy[t]
    return acc


@nb.njit(cache=True, nogil=True)
def reduce_pairs(idx: np.ndarray, acc: np.ndarray, k: int) -> np.ndarray:
    """Sum the per-pair partial sums of :func:`backward_blocks` per kernel:
    ``(R, pairs)`` -> ``(R, K)`` (serial, in pair order: deterministic)."""
    nr = acc.shape[0]
    out = np.zeros((nr, k))
    for p in range(idx.shape[0]):
        kk = idx[p]
        for r in range(nr):
            out[r, kk] += acc[r, p]
    return out


# --------------------------------------------------------------------------
# expert initialisation: gate at points, and the error of many expert vectors
# --------------------------------------------------------------------------


@nb.njit(parallel=True, fastmath=_FM, cache=True, nogil=True)
def point_weights(
    px: np.ndarray, py: np.ndarray, blk: np.ndarray, off: np.ndarray, idx: np.ndarray,
    mux: np.ndarray, muy: np.ndarray, s11: np.ndarray, s12: np.ndarray, s22: np.ndarray,
    la: np.ndarray, all_idx: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gate weights at arbitrary points, as a CSR matrix.

    Point ``p`` uses the list of block ``blk[p]`` (whose box holds it), or all
    kernels (``all_idx``) when ``blk[p] < 0``.

    Returns
    -------
    roff : (P+1,) int64, cols : (nnz,) int32, vals : (nnz,) float64
        Row ``p`` holds the kernels of its list and their weights (summing to 1).
    """
    n_pts = px.shape[0]
    counts = np.zeros(n_pts + 1, dtype=np.int64)
    for p in range(n_pts):
        b = blk[p]
        counts[p + 1] = (off[b + 1] - off[b]) if b >= 0 else all_idx.shape[0]
    roff = np.cumsum(counts)
    cols = np.empty(roff[n_pts], dtype=np.int32)
    vals = np.empty(roff[n_pts])
    for p in prange(n_pts):
        b = blk[p]
        r0 = roff[p]
        n = roff[p + 1] - r0
        mx = -_INF
        for t in range(n):
            k = idx[off[b] + t] if b >= 0 else all_idx[t]
            cols[r0 + t] = k
            dx = px[p] - mux[k]
            dy = py[p] - muy[k]
            val = la[k] - (s11[k] * dx * dx + 2.0 * s12[k] * dx * dy + s22[k] * dy * dy)
            vals[r0 + t] = val
            mx = max(mx, val)
        s = 0.0
        for t in range(n):
            e = _exp_neg(vals[r0 + t] - mx)
            vals[r0 + t] = e
            s += e
        for t in range(n):
            vals[r0 + t] /= s
    return roff, cols, vals


@nb.njit(cache=True, nogil=True)
def csr_matvec(roff: np.ndarray, cols: np.ndarray, vals: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``y = W x`` for the CSR matrix of :func:`point_weights`."""
    n = roff.shape[0] - 1
    y = np.zeros(n)
    for p in range(n):
        s = 0.0
        for t in range(roff[p], roff[p + 1]):
            s += vals[t] * x[cols[t]]
        y[p] = s
    return y


#: Lanes of a block row in :func:`experts_sse` (its block side must equal this).
EXPERT_LANES = 16

#: A separable row is recomputed exactly where a pixel's sum of terms, relative
#: to the row's largest logit, is below this (see :func:`experts_sse`).
_SEP_FLOOR = 1e-3


@nb.njit(inline="always", fastmath=_FM, cache=True)
def _row_exact(
    n: int, v: float, q0: int, lx: np.ndarray, ly: np.ndarray, a: np.ndarray, b2: np.ndarray,
    c: np.ndarray, l0: np.ndarray, u: np.ndarray, lg: np.ndarray, mx: np.ndarray,
    ssum: np.ndarray, wt: np.ndarray,
) -> None:
    """Gate terms of one block row (``v`` = row within the block, lanes
    ``q0 .. q0+15`` of ``wt`` and ``ssum``) from the full quadratic form:
    ``wt[t, q] = exp(logit_t - max_t logit_t)`` (float32) and their sums."""
    _row_logits(n, v, EXPERT_LANES, lx, ly, a, b2, c, l0, u, lg, mx)
    for p in range(EXPERT_LANES):
        ssum[q0 + p] = 0.0
    for t in range(n):
        for p in range(EXPERT_LANES):
            e = _exp_neg(lg[t, p] - mx[p])
            wt[t, q0 + p] = np.float32(e)
            ssum[q0 + p] += e


@nb.njit(parallel=True, fastmath=_FM, cache=True, nogil=True)
def experts_sse(
    off: np.ndarray, idx: np.ndarray,
    mux: np.ndarray, muy: np.ndarray, s11: np.ndarray, s12: np.ndarray, s22: np.ndarray,
    la: np.ndarray, experts: np.ndarray, chan: np.ndarray, image: np.ndarray, bs: int,
    recon: np.ndarray, rec0: int,
) -> np.ndarray:
    """Sum of squared errors of many expert vectors at once.

    The gate does not depend on the experts, so it is computed once per pixel
    and applied to every row of ``experts`` (``(T, K)``: one expert vector per
    row; row ``r`` is compared with channel ``chan[r]`` of ``image``, so a
    colour iterate is ``C`` rows).  The grid is the image's own pixel grid
    (``ox = oy = 0``, ``sx = sy = 1``), ``image`` is ``(H, W, C)``; ``bs`` must
    be :data:`EXPERT_LANES`.

    Per block, the gate terms of all its pixels are computed first (``(n,
    256)``: rows of 16 lanes; lanes past the image's right edge are computed
    and ignored), then applied to the ``T`` expert vectors in one
    matrix-product-like loop whose inner loop runs over all the block's
    pixels.

    Separable blocks.  In a block where every listed kernel has ``s12 = 0``
    (all kernels of an initialisation are isotropic), the logit splits:
    ``logit_t(p, j) = [l_t - c_t·dy² - a_t·d_t²] + [-a_t·(dx² - d_t²)]``, with
    ``d_t`` the distance of the kernel's centre column to the nearest lane.
    The second factor's exponential is computed once per block (16 per
    kernel), the first's once per row (one per kernel), relative to the row's
    largest logit ``R``; a term is then one product.  A pixel whose sum of
    terms is below ``_SEP_FLOOR`` (its largest logit is far below ``R``, so
    the rounding of the factors could matter) has its row recomputed from the
    full quadratic form, as in non-separable blocks.

    The reconstructions of ``R = recon.shape[0]`` consecutive iterates, rows
    ``rec0 .. rec0 + R·C - 1``, are written to ``recon`` (``(R, H, W, C)``
    float32), so the caller needs no separate render; ``rec0 < 0`` writes none.

    Returns
    -------
    (T,) float64
        ``Σ_x (Σ_k w_k(x) experts[t, k] - image[x, chan[t]])²``.
    """
    ny, nx, nc = image.shape
    nt = experts.shape[0]
    nbx = -(-nx // bs)
    nblk = off.shape[0] - 1
    part = np.zeros((nblk, nt))
    for b in prange(nblk):
        bx = b % nbx
        by = b // nbx
        i0 = bx * EXPERT_LANES
        j0 = by * EXPERT_LANES
        wd = min(i0 + EXPERT_LANES, nx) - i0
        rows = min(j0 + EXPERT_LANES, ny) - j0
        npix = rows * EXPERT_LANES
        o = off[b]
        n = off[b + 1] - o
        lx, ly, a, b2, c, l0 = _gather_block(idx, o, n, float(i0), float(j0), mux, muy, s11, s12, s22, la)
        em = np.empty((n, nt), dtype=np.float32)
        separable = True
        for t in range(n):
            k = idx[o + t]
            if b2[t] != 0.0:
                separable = False
            for r in range(nt):
                em[t, r] = np.float32(experts[r, k])
        u = np.empty(EXPERT_LANES)
        for p in range(EXPERT_LANES):
            u[p] = float(p)
        wt = np.empty((n, npix), dtype=np.float32)
        ssum = np.empty(npix)
        lg = np.empty((n, EXPERT_LANES))
        mx = np.empty(EXPERT_LANES)
        # separable blocks: the column factors, and each kernel's row offset
        gx = np.empty((n, EXPERT_LANES))
        dmin = np.empty(n)
        fr = np.empty(n)
        if separable:
            for t in range(n):
                d = max(-lx[t], lx[t] - (wd - 1.0), 0.0)
                dmin[t] = a[t] * d * d
                for p in range(EXPERT_LANES):
                    dx = u[p] - lx[t]
                    gx[t, p] = _exp_neg(min(dmin[t] - a[t] * dx * dx, 0.0))
        for jj in range(rows):
            v = float(jj)
            q0 = jj * EXPERT_LANES
            exact = not separable
            if separable:
                rmax = -_INF
                for t in range(n):
                    dy = v - ly[t]
                    fr[t] = l0[t] - c[t] * dy * dy - dmin[t]
                    rmax = max(rmax, fr[t])
                for t in range(n):
                    fr[t] = _exp_neg(fr[t] - rmax)
                for p in range(EXPERT_LANES):
                    ssum[q0 + p] = 0.0
                for t in range(n):
                    f = fr[t]
                    for p in range(bs):
                        e = f * gx[t, p]
                        wt[t, q0 + p] = np.float32(e)
                        ssum[q0 + p] += e
                low = False
                for p in range(wd):
                    low |= ssum[q0 + p] < _SEP_FLOOR
                exact = low
            if exact:
                _row_exact(n, v, q0, lx, ly, a, b2, c, l0, u, lg, mx, ssum, wt)
        acc = np.zeros((nt, npix), dtype=np.float32)
        for t in range(n):
            for r in range(nt):
                emr = em[t, r]
                for q in range(npix):
                    acc[r, q] += wt[t, q] * emr
        # lanes past the right edge get inv = tgt = 0 and add nothing
        inv = np.zeros(npix)
        tgt = np.zeros((nc, npix))
        for jj in range(rows):
            for p in range(wd):
                q = jj * EXPERT_LANES + p
                inv[q] = 1.0 / ssum[q]
                for ch in range(nc):
                    tgt[ch, q] = image[j0 + jj, i0 + p, ch]
        for r in range(nt):
            ch = chan[r]
            tot = 0.0
            for q in range(npix):
                d = acc[r, q] * inv[q] - tgt[ch, q]
                tot += d * d
            part[b, r] = tot
        if rec0 >= 0:
            for k in range(recon.shape[0]):
                for ch in range(nc):
                    row = acc[rec0 + k * nc + ch]
                    for jj in range(rows):
                        q0 = jj * EXPERT_LANES
                        dst = recon[k, j0 + jj, i0:i0 + wd, ch]
                        for p in range(wd):
                            dst[p] = np.float32(row[q0 + p] * inv[q0 + p])
    out = np.zeros(nt)
    for b in range(nblk):
        for r in range(nt):
            out[r] += part[b, r]
    return out


@nb.njit(parallel=True, fastmath=_FM, cache=True, nogil=True)
def gate_normal_equations(
    off: np.ndarray, idx: np.ndarray,
    mux: np.ndarray, muy: np.ndarray, s11: np.ndarray, s12: np.ndarray, s22: np.ndarray,
    la: np.ndarray, image: np.ndarray, bs: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The normal equations of the experts for a fixed gate, over the culled lists.

    With ``W`` the ``(pixels, K)`` gate matrix of the image's pixel grid
    (``image`` is ``(H, W, C)``), returns the entries of ``G = WᵀW`` as
    coordinates and the per-pair partial sums of ``Wᵀy``:

    Returns
    -------
    rows, cols : (Σ_b n_b²,) int32, vals : (Σ_b n_b²,) float64
        Block ``b`` with ``n_b`` listed kernels contributes its ``n_b x n_b``
        block ``Σ_x w_t(x) w_u(x)`` over its pixels (duplicates are summed by
        the caller, e.g. a scipy COO -> CSR conversion).
    rhs : (C, pairs) float64
        ``Σ_x w_t(x) y_c(x)`` per (block, listed kernel) pair (sum per kernel
        with :func:`reduce_pairs`).

    The gate is evaluated from the full quadratic form in float64.
    """
    ny, nx, nc = image.shape
    nbx = -(-nx // bs)
    nblk = off.shape[0] - 1
    goff = np.zeros(nblk + 1, dtype=np.int64)
    for b in range(nblk):
        n = off[b + 1] - off[b]
        goff[b + 1] = goff[b] + n * n
    rows = np.empty(goff[nblk], dtype=np.int32)
    cols = np.empty(goff[nblk], dtype=np.int32)
    vals = np.empty(goff[nblk])
    rhs = np.zeros((nc, idx.shape[0]))
    for b in prange(nblk):
        bx = b % nbx
        by = b // nbx
        i0 = bx * bs
        j0 = by * bs
        wd = min(i0 + bs, nx) - i0
        nrow = min(j0 + bs, ny) - j0
        o = off[b]
        n = off[b + 1] - o
        lx, ly, a, b2, c, l0 = _gather_block(idx, o, n, float(i0), float(j0), mux, muy, s11, s12,
                                             s22, la)
        npix = nrow * bs
        wt = np.zeros((n, npix))
        u = np.empty(bs)
        for p in range(bs):
            u[p] = float(p)
        lg = np.empty((n, bs))
        mx = np.empty(bs)
        ss = np.empty(bs)
        for jj in range(nrow):
            _row_logits(n, float(jj), wd, lx, ly, a, b2, c, l0, u, lg, mx)
            for p in range(wd):
                ss[p] = 0.0
            for t in range(n):
                for p in range(wd):
                    e = _exp_neg(lg[t, p] - mx[p])
                    lg[t, p] = e
                    ss[p] += e
            for t in range(n):
                for p in range(wd):
                    wt[t, jj * bs + p] = lg[t, p] / ss[p]
        g0 = goff[b]
        for t in range(n):
            kt = idx[o + t]
            for v in range(t, n):
                tot = 0.0
                for q in range(npix):
                    tot += wt[t, q] * wt[v, q]
                kv = idx[o + v]
                rows[g0 + t * n + v] = kt
                cols[g0 + t * n + v] = kv
                vals[g0 + t * n + v] = tot
                rows[g0 + v * n + t] = kv
                cols[g0 + v * n + t] = kt
                vals[g0 + v * n + t] = tot
            for ch in range(nc):
                tot = 0.0
                for jj in range(nrow):
                    for p in range(wd):
                        tot += wt[t, jj * bs + p] * image[j0 + jj, i0 + p, ch]
                rhs[ch, o + t] = tot
    return rows, cols, vals, rhs


@nb.njit(cache=True)
def box_bounds(
    s11: float, s12: float, s22: float, ax0: float, ax1: float, ay0: float, ay1: float
) -> tuple[float, float]:
    """``(lower bound of min q, upper bound of max q)`` over the box of ``d``
    (for tests of the bounds)."""
    return (_qmin_box(s11, s12, s22, ax0, ax1, ay0, ay1),
            _qmax_box(s11, s12, s22, ax0, ax1, ay0, ay1))
