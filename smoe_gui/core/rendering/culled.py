"""Rendering a model to an image: fast local evaluation, forward and backward.

The gate is a softmax, so every kernel has *some* weight at every pixel.  The
fast path evaluates, per block of pixels, only the kernels that can matter
there, and proves that the rest do not: a kernel is left out of a block only
when an upper bound of its gate logit over the block lies more than ``τ``
below the best lower bound of any kernel's logit over the same block.  With
``τ = ln(K/ε)`` the weight left out at any pixel is below ``ε = 1e-6`` in total
(``docs/rendering.md`` gives the bounds and the proof).

* :func:`render` — forward only, any output size (numba, CPU).
* :class:`SmoeRenderer` — a differentiable renderer of a pixel window for
  training: on the CPU a fused numba forward and backward wrapped in a
  ``torch.autograd.Function``; on a CUDA device (or with ``backend="torch"``)
  the same culled lists cut into segments of 16 kernels, evaluated by torch
  operations with a hand-written backward (``docs/rendering.md``).
* :func:`dense_image_torch` — every kernel at every pixel in eager PyTorch, the
  way published SMoE code evaluates the model: the peer for the benchmarks and
  the reference for the gradients.

The lists are built with a slack on top of ``τ`` and, at every call, a cheap
check (``O(K + blocks)``) proves that the parameters have not moved enough to
let a left-out kernel reach the threshold; otherwise they are rebuilt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..model import SmoeModel

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_BLOCK",
    "DEFAULT_SLACK",
    "LEAN_BUILDS",
    "SKIP_WEIGHT",
    "CullLists",
    "SmoeRenderer",
    "cull_tau",
    "dense_image_torch",
    "output_grid",
    "render",
]

#: Pixels per block side.
DEFAULT_BLOCK = 16
#: Bound on the total gate weight that culling may leave out at any pixel.
SKIP_WEIGHT = 1e-6
#: Extra logit margin the lists are built with, so that they stay valid while
#: the parameters move a little (see :meth:`CullLists.still_valid`).
DEFAULT_SLACK = 6.0
#: After lists built with a slack fail the check at their first reuse, this
#: many rebuilds use no slack (fewer pairs; the check cannot keep them anyway)
#: before the slack is tried again (:meth:`SmoeRenderer._lists_for`).
LEAN_BUILDS = 8


def _kern() -> ModuleType:
    """The numba kernels (imported on first use: numba is slow to import)."""
    from . import _kernels

    return _kernels


def cull_tau(n_kernels: int, eps: float = SKIP_WEIGHT) -> float:
    """The culling threshold ``τ = ln(K/ε)`` in logit units.

    A left-out kernel has weight ``< exp(-τ) = ε/K`` at every pixel of its
    block, so the ``< K`` left-out kernels weigh ``< ε`` together.
    """
    if not (0.0 < eps < 1.0):
        raise ValueError(f"eps must lie in (0, 1), got {eps}")
    return math.log(max(int(n_kernels), 1) / eps)


def output_grid(
    model: SmoeModel,
    scale: float | None = None,
    height: int | None = None,
    width: int | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Model coordinates of the pixel centres of an output image.

    The output covers the same area as the model's image: output pixel ``j`` of
    ``W'`` maps to ``x = (j + 0.5)·W/W' - 0.5`` (likewise for rows), so
    ``scale=1`` gives the pixel centres ``0..W-1``.

    Returns
    -------
    xs : (W',) float64
    ys : (H',) float64
    """
    if scale is not None and (height is not None or width is not None):
        raise ValueError("give either a scale or an explicit size, not both")
    if scale is not None:
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a positive number, got {scale}")
        height = max(1, round(model.height * scale))
        width = max(1, round(model.width * scale))
    height = model.height if height is None else int(height)
    width = model.width if width is None else int(width)
    if height < 1 or width < 1 or height > 16384 or width > 16384:
        raise ValueError(f"output size {width}x{height} must be between 1x1 and 16384x16384")
    xs = (np.arange(width, dtype=np.float64) + 0.5) * (model.width / width) - 0.5
    ys = (np.arange(height, dtype=np.float64) + 0.5) * (model.height / height) - 0.5
    return xs, ys


