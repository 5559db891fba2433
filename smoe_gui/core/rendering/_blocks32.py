"""Compiled (numba) forward and backward passes over the culled blocks in float32:
the training path (``docs/rendering.md``, "float32 pair arithmetic").

The same passes as :mod:`._blocks`, with the per-pixel arithmetic (logits, the
exponential, the weights and their lane sums) in float32, twice as many lanes
per vector register as float64.  What must not lose digits stays float64: the
kernels' centres relative to the block origin are formed in float64 and only
then rounded, each (row, kernel) term ``log α - s22·dy²`` and ``2·s12·dy`` is
formed in float64, and every per-(block, kernel) gradient sum is accumulated in
float64 from float32 sums over at most one block row (16 pixels), so no float32
sum has more than 16 terms in the backward.  Measured against dense float64:
image <= 1e-6, gradients <= 2e-6 relative (``tests/test_render.py``,
``benchmarks/bench_render.py``).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

from ._common import _FM

__all__ = ["backward_blocks32", "exp_neg32", "exp_neg32_array", "forward_blocks32"]

_F32 = np.float32
_CLAMP = _F32(-40.0)
_SIXTEENTH = _F32(0.0625)
_ONE = _F32(1.0)
_ZERO = _F32(0.0)
_NEG_INF = _F32(-np.inf)
_C2 = _F32(1.0 / 2.0)
_C3 = _F32(1.0 / 6.0)
_C4 = _F32(1.0 / 24.0)
_C5 = _F32(1.0 / 120.0)
_C6 = _F32(1.0 / 720.0)
_C7 = _F32(1.0 / 5040.0)
_C8 = _F32(1.0 / 40320.0)


@nb.njit(inline="always", fastmath=_FM, cache=True)
def exp_neg32(x: np.float32) -> np.float32:
    """``exp(x)`` for ``x <= 0`` in float32, vectorisable (no libm call).

    ``exp(x) = exp(x/16)^16``: a degree-8 Taylor polynomial of ``exp(x/16)``
    (``x/16 >= -2.5`` after the clamp at -40), then four squarings.  Four
    squarings rather than the float64 version's five: each squaring doubles the
    relative rounding error.  Absolute error < 1e-6 for ``x <= 0`` (a weight is
    at most ``exp(0) = 1``); the truncation error is largest where the result
    is tiny (relative 2e-5 at ``x = -20``, absolute < 1e-12).  Arguments below
    -40 give ~4e-18 instead of ``exp(x)``.
    """
    y = max(x, _CLAMP) * _SIXTEENTH
    p = _ONE + y * (_ONE + y * (_C2 + y * (_C3 + y * (_C4 + y * (
        _C5 + y * (_C6 + y * (_C7 + y * _C8)))))))
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    return p


@nb.njit(cache=True)
def exp_neg32_array(x: np.ndarray) -> np.ndarray:
    """:func:`exp_neg32` over a float32 array (for tests)."""
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = exp_neg32(x[i])
    return out


@nb.njit(inline="always", cache=True)
def _gather32(
    idx: np.ndarray, o: int, n: int, px0: float, py0: float,
    mux: np.ndarray, muy: np.ndarray, s11: np.ndarray, s12: np.ndarray, s22: np.ndarray,
    la: np.ndarray, m: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
           np.ndarray]:
    """The ``n`` kernels listed at ``idx[o:o+n]`` for one block (float64):
    centres relative to the block origin, ``s11``, ``2·s12``, ``s22``, ``log α``,
    ``1/(2·s11)`` (0 where ``s11 = 0``); and their experts ``(n, C)`` (float32)."""
    nc = m.shape[1]
    lx = np.empty(n)
    a = np.empty(n)
    ly = np.empty(n)
    b2 = np.empty(n)
    c = np.empty(n)
    l0 = np.empty(n)
    h = np.empty(n)
    mm = np.empty((n, nc), dtype=np.float32)
    for t in range(n):
        k = idx[o + t]
        lx[t] = mux[k] - px0
        ly[t] = muy[k] - py0
        a[t] = s11[k]
        b2[t] = 2.0 * s12[k]
        c[t] = s22[k]
        l0[t] = la[k]
        h[t] = 0.5 / s11[k] if s11[k] > 0.0 else 0.0
        for ch in range(nc):
            mm[t, ch] = np.float32(m[k, ch])
    return lx, a, ly, b2, c, l0, h, mm


#: Largest row-vertex offset (px) for the vertex form of :func:`_row_terms`.
_VERTEX_MAX = 1e4


@nb.njit(inline="always", cache=True)
def _row_terms(
    v: float, ly: float, b2: float, c: float, l0: float, lx: float, h: float
) -> tuple[np.float32, np.float32, np.float32]:
    """One kernel's logit along one block row, as float32 ``(r0, r1, x1)`` with
    ``logit(u) = r0 - d·(a·d + r1)``, ``d = u - x1`` (``u``: the pixel's column
    offset from the block origin), formed in float64.

    The vertex form: ``logit(u) = top - a·(u - xv)²`` with the row's largest
    value ``top = l0 - c·dy² + (b2·dy)²/(4a)`` at ``xv = lx - b2·dy/(2a)``, so
    ``r1 = 0``.  The direct form ``(l0 - c·dy²) - d·(a·d + b2·dy)``, ``d = u - lx``,
    adds terms that cancel for an elongated kernel far from its centre row
    (``c·dy²`` in the hundreds for a logit near 0): in float32 that cost 5e-5 of
    the image.  ``top`` has no such terms (``top >= l0 - c·dy²``,
    ``top <= l0``).  The direct form is kept where the vertex lies more than
    ``_VERTEX_MAX`` px away (``a`` ~ 0: the kernel is almost constant along the row).
    ``h = 1/(2a)`` (0 where ``a = 0``) comes from :func:`_gather32`.
    """
    dy = v - ly
    r0 = l0 - c * dy * dy
    r1 = b2 * dy
    shift = r1 * h
    if h > 0.0 and abs(shift) <= _VERTEX_MAX:
        return (np.float32(r0 + 0.5 * shift * r1), _ZERO, np.float32(lx - shift))
    return np.float32(r0), np.float32(r1), np.float32(lx)


@nb.njit(parallel=True, fastmath=_FM, cache=True, nogil=True)
def forward_blocks32(
    off: np.ndarray, idx: np.ndarray,
    mux: np.ndarray, muy: np.ndarray, s11: np.ndarray, s12: np.ndarray, s22: np.ndarray,
    la: np.ndarray, m: np.ndarray,
    nx: int, ny: int, ox: float, oy: float, sx: float, sy: float, bs: int,
    out: np.ndarray, shift: np.ndarray, invsum: np.ndarray, save: bool,
) -> None:
    """:func:`._blocks.forward_blocks` with float32 pixel arithmetic.

    The kernels' arrays are float64 (:func:`._common.kernel_arrays`), ``m``
    ``(K, C)`` float64; ``out`` is ``(ny, nx, C)`` float32 and, with ``save``,
    ``shift`` (the largest logit) and ``invsum`` (``1/Σ exp(logit - shift)``) are
    ``(ny, nx)`` float32.  The lane sums run over the block's listed kernels
    (tens) in float32.
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
        lx64, a64, ly, b2, c, l0, h, mm = _gather32(idx, o, n, px0, py0, mux, muy, s11, s12,
                                                    s22, la, m)
        a = a64.astype(np.float32)
        u = np.empty(bs, dtype=np.float32)
        for p in range(bs):
            u[p] = np.float32(p * sx)
        lg = np.empty((n, bs), dtype=np.float32)
        mx = np.empty(bs, dtype=np.float32)
        ss = np.empty(bs, dtype=np.float32)
        ev = np.empty(bs, dtype=np.float32)
        sm = np.empty((nc, bs), dtype=np.float32)
        for j in range(j0, j1):
            v = (j - j0) * sy
            for p in range(wd):
                mx[p] = _NEG_INF
            for t in range(n):
                rc, rl, xt = _row_terms(v, ly[t], b2[t], c[t], l0[t], lx64[t], h[t])
                at = a[t]
                for p in range(wd):
                    dx = u[p] - xt
                    val = rc - dx * (at * dx + rl)
                    lg[t, p] = val
                    mx[p] = max(mx[p], val)
            for p in range(wd):
                ss[p] = _ZERO
            for ch in range(nc):
                for p in range(wd):
                    sm[ch, p] = _ZERO
            for t in range(n):
                # C = 1, 3: one loop, no store and reload of the terms (10 % of
                # the forward's time)
                if nc == 1:
                    mt = mm[t, 0]
                    for p in range(wd):
                        e = exp_neg32(lg[t, p] - mx[p])
                        ss[p] += e
                        sm[0, p] += e * mt
                    continue
                if nc == 3:
                    m0 = mm[t, 0]
                    m1 = mm[t, 1]
                    m2 = mm[t, 2]
                    for p in range(wd):
                        e = exp_neg32(lg[t, p] - mx[p])
                        ss[p] += e
                        sm[0, p] += e * m0
                        sm[1, p] += e * m1
                        sm[2, p] += e * m2
                    continue
                for p in range(wd):
                    e = exp_neg32(lg[t, p] - mx[p])
                    ev[p] = e
                    ss[p] += e
                for ch in range(nc):
                    mt = mm[t, ch]
                    for p in range(wd):
                        sm[ch, p] += ev[p] * mt
            for p in range(wd):
                if n == 0:
                    for ch in range(nc):
                        out[j, i0 + p, ch] = _ZERO
                    continue
                inv = _ONE / ss[p]
                for ch in range(nc):
                    out[j, i0 + p, ch] = sm[ch, p] * inv
                if save:
                    shift[j, i0 + p] = mx[p]
                    invsum[j, i0 + p] = inv


