"""Expert initialisation and refinement (paper eq. 10-12).

With the centres, steering matrices and weights fixed, the gate is fixed, so
the reconstruction is linear in the experts: ``L̂ = W m`` with ``W`` the
``(pixels, K)`` gate matrix.  The refinement

``m ← m + η (L[μ] - L̂[μ])``

(the convergent sign; the paper's eq. 12 prints the opposite, see
``docs/paper-readings.md``) only needs the gate at the ``K`` centres: a sparse
``K x K`` matrix ``C``, computed once by the culled evaluation of
:mod:`smoe_gui.core.rendering`, so each iteration is one sparse product.  The PSNR
of the whole image after each iteration is then computed in one pass over the
pixels: the gate of a pixel (its block's culled list) is computed once and
applied to all ``iters + 1`` expert vectors at once.  The initial kernels are
isotropic, so the gate's exponentials separate into a row and a column factor
per kernel (see :func:`smoe_gui.core._kernels.experts_sse`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from .metrics import psnr_from_mse

__all__ = ["EXPERT_BLOCK", "ExpertResult", "initialize_experts", "sample_bilinear"]

#: Block side (pixels) of the culled gate used here.
EXPERT_BLOCK = 16


def sample_bilinear(image: NDArray[np.floating[Any]], points: NDArray[np.float64]) -> NDArray[np.float64]:
    """Bilinear samples of ``image`` (H, W) at ``points`` (K, 2) = (x, y) px,
    clamped to the image; returns (K,) float64."""
    h, w = image.shape
    x = np.clip(points[:, 0], 0.0, w - 1.0)
    y = np.clip(points[:, 1], 0.0, h - 1.0)
    x0 = np.minimum(np.floor(x).astype(np.intp), w - 2 if w > 1 else 0)
    y0 = np.minimum(np.floor(y).astype(np.intp), h - 2 if h > 1 else 0)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = x - x0
    fy = y - y0
    img = image.astype(np.float64)
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _check(
    image: NDArray[np.float32],
    mu: NDArray[np.float64],
    A: NDArray[np.float64],
    log_alpha: NDArray[np.float64],
    eta: float,
    iters: int,
) -> tuple[NDArray[np.float64], ...]:
    img = np.asarray(image)
    if img.ndim != 2 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"image must be a 2-D (H, W) array, got shape {img.shape}")
    mu = np.ascontiguousarray(mu, dtype=np.float64)
    A = np.ascontiguousarray(A, dtype=np.float64)
    la = np.ascontiguousarray(log_alpha, dtype=np.float64)
    k = la.shape[0] if la.ndim == 1 else -1
    if k < 1 or mu.shape != (k, 2) or A.shape != (k, 2, 2):
        raise ValueError(
            f"expected mu (K, 2), A (K, 2, 2), log_alpha (K,) with K >= 1; "
            f"got {mu.shape}, {A.shape}, {la.shape}"
        )
    for name, arr in (("image", img), ("mu", mu), ("A", A), ("log_alpha", la)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")
    if not math.isfinite(eta) or eta < 0:
        raise ValueError(f"eta must be a finite number >= 0, got {eta}")
    if isinstance(iters, bool) or int(iters) != iters or iters < 0:
        raise ValueError(f"iters must be an integer >= 0, got {iters!r}")
    return np.ascontiguousarray(img, dtype=np.float64), mu, A, la


class ExpertResult(NamedTuple):
    """Result of :func:`initialize_experts`.

    Attributes
    ----------
    m : (K,) float64
        Experts after the last iteration.
    psnr_db : list of float
        PSNR (dB) of the whole reconstruction after sampling, then after each
        iteration (length ``iters + 1``).
    reconstruction : (H, W) float32
        The reconstruction with the final experts (what ``render`` of the model
        gives, to float32 rounding).
    """

    m: NDArray[np.float64]
    psnr_db: list[float]
    reconstruction: NDArray[np.float32]


def initialize_experts(
    image: NDArray[np.float32],
    mu: NDArray[np.float64],
    A: NDArray[np.float64],
    log_alpha: NDArray[np.float64],
    eta: float,
    iters: int,
    targets: NDArray[np.float64] | None = None,
) -> ExpertResult:
    """Sample the image at the centres, then refine ``iters`` times.

    The update is ``m ← m + η (L[μ] - L̂[μ])`` (the convergent sign; the paper's
    eq. 12 prints the opposite), where ``L[μ]`` are bilinear samples of the
    image and ``L̂[μ]`` the current reconstruction at the centres.  The gate is
    the culled one of :mod:`smoe_gui.core.rendering` (left-out weight < 1e-6 per
    point), so the PSNR figures equal the dense formula's to that tolerance.

    Parameters
    ----------
    image : (H, W) float32
        Target image in [0, 1].
    mu : (K, 2), A : (K, 2, 2), log_alpha : (K,) float64
        Fixed kernel centres (px), steering matrices (1/px), log weights.
    eta : float
        Step size η (>= 0).
    iters : int
        Number of refinement iterations (>= 0).
    targets : (K,) float64, optional
        The values ``L[μ]`` to start from and refine towards, instead of the
        bilinear samples at the centres (the segment methods pass each
        kernel's mean gray value over its pixels).

    Returns
    -------
    ExpertResult
        ``(m, psnr_db, reconstruction)``: the experts, the PSNR (dB) of the
        whole reconstruction after sampling and after each iteration (length
        ``iters + 1``), and the final reconstruction, computed in the same pass
        over the pixels as the PSNR figures.

    Raises
    ------
    ValueError
        On wrong shapes, non-finite values, ``eta < 0`` or ``iters < 0``.
    """
    from .rendering import SKIP_WEIGHT, _kern, cull_tau

    kern = _kern()

    img, mu, A, la = _check(image, mu, A, log_alpha, eta, iters)
    h, w = img.shape
    k = la.shape[0]
    if targets is None:
        target = sample_bilinear(img, mu)
    else:
        target = np.ascontiguousarray(targets, dtype=np.float64)
        if target.shape != (k,) or not np.all(np.isfinite(target)):
            raise ValueError(f"targets must be K = {k} finite values, got shape {target.shape}")
    karr = kern.kernel_arrays(mu, A, la)
    tau = cull_tau(k, SKIP_WEIGHT)
    bs = EXPERT_BLOCK
    # boxes widened by half a pixel tile the image area, so the centres can
    # use the lists of the blocks they fall in
    off, idx, _, _, _ = kern.build_lists(karr, w, h, 0.0, 0.0, 1.0, 1.0, bs, 0.5, tau)
    col = np.floor(mu[:, 0] + 0.5)
    row = np.floor(mu[:, 1] + 0.5)
    inside = (mu[:, 0] >= -0.5) & (mu[:, 0] <= w - 0.5) & (mu[:, 1] >= -0.5) & (mu[:, 1] <= h - 0.5)
    col = np.clip(col, 0, w - 1).astype(np.int64) // bs
    row = np.clip(row, 0, h - 1).astype(np.int64) // bs
    blk = np.where(inside, row * (-(-w // bs)) + col, -1).astype(np.int64)
    roff, cols, vals = kern.point_weights(
        mu[:, 0].copy(), mu[:, 1].copy(), blk, off, idx, *karr[:6], np.arange(k, dtype=np.int32)
    )
    experts = np.empty((iters + 1, k))
    experts[0] = target
    for t in range(iters):
        at_centres = kern.csr_matvec(roff, cols, vals, experts[t])
        experts[t + 1] = experts[t] + eta * (target - at_centres)
    recon = np.empty((h, w), dtype=np.float32)
    sse = kern.experts_sse(off, idx, *karr[:6], experts, img, bs, recon)
    n_px = float(h * w)
    history = [psnr_from_mse(float(e) / n_px) for e in sse]
    return ExpertResult(experts[-1].copy(), history, recon)