# --------------------------------------------------------------------------
# culling lists and their validity check
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CullLists:
    """Per-block kernel lists of one output grid, and what proves them valid.

    Attributes
    ----------
    off : (B+1,) int64, idx : (P,) int32
        Block ``b`` evaluates kernels ``idx[off[b]:off[b+1]]`` (CSR).
    best : (B,) float64
        ``L_b``: the best lower bound of any kernel's logit over block ``b``.
    arg : (B,) int64
        The kernel that gives ``L_b``.
    qmax : (B,) float64
        ``la[arg] - L_b``: the bound of its quadratic form over the block.
    tau, slack : float
        Kernels more than ``tau + slack`` below ``L_b`` are left out.
    mu, A, log_alpha : float64 arrays
        The parameters the lists were built for.
    A_inv : (K, 2, 2) float64
        Their inverses (NaN where ``A`` is singular).
    """

    off: NDArray[np.int64]
    idx: NDArray[np.int32]
    best: NDArray[np.float64]
    arg: NDArray[np.int64]
    qmax: NDArray[np.float64]
    tau: float
    slack: float
    mu: NDArray[np.float64]
    A: NDArray[np.float64]
    log_alpha: NDArray[np.float64]
    A_inv: NDArray[np.float64]

    @property
    def n_pairs(self) -> int:
        """Kernel-block pairs in the lists."""
        return int(self.idx.shape[0])

    @classmethod
    def build(
        cls,
        mu: NDArray[np.float64],
        A: NDArray[np.float64],
        log_alpha: NDArray[np.float64],
        grid: tuple[int, int, float, float, float, float],
        block: int = DEFAULT_BLOCK,
        eps: float = SKIP_WEIGHT,
        slack: float = DEFAULT_SLACK,
        pad: float = 0.0,
    ) -> CullLists:
        """Build the lists for ``grid = (nx, ny, ox, oy, sx, sy)`` (see
        :mod:`smoe_gui.core.rendering._kernels`)."""
        k = _kern()
        tau = cull_tau(mu.shape[0], eps)
        nx, ny, ox, oy, sx, sy = grid
        karr = k.kernel_arrays(mu, A, log_alpha)
        off, idx, best, arg, qmax = k.build_lists(
            karr, nx, ny, ox, oy, sx, sy, block, pad, tau + slack
        )
        det = A[:, 0, 0] * A[:, 1, 1] - A[:, 0, 1] * A[:, 1, 0]
        scale = np.einsum("kij,kij->k", A, A)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.stack(
                [np.stack([A[:, 1, 1], -A[:, 0, 1]], 1), np.stack([-A[:, 1, 0], A[:, 0, 0]], 1)], 1
            ) / det[:, None, None]
        inv[np.abs(det) <= 1e-12 * scale] = np.nan
        return cls(off, idx, best, arg, qmax, tau, float(slack), mu.copy(), A.copy(),
                   log_alpha.copy(), inv)

    def still_valid(
        self, mu: NDArray[np.float64], A: NDArray[np.float64], log_alpha: NDArray[np.float64]
    ) -> bool:
        """Whether the lists are still valid for the parameters given.

        Valid means: no left-out kernel can have a logit within ``tau`` of the
        best one anywhere in its block.  With ``r(x) = ‖A₀ᵀ(x-μ₀)‖`` at build
        time, ``ρ = ‖A₀⁻¹(A-A₀)‖_F`` and ``c = ‖Aᵀ(μ-μ₀)‖``, the new
        ``‖Aᵀ(x-μ)‖`` lies in ``[(1-ρ)r - c, (1+ρ)r + c]`` at every ``x``.  This
        bounds how far each left-out kernel's logit can have risen and how far
        each block's best lower bound can have fallen (``docs/rendering.md``
        gives the derivation).  ``O(K + blocks)``.
        """
        if mu.shape != self.mu.shape:
            return False
        dla = log_alpha - self.log_alpha
        dA = A - self.A
        dmu = mu - self.mu
        # ‖A₀⁻¹ ΔA‖_F >= the spectral norm; NaN where A₀ was singular
        rho = np.sqrt(np.square(np.einsum("kij,kjl->kil", self.A_inv, dA)).sum(axis=(1, 2)))
        unchanged = np.all(dA == 0.0, axis=(1, 2))
        rho = np.where(np.isnan(rho), np.where(unchanged, 0.0, np.inf), rho)
        c = np.sqrt(np.square(np.einsum("kij,ki->kj", A, dmu)).sum(axis=1))
        # how far each block's best lower bound can have fallen
        j = self.arg
        r_best = np.sqrt(self.qmax)
        with np.errstate(invalid="ignore", over="ignore"):
            fall = -dla[j] + ((1.0 + rho[j]) * r_best + c[j]) ** 2 - self.qmax
        fall_max = float(np.max(np.nan_to_num(fall, nan=np.inf)))
        # how far each left-out kernel's logit can have risen, at the worst block
        s = np.maximum(self.log_alpha - float(np.min(self.best)) + self.tau + self.slack, 0.0)
        with np.errstate(invalid="ignore", over="ignore"):
            reach = np.maximum(np.maximum(1.0 - rho, 0.0) * np.sqrt(s) - c, 0.0)
            excess = dla + fall_max - self.slack + s - reach**2
        return bool(np.all(excess <= 0.0))