@nb.njit(parallel=True, fastmath=_FM, cache=True, nogil=True)
def backward_blocks32(
    off: np.ndarray, idx: np.ndarray,
    mux: np.ndarray, muy: np.ndarray, s11: np.ndarray, s12: np.ndarray, s22: np.ndarray,
    la: np.ndarray, m: np.ndarray,
    nx: int, ny: int, ox: float, oy: float, sx: float, sy: float, bs: int,
    image: np.ndarray, shift: np.ndarray, invsum: np.ndarray, grad: np.ndarray,
) -> np.ndarray:
    """:func:`._blocks.backward_blocks` with float32 pixel arithmetic.

    ``image`` and ``grad`` are ``(ny, nx, C)`` float32, ``shift`` and ``invsum``
    ``(ny, nx)`` float32 from :func:`forward_blocks32`.  Returns the same
    ``(C + 6, pairs)`` float64 per-pair sums.

    Loop order: per block, the pixels' values (``g_c/Σ``, ``Σ_c g_c L_c/Σ``,
    the largest logit, the offsets ``dx``, ``dy`` from the block origin) go into
    arrays over all its pixels; then per listed kernel a first pass computes its
    gate terms row by row (the exponential; the row terms in float64) and a
    second, one loop over all the block's pixels, accumulates its ``C + 6``
    sums in registers, reduced once per (block, kernel) rather than once per
    row (the float64 pass's horizontal sums and per-row stores cost as much as
    its arithmetic).  Lanes past the right edge have ``e = g = 0``.
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
        rows = min(j0 + bs, ny) - j0
        npix = rows * bs
        px0 = ox + i0 * sx
        py0 = oy + j0 * sy
        o = off[b]
        n = off[b + 1] - o
        lx64, a64, ly, b2, c, l0, h, mm = _gather32(idx, o, n, px0, py0, mux, muy, s11, s12,
                                                    s22, la, m)
        u = np.empty(bs, dtype=np.float32)
        for p in range(bs):
            u[p] = np.float32(p * sx)
        uq = np.empty(npix, dtype=np.float32)
        vq = np.empty(npix, dtype=np.float32)
        sh = np.empty(npix, dtype=np.float32)
        gs = np.zeros(npix, dtype=np.float32)
        gcl = np.zeros((nc, npix), dtype=np.float32)
        ev = np.zeros(npix, dtype=np.float32)
        sgm = np.empty(nc, dtype=np.float32)
        for jj in range(rows):
            j = j0 + jj
            for p in range(bs):
                q = jj * bs + p
                uq[q] = u[p]
                vq[q] = np.float32(jj * sy)
                sh[q] = _ZERO
            for p in range(wd):
                q = jj * bs + p
                inv = invsum[j, i0 + p]
                sh[q] = shift[j, i0 + p]
                tot = _ZERO
                for ch in range(nc):
                    g = grad[j, i0 + p, ch] * inv
                    gcl[ch, q] = g
                    tot += g * image[j, i0 + p, ch]
                gs[q] = tot
        for t in range(n):
            at = np.float32(a64[t])
            # pass 1: the gate terms, row by row (lanes past wd stay 0)
            for jj in range(rows):
                rc, rl, xv = _row_terms(jj * sy, ly[t], b2[t], c[t], l0[t], lx64[t], h[t])
                q0 = jj * bs
                for p in range(wd):
                    dx = u[p] - xv
                    ev[q0 + p] = exp_neg32(rc - dx * (at * dx + rl) - sh[q0 + p])
            # pass 2: the sums over all the block's pixels
            xt = np.float32(lx64[t])
            yt = np.float32(ly[t])
            s_l = _ZERO
            s_x = _ZERO
            s_y = _ZERO
            s_xx = _ZERO
            s_xy = _ZERO
            s_yy = _ZERO
            if nc == 1:
                m0 = mm[t, 0]
                s_m0 = _ZERO
                for q in range(npix):
                    e = ev[q]
                    g0 = gcl[0, q]
                    gl = e * (g0 * m0 - gs[q])
                    dx = uq[q] - xt
                    dy = vq[q] - yt
                    gdx = gl * dx
                    s_m0 += g0 * e
                    s_l += gl
                    s_x += gdx
                    s_y += gl * dy
                    s_xx += gdx * dx
                    s_xy += gdx * dy
                    s_yy += gl * dy * dy
                acc[0, o + t] = s_m0
            elif nc == 3:
                m0 = mm[t, 0]
                m1 = mm[t, 1]
                m2 = mm[t, 2]
                s_m0 = _ZERO
                s_m1 = _ZERO
                s_m2 = _ZERO
                for q in range(npix):
                    e = ev[q]
                    g0 = gcl[0, q]
                    g1 = gcl[1, q]
                    g2 = gcl[2, q]
                    gl = e * (g0 * m0 + g1 * m1 + g2 * m2 - gs[q])
                    dx = uq[q] - xt
                    dy = vq[q] - yt
                    gdx = gl * dx
                    s_m0 += g0 * e
                    s_m1 += g1 * e
                    s_m2 += g2 * e
                    s_l += gl
                    s_x += gdx
                    s_y += gl * dy
                    s_xx += gdx * dx
                    s_xy += gdx * dy
                    s_yy += gl * dy * dy
                acc[0, o + t] = s_m0
                acc[1, o + t] = s_m1
                acc[2, o + t] = s_m2
            else:
                for ch in range(nc):
                    sgm[ch] = _ZERO
                for q in range(npix):
                    e = ev[q]
                    dot = -gs[q]
                    for ch in range(nc):
                        g = gcl[ch, q]
                        dot += g * mm[t, ch]
                        sgm[ch] += g * e
                    gl = e * dot
                    dx = uq[q] - xt
                    dy = vq[q] - yt
                    gdx = gl * dx
                    s_l += gl
                    s_x += gdx
                    s_y += gl * dy
                    s_xx += gdx * dx
                    s_xy += gdx * dy
                    s_yy += gl * dy * dy
                for ch in range(nc):
                    acc[ch, o + t] = sgm[ch]
            acc[nc, o + t] = s_l
            acc[nc + 1, o + t] = s_x
            acc[nc + 2, o + t] = s_y
            acc[nc + 3, o + t] = s_xx
            acc[nc + 4, o + t] = s_xy
            acc[nc + 5, o + t] = s_yy
    return acc
