"""What each kernel of a model governs: gate territories, gate shares and
single-kernel weight maps, fast enough to follow training.

With a softmax gate, a kernel's Σ ellipse is not the region it governs: a wide
kernel may own a sliver, a narrow one a large area.  The honest picture is the
*gate partition*: at each pixel the kernel of largest gate weight,
``argmax_i w_i(x) = argmax_i (log α_i - ‖A_iᵀ(x - μ_i)‖²)`` (the softmax is
monotone, so the largest weight has the largest logit).

Everything here evaluates only the kernels that can matter per block of
pixels, with the fast renderer's per-block lists
(:func:`smoe_gui.core.rendering._kernels.build_lists`,
:class:`smoe_gui.core.rendering.culled.CullLists`):

* :func:`gate_territories` builds the lists with margin 0: a kernel is left out
  of a block only when an upper bound of its logit over the block is below
  ``L_b``, the best lower bound of any kernel's logit there.  The largest
  logit at every pixel of the block is at least ``L_b``, so the kernel that
  gives it is never left out: the partition is exact, and the lists are much
  shorter than the renderer's.
* :func:`kernel_weight_map`, :func:`gate_shares` and :func:`removal_costs`
  use the renderer's lists (``τ = ln(K/ε)``, ``ε = 1e-6``): weights differ from
  the dense formula by less than ``ε``.  The weight map evaluates only the blocks whose list holds
  the kernel; everywhere else its weight is below ``ε/K``.

Output grids follow :func:`smoe_gui.core.rendering.culled.output_grid`: ``height x width``
pixels covering the model's whole image, so the partition can be computed at
the size a view shows it.  Qt-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
from numba import prange
from numpy.typing import NDArray

from ..labels import label_boundaries
from ..model import SmoeModel
from . import _kernels
from ._common import _FM, _INF, gather_block, row_logits
from .culled import DEFAULT_BLOCK, CullLists, output_grid

__all__ = [
    "Territories",
    "gate_shares",
    "gate_territories",
    "kernel_weight_map",
    "removal_costs",
    "territory_outline",
]

I32 = NDArray[np.int32]
F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


# --------------------------------------------------------------------------
# numba kernels (the logits of a block row are the renderer's: _common.row_logits)
# --------------------------------------------------------------------------


@nb.njit(parallel=True, cache=True, nogil=True)
def _argmax_blocks(
    off: np.ndarray,
    idx: np.ndarray,
    mux: np.ndarray,
    muy: np.ndarray,
    s11: np.ndarray,
    s12: np.ndarray,
    s22: np.ndarray,
    la: np.ndarray,
    nx: int,
    ny: int,
    ox: float,
    oy: float,
    sx: float,
    sy: float,
    bs: int,
    label: np.ndarray,
) -> None:
    """``label[j, i]`` = the listed kernel of largest logit at output pixel
    ``(i, j)`` (ties: the lowest index, as ``numpy.argmax``)."""
    nbx = -(-nx // bs)
    nblk = off.shape[0] - 1
    for b in prange(nblk):
        bx = b % nbx
        by = b // nbx
        i0 = bx * bs
        j0 = by * bs
        i1 = min(i0 + bs, nx)
        j1 = min(j0 + bs, ny)
        o = off[b]
        n = off[b + 1] - o
        wd = i1 - i0
        mx = np.empty(wd)
        am = np.empty(wd, dtype=np.int32)
        for j in range(j0, j1):
            py = oy + j * sy
            for p in range(wd):
                mx[p] = -_INF
                am[p] = -1
            for t in range(n):
                k = idx[o + t]
                dy = py - muy[k]
                rc = la[k] - s22[k] * dy * dy
                rl = 2.0 * s12[k] * dy
                a = s11[k]
                for p in range(wd):
                    dx = ox + (i0 + p) * sx - mux[k]
                    v = rc - dx * (a * dx + rl)
                    if v > mx[p] or (v == mx[p] and k < am[p]):
                        mx[p] = v
                        am[p] = k
            for p in range(wd):
                label[j, i0 + p] = am[p]


@nb.njit(parallel=True, fastmath=_FM, cache=True, nogil=True)
def _share_pairs(
    off: np.ndarray,
    idx: np.ndarray,
    mux: np.ndarray,
    muy: np.ndarray,
    s11: np.ndarray,
    s12: np.ndarray,
    s22: np.ndarray,
    la: np.ndarray,
    nx: int,
    ny: int,
    ox: float,
    oy: float,
    sx: float,
    sy: float,
    bs: int,
) -> np.ndarray:
    """Per (block, listed kernel) pair: ``Σ w_k`` over the block's pixels."""
    nbx = -(-nx // bs)
    nblk = off.shape[0] - 1
    acc = np.zeros(idx.shape[0])
    for b in prange(nblk):
        bx = b % nbx
        by = b // nbx
        i0 = bx * bs
        j0 = by * bs
        i1 = min(i0 + bs, nx)
        j1 = min(j0 + bs, ny)
        o = off[b]
        n = off[b + 1] - o
        wd = i1 - i0
        lx, ly, a, b2, c, l0 = gather_block(idx, o, n, 0.0, 0.0, mux, muy, s11, s12, s22, la)
        u = np.empty(wd)
        for p in range(wd):
            u[p] = ox + (i0 + p) * sx
        lg = np.empty((n, wd))
        mx = np.empty(wd)
        ss = np.empty(wd)
        for j in range(j0, j1):
            py = oy + j * sy
            row_logits(n, py, wd, lx, ly, a, b2, c, l0, u, lg, mx)
            for p in range(wd):
                ss[p] = 0.0
            for t in range(n):
                for p in range(wd):
                    e = np.exp(lg[t, p] - mx[p])
                    lg[t, p] = e
                    ss[p] += e
            for t in range(n):
                s = 0.0
                for p in range(wd):
                    s += lg[t, p] / ss[p]
                acc[o + t] += s
    return acc


@nb.njit(parallel=True, fastmath=_FM, cache=True, nogil=True)
def _removal_pairs(
    off: np.ndarray,
    idx: np.ndarray,
    mux: np.ndarray,
    muy: np.ndarray,
    s11: np.ndarray,
    s12: np.ndarray,
    s22: np.ndarray,
    la: np.ndarray,
    m: np.ndarray,
    target: np.ndarray,
    nx: int,
    ny: int,
    bs: int,
) -> np.ndarray:
    """Per (block, listed kernel) pair: the change of the summed squared error over
    the block's pixels when that kernel alone is removed (the others' gates
    renormalised); ``1e30`` per pixel where the others weigh too little for the
    renormalisation to be computed (the kernel cannot be spared there).

    ``m`` is ``(K, C)``, ``target`` ``(ny, nx, C)``; the pixel grid is the
    model's own (pixel ``(j, i)`` at ``(i, j)``)."""
    nbx = -(-nx // bs)
    nblk = off.shape[0] - 1
    nc = m.shape[1]
    acc = np.zeros(idx.shape[0])
    for b in prange(nblk):
        bx = b % nbx
        by = b // nbx
        i0 = bx * bs
        j0 = by * bs
        i1 = min(i0 + bs, nx)
        j1 = min(j0 + bs, ny)
        o = off[b]
        n = off[b + 1] - o
        wd = i1 - i0
        lx, ly, a, b2, c, l0 = gather_block(idx, o, n, 0.0, 0.0, mux, muy, s11, s12, s22, la)
        u = np.empty(wd)
        for p in range(wd):
            u[p] = float(i0 + p)
        lg = np.empty((n, wd))
        mx = np.empty(wd)
        ss = np.empty(wd)
        num = np.empty((wd, nc))
        for j in range(j0, j1):
            row_logits(n, float(j), wd, lx, ly, a, b2, c, l0, u, lg, mx)
            for p in range(wd):
                ss[p] = 0.0
                for ch in range(nc):
                    num[p, ch] = 0.0
            for t in range(n):
                k = idx[o + t]
                for p in range(wd):
                    e = np.exp(lg[t, p] - mx[p])
                    lg[t, p] = e
                    ss[p] += e
                    for ch in range(nc):
                        num[p, ch] += e * m[k, ch]
            for t in range(n):
                k = idx[o + t]
                s = 0.0
                for p in range(wd):
                    e = lg[t, p]
                    rest = ss[p] - e
                    if rest <= 1e-9 * ss[p]:
                        s += 1e30
                        continue
                    for ch in range(nc):
                        now = num[p, ch] / ss[p] - target[j, i0 + p, ch]
                        without = (num[p, ch] - e * m[k, ch]) / rest - target[j, i0 + p, ch]
                        s += without * without - now * now
                acc[o + t] += s
    return acc


@nb.njit(parallel=True, fastmath=_FM, cache=True, nogil=True)
def _weight_blocks(
    off: np.ndarray,
    idx: np.ndarray,
    blocks: np.ndarray,
    target: int,
    mux: np.ndarray,
    muy: np.ndarray,
    s11: np.ndarray,
    s12: np.ndarray,
    s22: np.ndarray,
    la: np.ndarray,
    nx: int,
    ny: int,
    ox: float,
    oy: float,
    sx: float,
    sy: float,
    bs: int,
    out: np.ndarray,
) -> None:
    """``w_target`` at every pixel of the given blocks (whose lists hold it)."""
    nbx = -(-nx // bs)
    for q in prange(blocks.shape[0]):
        b = blocks[q]
        bx = b % nbx
        by = b // nbx
        i0 = bx * bs
        j0 = by * bs
        i1 = min(i0 + bs, nx)
        j1 = min(j0 + bs, ny)
        o = off[b]
        n = off[b + 1] - o
        wd = i1 - i0
        lx, ly, a, b2, c, l0 = gather_block(idx, o, n, 0.0, 0.0, mux, muy, s11, s12, s22, la)
        u = np.empty(wd)
        for p in range(wd):
            u[p] = ox + (i0 + p) * sx
        lg = np.empty((n, wd))
        mx = np.empty(wd)
        own = np.empty(wd)
        for j in range(j0, j1):
            py = oy + j * sy
            row_logits(n, py, wd, lx, ly, a, b2, c, l0, u, lg, mx)
            for t in range(n):
                if idx[o + t] == target:
                    for p in range(wd):
                        own[p] = lg[t, p]
            for p in range(wd):
                s = 0.0
                for t in range(n):
                    s += np.exp(lg[t, p] - mx[p])
                out[j, i0 + p] = np.exp(own[p] - mx[p]) / s


# the dispatchers, typed loosely (numba's stubs do not know the signatures)
_ARGMAX: Any = _argmax_blocks
_SHARES: Any = _share_pairs
_REMOVAL: Any = _removal_pairs
_WEIGHTS: Any = _weight_blocks


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _grid(
    model: SmoeModel, height: int | None, width: int | None
) -> tuple[F64, F64, tuple[int, int, float, float, float, float]]:
    xs, ys = output_grid(model, height=height, width=width)
    sx = model.width / xs.shape[0]
    sy = model.height / ys.shape[0]
    return xs, ys, (int(xs.shape[0]), int(ys.shape[0]), float(xs[0]), float(ys[0]), sx, sy)


def _check_index(model: SmoeModel, index: int) -> int:
    k = int(index)
    if not 0 <= k < model.n_kernels:
        raise ValueError(f"kernel {index} does not exist; the model has {model.n_kernels} kernels")
    return k


# --------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Territories:
    """The gate partition of a model on an output grid.

    Attributes
    ----------
    label : (h, w) int32
        Index of the kernel of largest gate weight at each output pixel.
    xs : (w,) float64, ys : (h,) float64
        Model coordinates (px) of the output pixel centres.
    pixel_area : float
        Area of one output pixel in image pixels (``W·H / (w·h)``).
    n_kernels : int
        Kernels of the model.
    """

    label: I32
    xs: F64
    ys: F64
    pixel_area: float
    n_kernels: int

    @property
    def shape(self) -> tuple[int, int]:
        """``(h, w)`` of the output grid."""
        return (int(self.label.shape[0]), int(self.label.shape[1]))

    def areas(self) -> F64:
        """(K,) area of each kernel's territory in image pixels (0: it owns none)."""
        counts = np.bincount(self.label.ravel(), minlength=self.n_kernels)
        return counts.astype(np.float64) * self.pixel_area

    def boundaries(self) -> NDArray[np.bool_]:
        """(h, w) bool: pixels whose right or lower neighbour belongs to another
        kernel (see :func:`smoe_gui.core.labels.label_boundaries`)."""
        return label_boundaries(self.label)

    def fill(self, experts: F64) -> F32:
        """(h, w) float32: each territory filled with its kernel's value
        ``experts[label]`` (e.g. ``model.m``, the expert values)."""
        values = np.asarray(experts, dtype=np.float64).reshape(-1)
        if values.shape[0] != self.n_kernels:
            raise ValueError(
                f"fill needs one value per kernel ({self.n_kernels}), got {values.shape[0]}"
            )
        return np.ascontiguousarray(values[self.label], dtype=np.float32)


def gate_territories(
    model: SmoeModel, height: int | None = None, width: int | None = None
) -> Territories:
    """The gate partition: at each output pixel the kernel of largest ``w_i``.

    Parameters
    ----------
    model : SmoeModel
    height, width : int, optional
        Output grid (default: the model's image); it covers the whole image
        area (:func:`smoe_gui.core.rendering.culled.output_grid`).

    Returns
    -------
    Territories

    Raises
    ------
    ValueError
        For an output size outside 1…16384.

    Notes
    -----
    Exact: the per-block lists are built with margin 0 (see the module
    docstring), so ``label`` equals ``argmax`` of the dense gate
    (:func:`smoe_gui.core.model.dense_gate`) wherever the two largest logits
    differ by more than rounding.
    """
    xs, ys, grid = _grid(model, height, width)
    nx, ny, ox, oy, sx, sy = grid
    karr = _kernels.kernel_arrays(model.mu, model.A, model.log_alpha)
    off, idx, _best, _arg, _q = _kernels.build_lists(
        karr, nx, ny, ox, oy, sx, sy, DEFAULT_BLOCK, 0.0, 1e-6
    )
    label = np.empty((ny, nx), dtype=np.int32)
    _ARGMAX(off, idx, *karr[:6], nx, ny, ox, oy, sx, sy, DEFAULT_BLOCK, label)
    return Territories(
        label=label,
        xs=xs,
        ys=ys,
        pixel_area=float(model.width * model.height) / float(nx * ny),
        n_kernels=model.n_kernels,
    )


def territory_outline(label: NDArray[np.integer], index: int) -> NDArray[np.bool_]:
    """(h, w) bool: the pixels of territory ``index`` that touch another
    territory or the image border (its outline, one pixel wide, inside it)."""
    lab = np.asarray(label)
    if lab.ndim != 2:
        raise ValueError(f"label must be a 2-D array, got shape {lab.shape}")
    inside = lab == int(index)
    padded = np.pad(inside, 1, constant_values=False)
    interior = (
        padded[1:-1, 1:-1]
        & padded[:-2, 1:-1]
        & padded[2:, 1:-1]
        & padded[1:-1, :-2]
        & padded[1:-1, 2:]
    )
    return inside & ~interior


def gate_shares(model: SmoeModel, height: int | None = None, width: int | None = None) -> F64:
    """Each kernel's gate share: its weight ``w_i`` averaged over the image.

    Parameters
    ----------
    model : SmoeModel
    height, width : int, optional
        Output grid the average is taken on (default: the model's pixels).

    Returns
    -------
    (K,) float64
        Non-negative, summing to 1 (to within ``1e-6``).
    """
    _xs, _ys, grid = _grid(model, height, width)
    nx, ny, ox, oy, sx, sy = grid
    lists = CullLists.build(model.mu, model.A, model.log_alpha, grid, slack=0.0)
    karr = _kernels.kernel_arrays(model.mu, model.A, model.log_alpha)
    acc = _SHARES(lists.off, lists.idx, *karr[:6], nx, ny, ox, oy, sx, sy, DEFAULT_BLOCK)
    sums = np.bincount(lists.idx, weights=acc, minlength=model.n_kernels)
    return sums / float(nx * ny)


def removal_costs(model: SmoeModel, image: NDArray[np.floating]) -> F64:
    """What removing each kernel alone would cost: the increase of the summed
    squared error of the model's reconstruction of ``image``.

    Removing kernel ``k`` renormalises the others' gates, so at each pixel the
    reconstruction becomes ``(Σ_{j≠k} K_j m_j) / Σ_{j≠k} K_j``.  The sum is taken
    over the pixels of the blocks whose culled list holds the kernel (everywhere
    else its weight is below ``ε/K``, ``ε = 1e-6``); it matches removing the
    kernel and rendering again to within that.  A kernel that alone governs some
    pixel (the others' gates weigh below ``1e-9`` of its own there) costs
    ``>= 1e30``.  Used to re-place the least useful kernels during training
    (:mod:`smoe_gui.core.train.replace`); the idea is the pruning by
    contribution of Image-GS and 3D Gaussian splatting.

    Parameters
    ----------
    model : SmoeModel
        Gray (``m (K,)``) or colour (``m (K, C)``) experts.
    image : (H, W) or (H, W, C) float array
        The target, the model's own size, with the experts' channels.

    Returns
    -------
    (K,) float64
        Change of the summed squared error (units of the image's values
        squared); negative where removing the kernel would help.

    Raises
    ------
    ValueError
        For an image of another size or channel count than the model.
    """
    target = np.asarray(image, dtype=np.float64)
    channels = model.n_channels
    if target.shape[:2] != (model.height, model.width) or (
        target.reshape(target.shape[0], target.shape[1], -1).shape[2] != channels
    ):
        raise ValueError(
            f"removal_costs: the image has shape {target.shape}, the model is for "
            f"{model.height}x{model.width} with {channels} channel(s)"
        )
    if model.n_kernels == 0:
        return np.zeros(0)
    grid = (model.width, model.height, 0.0, 0.0, 1.0, 1.0)
    lists = CullLists.build(model.mu, model.A, model.log_alpha, grid, slack=0.0)
    karr = _kernels.kernel_arrays(model.mu, model.A, model.log_alpha)
    experts = np.ascontiguousarray(np.asarray(model.m, np.float64).reshape(model.n_kernels, -1))
    acc = _REMOVAL(
        lists.off, lists.idx, *karr[:6], experts,
        np.ascontiguousarray(target.reshape(model.height, model.width, channels)),
        model.width, model.height, DEFAULT_BLOCK,
    )
    return np.asarray(np.bincount(lists.idx, weights=acc, minlength=model.n_kernels))


def kernel_weight_map(
    model: SmoeModel, index: int, height: int | None = None, width: int | None = None
) -> F32:
    """The gate weight ``w_i(x) = K_i(x) / Σ_j K_j(x)`` of one kernel.

    Only the blocks whose culled list holds the kernel are evaluated; at every
    other pixel its weight is below ``1e-6 / K`` and the map holds 0.

    Parameters
    ----------
    model : SmoeModel
    index : int
        The kernel.
    height, width : int, optional
        Output grid (default: the model's image).

    Returns
    -------
    (h, w) float32 in [0, 1]

    Raises
    ------
    ValueError
        If ``index`` is not a kernel of the model.
    """
    k = _check_index(model, index)
    _xs, _ys, grid = _grid(model, height, width)
    nx, ny, ox, oy, sx, sy = grid
    lists = CullLists.build(model.mu, model.A, model.log_alpha, grid, slack=0.0)
    karr = _kernels.kernel_arrays(model.mu, model.A, model.log_alpha)
    pair_block = np.repeat(np.arange(lists.off.shape[0] - 1), np.diff(lists.off))
    blocks = np.ascontiguousarray(pair_block[lists.idx == k], dtype=np.int64)
    out = np.zeros((ny, nx), dtype=np.float32)
    if blocks.size:
        _WEIGHTS(
            lists.off, lists.idx, blocks, k, *karr[:6], nx, ny, ox, oy, sx, sy, DEFAULT_BLOCK, out
        )
    return out