def _grid_of_output(model: SmoeModel, xs: NDArray[np.float64], ys: NDArray[np.float64]
                    ) -> tuple[int, int, float, float, float, float]:
    sx = model.width / xs.shape[0]
    sy = model.height / ys.shape[0]
    return xs.shape[0], ys.shape[0], float(xs[0]), float(ys[0]), float(sx), float(sy)


def render(
    model: SmoeModel,
    scale: float | None = None,
    height: int | None = None,
    width: int | None = None,
) -> NDArray[np.float32]:
    """Render ``model`` to a float32 image (default: its own size).

    Uses the culled local evaluation (numba, all cores); the result differs
    from the dense formula (:func:`~smoe_gui.core.model.dense_render`) by less
    than ``2·1e-6·max|m|``.

    Parameters
    ----------
    model : SmoeModel
    scale : float, optional
        Output size relative to the model's image.
    height, width : int, optional
        Explicit output size (either may be given; the other keeps the model's).
        The output covers the model's whole image area (:func:`output_grid`).

    Returns
    -------
    (H', W') float32, or (H', W', C) for a model with ``C``-channel experts
    """
    xs, ys = output_grid(model, scale, height, width)
    grid = _grid_of_output(model, xs, ys)
    lists = CullLists.build(model.mu, model.A, model.log_alpha, grid, slack=0.0)
    return _forward_numpy(lists, model.mu, model.A, model.m, model.log_alpha, grid,
                          DEFAULT_BLOCK, np.float32)[0]


def _forward_numpy(
    lists: CullLists,
    mu: NDArray[np.float64],
    A: NDArray[np.float64],
    m: NDArray[np.float64],
    log_alpha: NDArray[np.float64],
    grid: tuple[int, int, float, float, float, float],
    block: int,
    dtype: type = np.float64,
    save: bool = False,
) -> tuple[NDArray[Any], NDArray[np.float64], NDArray[np.float64]]:
    """Forward pass over the lists: ``(ny, nx)`` for gray experts ``m`` (K,),
    ``(ny, nx, C)`` for ``m`` (K, C); plus the saved ``shift`` and ``invsum``.

    ``save`` with ``dtype=np.float32``: the float32 pixel arithmetic of
    :func:`~smoe_gui.core.rendering._blocks32.forward_blocks32` (training), whose
    ``shift`` and ``invsum`` are float32; otherwise float64 arithmetic, rounded
    to ``dtype`` at the end."""
    k = _kern()
    nx, ny, ox, oy, sx, sy = grid
    karr = k.kernel_arrays(mu, A, log_alpha)
    m2 = np.ascontiguousarray(m.reshape(m.shape[0], -1), dtype=np.float64)
    out: NDArray[Any] = np.empty((ny, nx, m2.shape[1]), dtype=dtype)
    f32 = save and dtype == np.float32
    if save:
        shift = np.empty((ny, nx), dtype=np.float32 if f32 else np.float64)
        invsum = np.empty((ny, nx), dtype=shift.dtype)
    else:
        shift = invsum = np.empty((1, 1))
    forward = k.forward_blocks32 if f32 else k.forward_blocks
    forward(lists.off, lists.idx, *karr[:6], m2,
            nx, ny, ox, oy, sx, sy, block, out, shift, invsum, save)
    return (out[:, :, 0] if m.ndim == 1 else out), shift, invsum


