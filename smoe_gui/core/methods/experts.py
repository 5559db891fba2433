"""Expert initialisation: refinement (paper eq. 10-12) or least squares.

With the centres, steering matrices and weights fixed, the gate is fixed, so
the reconstruction is linear in the experts: ``L̂ = W m`` with ``W`` the
``(pixels, K)`` gate matrix.  For a colour image ``(H, W, C)`` the experts are
``(K, C)``: the gate is shared by the channels and every step below runs per
channel on the same gate.

``refine`` (the paper): sample the image at the centres, then

``m ← m + η (L[μ] - L̂[μ])``

(the convergent sign; the paper's eq. 12 prints the opposite, see
``docs/paper-readings.md``).  That only needs the gate at the ``K`` centres: a
sparse ``K x K`` matrix ``C``, computed once by the culled evaluation of
:mod:`smoe_gui.core.rendering.culled`, so each iteration is one sparse product.  The
whole-image MSE of each iterate is computed in passes over the pixels that
evaluate each pixel's gate (its block's culled list) once and apply it to many
iterates at once.  By default (``stop="mse"``) the refinement stops at the
first iterate whose whole-image MSE does not fall and keeps the best one (the
paper's "until convergence in mean squared error"); ``stop="fixed"`` runs
``iters`` iterations and keeps the last.

``lstsq``: the experts that minimise the whole-image MSE for the fixed gate,
from the normal equations ``WᵀW m = Wᵀy`` over the culled gate weights (a
sparse ``K x K`` system, one solve per channel), with a tiny ridge towards the
sampled experts so that kernels without pixels keep a sensible value.

The initial kernels are isotropic, so the gate's exponentials separate into a
row and a column factor per kernel (see
:func:`smoe_gui.core.rendering._kernels.experts_sse`).  The PSNR figures are
:func:`smoe_gui.core.metrics.psnr_from_mse` of the MSE over all pixels and
channels: the same numbers as :func:`smoe_gui.core.metrics.psnr` of the
reconstruction.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ..metrics import psnr_from_mse

__all__ = [
    "EXPERT_BLOCK",
    "EXPERT_METHODS",
    "EXPERT_STOPS",
    "ExpertResult",
    "initialize_experts",
    "sample_bilinear",
]

#: Block side (pixels) of the culled gate used here.
EXPERT_BLOCK = 16
#: Accepted values of ``method`` (the ``experts`` parameter).
EXPERT_METHODS: tuple[str, ...] = ("refine", "lstsq")
#: Accepted values of ``stop`` (the ``expert_stop`` parameter).
EXPERT_STOPS: tuple[str, ...] = ("mse", "fixed")
#: Relative ridge of the least-squares experts (times the mean diagonal of WᵀW).
LSTSQ_RIDGE = 1e-9

def sample_bilinear(
    image: NDArray[np.floating[Any]], points: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Bilinear samples of ``image`` (H, W) or (H, W, C) at ``points`` (K, 2) =
    (x, y) px, clamped to the image; returns (K,) or (K, C) float64 (each
    channel sampled alike)."""
    h, w = image.shape[:2]
    x = np.clip(points[:, 0], 0.0, w - 1.0)
    y = np.clip(points[:, 1], 0.0, h - 1.0)
    x0 = np.minimum(np.floor(x).astype(np.intp), w - 2 if w > 1 else 0)
    y0 = np.minimum(np.floor(y).astype(np.intp), h - 2 if h > 1 else 0)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = x - x0
    fy = y - y0
    if image.ndim == 3:
        fx = fx[:, None]
        fy = fy[:, None]
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
    stop: str,
    method: str,
) -> tuple[NDArray[np.float64], ...]:
    img = np.asarray(image)
    if (
        img.ndim not in (2, 3)
        or img.shape[0] < 1
        or img.shape[1] < 1
        or (img.ndim == 3 and img.shape[2] < 1)
    ):
        raise ValueError(f"image must be a 2-D (H, W) or (H, W, C) array, got shape {img.shape}")
    if stop not in EXPERT_STOPS:
        raise ValueError(f"stop must be one of {', '.join(EXPERT_STOPS)}, got {stop!r}")
    if method not in EXPERT_METHODS:
        raise ValueError(f"method must be one of {', '.join(EXPERT_METHODS)}, got {method!r}")
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
    m : (K,) or (K, C) float64
        The experts kept: the best iterate (``stop="mse"``), the last one
        (``stop="fixed"``), or the least-squares experts.
    psnr_db : list of float
        PSNR (dB, :func:`~smoe_gui.core.metrics.psnr_from_mse` of the MSE over
        all pixels and channels) of the whole reconstruction after sampling,
        then after each iteration made (``refine``; with ``stop="mse"`` the
        last entry is the first iterate that did not improve, unless the cap
        was reached), or of the least-squares experts (``lstsq``: 2 entries).
    reconstruction : (H, W) or (H, W, C) float32
        The reconstruction with the experts kept (what ``render`` of the model
        gives, to float32 rounding).
    """

    m: NDArray[np.float64]
    psnr_db: list[float]
    reconstruction: NDArray[np.float32]


class _Gate:
    """The culled gate of an image's pixel grid and at the kernel centres."""

    def __init__(
        self,
        img: NDArray[np.float64],
        mu: NDArray[np.float64],
        A: NDArray[np.float64],
        la: NDArray[np.float64],
    ) -> None:
        from ..rendering.culled import SKIP_WEIGHT, _kern, cull_tau

        kern = _kern()
        self.kern = kern
        self.img = img  # (H, W, C)
        h, w, _ = img.shape
        k = la.shape[0]
        self.k = k
        self.karr = kern.kernel_arrays(mu, A, la)
        tau = cull_tau(k, SKIP_WEIGHT)
        bs = EXPERT_BLOCK
        # boxes widened by half a pixel tile the image area, so the centres can
        # use the lists of the blocks they fall in
        self.off, self.idx, _, _, _ = kern.build_lists(
            self.karr, w, h, 0.0, 0.0, 1.0, 1.0, bs, 0.5, tau
        )
        self.mu = mu

    def at_centres(self) -> Any:
        """The ``K x K`` gate at the centres as a scipy CSR matrix (rows sum to 1)."""
        import scipy.sparse

        kern, mu = self.kern, self.mu
        h, w, _ = self.img.shape
        bs = EXPERT_BLOCK
        col = np.floor(mu[:, 0] + 0.5)
        row = np.floor(mu[:, 1] + 0.5)
        inside = (
            (mu[:, 0] >= -0.5) & (mu[:, 0] <= w - 0.5) & (mu[:, 1] >= -0.5) & (mu[:, 1] <= h - 0.5)
        )
        col = np.clip(col, 0, w - 1).astype(np.int64) // bs
        row = np.clip(row, 0, h - 1).astype(np.int64) // bs
        blk = np.where(inside, row * (-(-w // bs)) + col, -1).astype(np.int64)
        roff, cols, vals = kern.point_weights(
            mu[:, 0].copy(),
            mu[:, 1].copy(),
            blk,
            self.off,
            self.idx,
            *self.karr[:6],
            np.arange(self.k, dtype=np.int32),
        )
        return scipy.sparse.csr_matrix((vals, cols, roff), shape=(self.k, self.k))

    def sse(
        self, iterates: list[NDArray[np.float64]], recon_of: int | None
    ) -> tuple[NDArray[np.float64], NDArray[np.float32] | None]:
        """Whole-image sum of squared errors (over all channels) of each
        ``(K, C)`` iterate, and the reconstruction ``(H, W, C)`` of iterate
        ``recon_of`` (None: none)."""
        sse, recons = self.sse_all(iterates, recon_of, 1)
        return sse, (recons[0] if recons is not None else None)

    def sse_all(
        self, iterates: list[NDArray[np.float64]], first: int | None, count: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float32] | None]:
        """As :meth:`sse`, with the reconstructions ``(count, H, W, C)`` of the
        iterates ``first .. first + count - 1`` (one pass over the image)."""
        h, w, nc = self.img.shape
        experts = np.ascontiguousarray(
            np.concatenate([e.T for e in iterates], axis=0), dtype=np.float64
        )  # (T·C, K): row t·C + c is channel c of iterate t
        chan = np.tile(np.arange(nc, dtype=np.int64), len(iterates))
        shape = (count, h, w, nc) if first is not None else (1, 1, 1, nc)
        recon = np.empty(shape, dtype=np.float32)
        rec0 = -1 if first is None else first * nc
        rows = self.kern.experts_sse(
            self.off, self.idx, *self.karr[:6], experts, chan, self.img, EXPERT_BLOCK, recon, rec0
        )
        return rows.reshape(len(iterates), nc).sum(axis=1), (recon if first is not None else None)

    def least_squares(self, start: NDArray[np.float64]) -> NDArray[np.float64]:
        """Experts ``(K, C)`` minimising ``‖W m - y‖² + λ‖m - start‖²`` per channel,
        ``λ = LSTSQ_RIDGE · mean diag(WᵀW)`` (a sparse Cholesky-free LU solve)."""
        import scipy.sparse
        import scipy.sparse.linalg

        kern = self.kern
        rows, cols, vals, rhs_pairs = kern.gate_normal_equations(
            self.off, self.idx, *self.karr[:6], self.img, EXPERT_BLOCK
        )
        gram = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(self.k, self.k)).tocsc()
        rhs = kern.reduce_pairs(self.idx, rhs_pairs, self.k).T  # (K, C)
        diag = gram.diagonal()
        lam = LSTSQ_RIDGE * max(float(diag.mean()), 1e-300)
        system = (gram + lam * scipy.sparse.identity(self.k, format="csc")).tocsc()
        solution = scipy.sparse.linalg.splu(system).solve(np.ascontiguousarray(rhs + lam * start))
        return np.asarray(solution, dtype=np.float64).reshape(self.k, -1)


def _as_channels_last(img: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.ascontiguousarray(img[:, :, None] if img.ndim == 2 else img)


def initialize_experts(
    image: NDArray[np.float32],
    mu: NDArray[np.float64],
    A: NDArray[np.float64],
    log_alpha: NDArray[np.float64],
    eta: float,
    iters: int,
    *,
    stop: str = "mse",
    method: str = "refine",
    targets: NDArray[np.float64] | None = None,
) -> ExpertResult:
    """Experts for fixed kernels: sampling and refinement, or least squares.

    ``refine``: sample the image at the centres, then refine with
    ``m ← m + η (L[μ] - L̂[μ])`` (the convergent sign; the paper's eq. 12
    prints the opposite), where ``L[μ]`` are bilinear samples of the image and
    ``L̂[μ]`` the current reconstruction at the centres.  With ``stop="mse"``
    it stops at the first iterate whose whole-image MSE does not fall (at most
    ``iters`` iterations) and keeps the best iterate; with ``stop="fixed"`` it
    makes exactly ``iters`` iterations and keeps the last.  ``lstsq``: the
    least-squares experts of the fixed gate (normal equations over the culled
    gate, one sparse solve per channel).  The gate is the culled one of
    :mod:`smoe_gui.core.rendering.culled` (left-out weight < 1e-6 per point), so the PSNR
    figures equal the dense formula's to that tolerance.

    Parameters
    ----------
    image : (H, W) or (H, W, C) float32
        Target image in [0, 1]; a colour image gives ``(K, C)`` experts, every
        channel on the same gate.
    mu : (K, 2), A : (K, 2, 2), log_alpha : (K,) float64
        Fixed kernel centres (px), steering matrices (1/px), log weights.
    eta : float
        Step size η (>= 0).
    iters : int
        Refinement iterations (>= 0): the cap (``stop="mse"``) or the count.
    stop : {"mse", "fixed"}
        When the refinement ends (the ``expert_stop`` parameter).
    method : {"refine", "lstsq"}
        How the experts are found (the ``experts`` parameter).
    targets : (K,) or (K, C) float64, optional
        The values ``L[μ]`` to start from and refine towards (and the ridge
        anchor of ``lstsq``), instead of the bilinear samples at the centres;
        one column per channel of a colour image.

    Returns
    -------
    ExpertResult
        ``(m, psnr_db, reconstruction)``: the experts kept, the PSNR (dB) of
        the whole reconstruction after sampling and after each iteration made
        (``lstsq``: after sampling and of the solution), and the reconstruction
        with the experts kept.

    Raises
    ------
    ValueError
        On wrong shapes, non-finite values, ``eta < 0``, ``iters < 0`` or an
        unknown ``stop`` or ``method``.
    """
    img, mu, A, la = _check(image, mu, A, log_alpha, eta, iters, stop, method)
    gray = img.ndim == 2
    img3 = _as_channels_last(img)
    h, w, nc = img3.shape
    n_values = float(h * w * nc)
    k = la.shape[0]
    if targets is None:
        target = sample_bilinear(img3, mu)  # (K, C)
    else:
        target = np.asarray(targets, dtype=np.float64)
        if target.shape not in ((k, nc),) + (((k,),) if nc == 1 else ()):
            want = f"({k},)" if nc == 1 else f"({k}, {nc})"
            raise ValueError(f"targets must have shape {want}, got {target.shape}")
        if not np.all(np.isfinite(target)):
            raise ValueError("targets contain NaN or infinite values")
        target = np.ascontiguousarray(target.reshape(k, nc))
    gate = _Gate(img3, mu, A, la)

    def result(
        m: NDArray[np.float64], sse: list[float], recon: NDArray[np.float32] | None
    ) -> ExpertResult:
        assert recon is not None
        history = [psnr_from_mse(max(e, 0.0) / n_values) for e in sse]
        out_m = m[:, 0].copy() if gray else m.copy()
        return ExpertResult(out_m, history, recon[:, :, 0].copy() if gray else recon.copy())

    if method == "lstsq":
        solution = gate.least_squares(target)
        sse, recon = gate.sse([target, solution], recon_of=1)
        return result(solution, list(sse), recon)

    centres = gate.at_centres()

    def advance(m: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(m + eta * (target - centres @ m))

    if stop == "fixed":
        iterates = [target]
        for _ in range(iters):
            iterates.append(advance(iterates[-1]))
        sse, recon = gate.sse(iterates, recon_of=len(iterates) - 1)
        return result(iterates[-1], list(sse), recon)

    # stop="mse": evaluate iterates in passes of growing size; stop at the first
    # iterate whose whole-image MSE does not fall, keep the best (the one before)
    history: list[float] = []
    best_m = target
    best_recon: NDArray[np.float32] | None = None
    current = target
    made = 0  # iterations made so far
    chunk = min(iters + 1, 11)
    while True:
        batch = [current] if not history else []
        while len(batch) < chunk and made < iters:
            current = advance(current)
            made += 1
            batch.append(current)
        # one pass gives every iterate's error and reconstruction: the best one
        # needs no second pass (the refinement usually peaks before its cap)
        sse, recons = gate.sse_all(batch, 0, len(batch))
        assert recons is not None
        stopped = False
        for i, e in enumerate(sse):
            if history and not e < history[-1]:
                history.append(float(e))
                stopped = True
                break
            history.append(float(e))
            best_m = batch[i]
            best_recon = recons[i]
        if stopped or made >= iters:
            break
        chunk = min(2 * chunk, 64)
    if best_recon is None:
        _, best_recon = gate.sse([best_m], recon_of=0)
    return result(best_m, history, best_recon)
