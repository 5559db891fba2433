"""Shared pieces of the compiled (numba) kernels: constants, the exponential,
the structure-of-arrays form of the kernels, and the logits of one block row.

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

__all__ = ["EXPERT_LANES", "exp_neg_array", "gather_block", "kernel_arrays", "row_logits"]

# Flags that let LLVM vectorise the reductions (sum, max) and contract a*b+c
# into FMAs.  No "nnan"/"ninf"/"afn": inputs are checked to be finite, and the
# exponential is our own polynomial (below), so no approximate libm is needed.
_FM = {"reassoc", "contract", "nsz"}
_INF = np.inf




@nb.njit(inline="always", fastmath=_FM, cache=True)
def exp_neg(x: float) -> float:
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
        out[i] = exp_neg(x[i])
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
def gather_block(
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
def row_logits(
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


EXPERT_LANES = 16

