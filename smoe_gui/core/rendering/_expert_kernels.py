"""Compiled (numba) kernels of the expert stage: gate weights at points, the
error of many expert vectors, the normal equations of the gate."""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

from ._common import _FM, _INF, EXPERT_LANES, exp_neg, gather_block, row_logits

__all__ = ["csr_matvec", "experts_sse", "gate_normal_equations", "point_weights"]



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
            e = exp_neg(vals[r0 + t] - mx)
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
    row_logits(n, v, EXPERT_LANES, lx, ly, a, b2, c, l0, u, lg, mx)
    for p in range(EXPERT_LANES):
        ssum[q0 + p] = 0.0
    for t in range(n):
        for p in range(EXPERT_LANES):
            e = exp_neg(lg[t, p] - mx[p])
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
        lx, ly, a, b2, c, l0 = gather_block(
            idx, o, n, float(i0), float(j0), mux, muy, s11, s12, s22, la
        )
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
                    gx[t, p] = exp_neg(min(dmin[t] - a[t] * dx * dx, 0.0))
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
                    fr[t] = exp_neg(fr[t] - rmax)
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
                        dst = recon[k, j0 + jj, i0 : i0 + wd, ch]
                        for p in range(wd):
                            dst[p] = np.float32(row[q0 + p] * inv[q0 + p])
    out = np.zeros(nt)
    for b in range(nblk):
        for r in range(nt):
            out[r] += part[b, r]
    return out


@nb.njit(parallel=True, fastmath=_FM, cache=True, nogil=True)
def gate_normal_equations(
    off: np.ndarray,
    idx: np.ndarray,
    mux: np.ndarray,
    muy: np.ndarray,
    s11: np.ndarray,
    s12: np.ndarray,
    s22: np.ndarray,
    la: np.ndarray,
    image: np.ndarray,
    bs: int,
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
        lx, ly, a, b2, c, l0 = gather_block(
            idx, o, n, float(i0), float(j0), mux, muy, s11, s12, s22, la
        )
        npix = nrow * bs
        wt = np.zeros((n, npix))
        u = np.empty(bs)
        for p in range(bs):
            u[p] = float(p)
        lg = np.empty((n, bs))
        mx = np.empty(bs)
        ss = np.empty(bs)
        for jj in range(nrow):
            row_logits(n, float(jj), wd, lx, ly, a, b2, c, l0, u, lg, mx)
            for p in range(wd):
                ss[p] = 0.0
            for t in range(n):
                for p in range(wd):
                    e = exp_neg(lg[t, p] - mx[p])
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