# --------------------------------------------------------------------------
# dense eager PyTorch: the peer and the reference
# --------------------------------------------------------------------------


def dense_image_torch(
    mu: torch.Tensor,
    A: torch.Tensor,
    m: torch.Tensor,
    log_alpha: torch.Tensor,
    xs: torch.Tensor,
    ys: torch.Tensor,
) -> torch.Tensor:
    """Dense evaluation in eager PyTorch: every kernel at every pixel.

    This is how published SMoE code evaluates the model; it is the peer that the
    fast path is measured against, and the reference for gradients.

    Parameters
    ----------
    mu : (K, 2), A : (K, 2, 2), m : (K,) or (K, C), log_alpha : (K,) tensors
    xs : (W,) tensor, ys : (H,) tensor
        Pixel-centre coordinates.

    Returns
    -------
    (H, W) tensor, or (H, W, C) for ``C``-channel experts; differentiable in
    all four parameters.
    """
    import torch

    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)  # (P, 2)
    d = points[:, None, :] - mu[None, :, :]  # (P, K, 2)
    proj = torch.einsum("pki,kij->pkj", d, A)
    logits = log_alpha[None, :] - (proj * proj).sum(-1)
    w = torch.softmax(logits, dim=1)
    return (w @ m).reshape((ys.shape[0], xs.shape[0]) + tuple(m.shape[1:]))


# --------------------------------------------------------------------------
# the differentiable renderer
# --------------------------------------------------------------------------


def _as_float64(t: torch.Tensor) -> NDArray[np.float64]:
    import torch

    return np.ascontiguousarray(t.detach().to("cpu", torch.float64).numpy())


