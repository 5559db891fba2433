"""Compiled (numba) forward and backward passes over the culled blocks."""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

from ._common import _FM, exp_neg, gather_block, row_logits

__all__ = ["backward_blocks", "forward_blocks", "reduce_pairs"]


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
        lx, ly, a, b2, c, l0 = gather_block(idx, o, n, px0, py0, mux, muy, s11, s12, s22, la)
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
            row_logits(n, v, wd, lx, ly, a, b2, c, l0, u, lg, mx)
            ss[:] = 0.0
            sm[:, :] = 0.0
            for t in range(n):
                # C = 1, 3: the terms go into the sums in the loop that makes them
                if nc == 1:
                    mt = mm[t, 0]
                    for p in range(wd):
                        e = exp_neg(lg[t, p] - mx[p])
                        ss[p] += e
                        sm[0, p] += e * mt
                    continue
                if nc == 3:
                    m0 = mm[t, 0]
                    m1 = mm[t, 1]
                    m2 = mm[t, 2]
                    for p in range(wd):
                        e = exp_neg(lg[t, p] - mx[p])
                        ss[p] += e
                        sm[0, p] += e * m0
                        sm[1, p] += e * m1
                        sm[2, p] += e * m2
                    continue
                for p in range(wd):
                    e = exp_neg(lg[t, p] - mx[p])
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
    accumulators in the second): measured 15-25 % faster than the fused loop.
    ``dy`` is constant along a row, so only ``Σ gℓ``, ``Σ gℓ dx``
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
        lx, ly, a, b2, c, l0 = gather_block(idx, o, n, px0, py0, mux, muy, s11, s12, s22, la)
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
                    ev[p] = exp_neg(rc - dx * (at * dx + rl) - sh[p])
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