def _make_function() -> type:
    import torch

    class _CulledRender(torch.autograd.Function):
        """Fused numba forward and backward over the culled block lists."""

        @staticmethod
        def forward(ctx: Any, mu: torch.Tensor, A: torch.Tensor, m: torch.Tensor,
                    log_alpha: torch.Tensor, renderer: SmoeRenderer) -> torch.Tensor:
            mu64, A64, m64, la64 = (_as_float64(t) for t in (mu, A, m, log_alpha))
            renderer._check_values(mu64, A64, m64, la64)
            lists = renderer._lists_for(mu64, A64, la64)
            # float32 training: float32 pixel arithmetic (docs/rendering.md)
            f32 = mu.dtype != torch.float64
            image, shift, invsum = _forward_numpy(
                lists, mu64, A64, m64, la64, renderer._grid, renderer.block,
                np.float32 if f32 else np.float64, True,
            )
            ctx.renderer = renderer
            ctx.state = (lists, mu64, A64, m64, la64, image, shift, invsum)
            out = torch.from_numpy(image).clone()  # the saved image stays ours
            return out.to(device=mu.device, dtype=torch.float32 if f32 else torch.float64)

        @staticmethod
        def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
            k = _kern()
            renderer = ctx.renderer
            lists, mu64, A64, m64, la64, image, shift, invsum = ctx.state
            karr = k.kernel_arrays(mu64, A64, la64)
            nx, ny, ox, oy, sx, sy = renderer._grid
            nc = 1 if m64.ndim == 1 else m64.shape[1]
            m2 = np.ascontiguousarray(m64.reshape(m64.shape[0], nc))
            if image.dtype == np.float32:
                g = np.ascontiguousarray(grad_out.detach().to("cpu", torch.float32).numpy())
                backward = k.backward_blocks32
            else:
                g = _as_float64(grad_out)
                backward = k.backward_blocks
            acc = backward(lists.off, lists.idx, *karr[:6], m2, nx, ny, ox, oy,
                           sx, sy, renderer.block, image.reshape(ny, nx, nc), shift,
                           invsum, g.reshape(ny, nx, nc))
            sums = k.reduce_pairs(lists.idx, acc, mu64.shape[0])
            _, _, s11, s12, s22, _, _ = karr
            g_la, gx, gy, pxx, pxy, pyy = sums[nc:]
            g_m = sums[0] if m64.ndim == 1 else np.ascontiguousarray(sums[:nc].T)
            g_mu = np.stack([2.0 * (s11 * gx + s12 * gy), 2.0 * (s12 * gx + s22 * gy)], axis=1)
            p = np.stack([np.stack([pxx, pxy], 1), np.stack([pxy, pyy], 1)], 1)
            g_A = -2.0 * np.einsum("kij,kjl->kil", p, A64)
            ctx.state = None
            dev = grad_out.device
            return (
                torch.from_numpy(g_mu).to(dev, grad_out.dtype),
                torch.from_numpy(g_A).to(dev, grad_out.dtype),
                torch.from_numpy(g_m).to(dev, grad_out.dtype),
                torch.from_numpy(g_la).to(dev, grad_out.dtype),
                None,
            )

    return _CulledRender


_FUNCTION: type | None = None


def _culled_function() -> Any:
    global _FUNCTION
    if _FUNCTION is None:
        _FUNCTION = _make_function()
    return _FUNCTION


class SmoeRenderer:
    """Differentiable renderer of a fixed pixel window ``height x width`` whose
    top-left pixel centre sits at ``(x0, y0)`` in model coordinates.

    ``renderer(mu, A, m, log_alpha)`` returns the ``(height, width)`` image
    (``(height, width, C)`` for experts ``m`` of shape ``(K, C)``: the gate is
    computed once and shared by the channels) as a torch tensor (float32;
    float64 when ``mu`` is float64) that back-propagates into all four
    parameters.  It evaluates the culled lists (see the module
    docstring) and keeps them between calls for as long as
    :meth:`CullLists.still_valid` proves them valid.

    Parameters
    ----------
    height, width : int
        Window size in pixels.
    x0, y0 : float
        Model coordinates of the top-left pixel centre.
    device : str
        Torch device of the inputs and output.
    backend : {"auto", "numba", "torch"}
        ``numba``: the fused CPU kernels (the default on the CPU); ``torch``:
        the lists as segment tensors evaluated by torch on ``device`` (the
        default on CUDA).
    block : int
        Block side in pixels.
    eps : float
        Bound on the total weight left out per pixel.
    slack : float
        Extra logit margin of the lists (larger: more pairs, fewer rebuilds).
        When lists built with it fail the check at their first reuse, the next
        :data:`LEAN_BUILDS` rebuilds use no slack, then it is tried again: a
        slack that buys no reuse only adds pairs.  Lists without slack are
        kept only for parameters equal to those they were built for (an exact
        comparison; the bound could not keep them after a move).  Either way
        the lists are exact (``τ`` is always kept).

    Attributes
    ----------
    stats : dict
        ``calls``, ``rebuilds``, ``lean_rebuilds`` (rebuilds without slack),
        ``pairs`` (kernel-pixel pairs evaluated by the last call),
        ``list_pairs`` (kernel-block pairs), ``blocks``.
    """

    def __init__(
        self,
        height: int,
        width: int,
        x0: float = 0.0,
        y0: float = 0.0,
        device: str = "cpu",
        *,
        backend: str = "auto",
        block: int = DEFAULT_BLOCK,
        eps: float = SKIP_WEIGHT,
        slack: float = DEFAULT_SLACK,
    ) -> None:
        import torch

        if int(height) < 1 or int(width) < 1:
            raise ValueError(f"renderer window {width}x{height} must be at least 1x1")
        if not (np.isfinite(x0) and np.isfinite(y0)):
            raise ValueError("renderer origin must be finite")
        if backend not in ("auto", "numba", "torch"):
            raise ValueError(f"backend must be 'auto', 'numba' or 'torch', got {backend!r}")
        if int(block) < 1:
            raise ValueError(f"block must be a positive number of pixels, got {block}")
        if slack < 0 or not np.isfinite(slack):
            raise ValueError(f"slack must be >= 0, got {slack}")
        cull_tau(1, eps)  # validates eps
        self.height = int(height)
        self.width = int(width)
        self.x0 = float(x0)
        self.y0 = float(y0)
        self.device = torch.device(device)
        if backend == "auto":
            backend = "numba" if self.device.type == "cpu" else "torch"
        self.backend = backend
        self.block = int(block)
        self.eps = float(eps)
        self.slack = float(slack)
        self._grid = (self.width, self.height, self.x0, self.y0, 1.0, 1.0)
        self.xs = torch.arange(self.width, dtype=torch.float32, device=self.device) + self.x0
        self.ys = torch.arange(self.height, dtype=torch.float32, device=self.device) + self.y0
        self._lists: CullLists | None = None
        self._life = 0  # calls served by the current lists
        self._lean_left = 0  # rebuilds still to make without slack
        self._torch_index: tuple[Any, ...] | None = None
        self.stats: dict[str, int] = {
            "calls": 0, "rebuilds": 0, "lean_rebuilds": 0, "pairs": 0, "list_pairs": 0,
            "blocks": 0,
        }

    # -- lists -----------------------------------------------------------

    @staticmethod
    def _check_values(mu: NDArray[np.float64], A: NDArray[np.float64],
                      m: NDArray[np.float64], la: NDArray[np.float64]) -> None:
        k = m.shape[0] if m.ndim == 1 or (m.ndim == 2 and m.shape[1] >= 1) else -1
        if k < 1 or mu.shape != (k, 2) or A.shape != (k, 2, 2) or la.shape != (k,):
            raise ValueError(
                "renderer: expected mu (K, 2), A (K, 2, 2), m (K,) or (K, C), log_alpha (K,) "
                "with K >= 1; "
                f"got {mu.shape}, {A.shape}, {m.shape}, {la.shape}"
            )
        for name, arr in (("mu", mu), ("A", A), ("m", m), ("log_alpha", la)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"renderer: '{name}' contains NaN or infinite values")

    def _lists_for(self, mu: NDArray[np.float64], A: NDArray[np.float64],
                   la: NDArray[np.float64]) -> CullLists:
        lists = self._lists
        if lists is None:
            valid = False
        elif lists.slack == 0.0:
            # lists without slack survive only parameters that did not move: an
            # exact comparison (O(K)) decides that at a fraction of the bound's cost
            valid = (np.array_equal(mu, lists.mu) and np.array_equal(la, lists.log_alpha)
                     and np.array_equal(A, lists.A))
        else:
            valid = lists.still_valid(mu, A, la)
        if lists is None or not valid:
            if lists is not None and lists.slack > 0.0 and self._life == 1:
                # the slack did not buy a single reuse: it only added pairs
                self._lean_left = LEAN_BUILDS
            slack = self.slack
            if self._lean_left > 0:
                self._lean_left -= 1
                slack = 0.0
                self.stats["lean_rebuilds"] += 1
            lists = CullLists.build(mu, A, la, self._grid, self.block, self.eps, slack)
            self._lists = lists
            self._life = 0
            self._torch_index = None
            self.stats["rebuilds"] += 1
        self._life += 1
        self.stats["calls"] += 1
        self.stats["list_pairs"] = lists.n_pairs
        self.stats["blocks"] = int(lists.off.shape[0] - 1)
        self.stats["pairs"] = int(self._pairs_per_block(lists) @ np.diff(lists.off))
        return lists

    def _pairs_per_block(self, lists: CullLists) -> NDArray[np.int64]:
        """Pixels of each block (edge blocks are smaller)."""
        bs = self.block
        nbx = -(-self.width // bs)
        nblk = lists.off.shape[0] - 1
        b = np.arange(nblk)
        w = np.minimum((b % nbx) * bs + bs, self.width) - (b % nbx) * bs
        h = np.minimum((b // nbx) * bs + bs, self.height) - (b // nbx) * bs
        return (w * h).astype(np.int64)

    @property
    def lists(self) -> CullLists | None:
        """The current culling lists (``None`` before the first call)."""
        return self._lists

    # -- evaluation ------------------------------------------------------

    def __call__(
        self,
        mu: torch.Tensor,
        A: torch.Tensor,
        m: torch.Tensor,
        log_alpha: torch.Tensor,
    ) -> torch.Tensor:
        """Render the window: ``(height, width)`` tensor (``(height, width, C)`` for
        ``m`` of shape ``(K, C)``), differentiable in all four."""
        if self.backend == "numba":
            return _culled_function().apply(mu, A, m, log_alpha, self)
        return self._torch_forward(mu, A, m, log_alpha)

    def _torch_forward(self, mu: torch.Tensor, A: torch.Tensor, m: torch.Tensor,
                       log_alpha: torch.Tensor) -> torch.Tensor:
        """The culled lists as segment tensors, evaluated by torch ops on the
        parameters' device, with a hand-written backward
        (:class:`smoe_gui.core.rendering.torch_backend.TorchPlan`).

        The lists are built and checked on the CPU from one float64 copy of
        ``mu``, ``A`` and ``log α`` (one device-to-host transfer per call, which
        also carries the finiteness of ``m``); the segment index is uploaded
        only when the lists are rebuilt."""
        import torch

        self._check_shapes(mu, A, m, log_alpha)
        k = int(mu.shape[0])
        with torch.no_grad():
            flat = torch.cat([
                mu.detach().reshape(-1).double(), A.detach().reshape(-1).double(),
                log_alpha.detach().reshape(-1).double(),
                torch.isfinite(m.detach()).all().reshape(1).double(),
            ]).cpu().numpy()
        mu64 = flat[:2 * k].reshape(k, 2)
        A64 = flat[2 * k:6 * k].reshape(k, 2, 2)
        la64 = flat[6 * k:7 * k]
        for name, arr in (("mu", mu64), ("A", A64), ("log_alpha", la64)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"renderer: '{name}' contains NaN or infinite values")
        if flat[7 * k] != 1.0:
            raise ValueError("renderer: 'm' contains NaN or infinite values")
        from .torch_backend import TorchPlan, torch_function

        lists = self._lists_for(mu64, A64, la64)
        dev = mu.device
        if self._torch_index is None or self._torch_index[0] != dev:
            self._torch_index = (dev, TorchPlan.build(lists, self, dev))
        plan = self._torch_index[1]
        dtype = torch.float64 if mu.dtype == torch.float64 else torch.float32
        return torch_function().apply(mu.to(dtype), A.to(dtype), m.to(dtype),
                                       log_alpha.to(dtype), plan)

    @staticmethod
    def _check_shapes(mu: torch.Tensor, A: torch.Tensor, m: torch.Tensor,
                      la: torch.Tensor) -> None:
        k = int(m.shape[0]) if m.dim() == 1 or (m.dim() == 2 and m.shape[1] >= 1) else -1
        if (k < 1 or tuple(mu.shape) != (k, 2) or tuple(A.shape) != (k, 2, 2)
                or tuple(la.shape) != (k,)):
            raise ValueError(
                "renderer: expected mu (K, 2), A (K, 2, 2), m (K,) or (K, C), log_alpha (K,) "
                "with K >= 1; "
                f"got {tuple(mu.shape)}, {tuple(A.shape)}, {tuple(m.shape)}, {tuple(la.shape)}"
            )
