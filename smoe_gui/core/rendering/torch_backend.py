"""The torch backend of :class:`smoe_gui.core.rendering.culled.SmoeRenderer`.

The culled block lists cut into segments of :data:`TORCH_SEGMENT` kernel slots,
evaluated by torch operations (CPU or CUDA) with a hand-written backward
(``docs/rendering.md``, "The torch backend").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["TORCH_CHUNK", "TORCH_SEGMENT", "TorchPlan", "torch_function"]


class _Lists(Protocol):
    """What the plan reads of :class:`~smoe_gui.core.rendering.culled.CullLists`."""

    @property
    def off(self) -> np.ndarray: ...
    @property
    def idx(self) -> np.ndarray: ...
    @property
    def mu(self) -> np.ndarray: ...


class _Window(Protocol):
    """What the plan reads of :class:`~smoe_gui.core.rendering.culled.SmoeRenderer`:
    the pixel window (origin ``x0, y0`` in model coordinates, ``width x height``
    pixels) and the block side."""

    @property
    def block(self) -> int: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def x0(self) -> float: ...
    @property
    def y0(self) -> float: ...


# --------------------------------------------------------------------------
# the torch backend: segments of the block lists, torch ops, hand-written backward
# --------------------------------------------------------------------------

#: Kernel slots per segment in the torch backend: a block's list of ``n``
#: kernels is cut into ``ceil(n / 16)`` segments (the last one padded).
TORCH_SEGMENT = 16
#: Logits (segment slots x block pixels) evaluated at once by the torch
#: backend on the CPU: bounds its memory (a few float tensors of this many
#: elements).  On a GPU four times as many (fewer, larger kernel launches:
#: a 768x512 image with 2,000 kernels is one chunk there).
TORCH_CHUNK = 1 << 24


@dataclass(frozen=True, eq=False)
class _TorchChunk:
    """Consecutive blocks ``b0:b1`` and their ``S`` list segments.

    ``kidx (S, L)``: kernel of each slot (``K`` for a padding slot, which the
    evaluation gives the logit ``-inf``); ``origin (S, 2)``: model coordinates
    of the top-left pixel centre of the segment's block; ``seg_block (S,)``:
    the block of each segment relative to ``b0``, ``None`` when every block
    has exactly one segment (then segment ``s`` is block ``b0 + s``)."""

    b0: int
    b1: int
    kidx: Any
    origin: Any
    seg_block: Any


@dataclass(frozen=True, eq=False)
class TorchPlan:
    """The culled lists laid out for torch: every block is a full ``bs x bs``
    grid of pixels (edge blocks reach past the window; those pixels are
    evaluated and dropped), its list cut into segments of :data:`TORCH_SEGMENT`
    kernel slots, and the segments grouped in chunks of whole blocks of at
    most :data:`TORCH_CHUNK` logits."""

    chunks: tuple[_TorchChunk, ...]
    n_kernels: int
    height: int
    width: int
    block: int
    nbx: int
    nby: int
    offsets: Any  # (bs,) pixel offsets 0..bs-1 inside a block, float64, on the device

    @classmethod
    def build(cls, lists: _Lists, renderer: _Window, dev: Any,
              segment: int | None = None, chunk: int | None = None) -> TorchPlan:
        """Vectorised (numpy) layout of ``lists`` for ``renderer``'s window on
        ``dev`` (``segment`` and ``chunk`` default to :data:`TORCH_SEGMENT` and
        :data:`TORCH_CHUNK`)."""
        import torch

        segment = TORCH_SEGMENT if segment is None else int(segment)
        if chunk is None:
            chunk = TORCH_CHUNK * (1 if torch.device(dev).type == "cpu" else 4)

        bs = renderer.block
        nbx = -(-renderer.width // bs)
        nby = -(-renderer.height // bs)
        nblk = nbx * nby
        off = lists.off.astype(np.int64)
        counts = np.diff(off)
        if counts.shape[0] != nblk or np.any(counts < 1):
            raise ValueError("renderer: the lists do not match the window's blocks")
        k = int(lists.mu.shape[0])
        nseg = -(-counts // segment)  # (B,) segments per block, >= 1
        first = np.concatenate([[0], np.cumsum(nseg)])  # (B+1,) first segment of each block
        n_segments = int(first[-1])
        seg_block = np.repeat(np.arange(nblk), nseg)  # (S,)
        seg_rank = np.arange(n_segments) - first[seg_block]
        pos = off[seg_block][:, None] + seg_rank[:, None] * segment + np.arange(segment)[None, :]
        valid = pos < off[seg_block + 1][:, None]
        kidx = np.where(valid, lists.idx[np.minimum(pos, lists.idx.shape[0] - 1)], k)
        bx = (seg_block % nbx) * bs
        by = (seg_block // nbx) * bs
        origin = np.stack([renderer.x0 + bx, renderer.y0 + by], axis=1).astype(np.float64)
        # chunks of whole blocks, at most ``chunk`` logits each (at least one block)
        per_chunk = max(1, chunk // (bs * bs * segment))
        chunks = []
        b0 = 0
        while b0 < nblk:
            b1 = int(np.searchsorted(first, first[b0] + per_chunk, side="right")) - 1
            b1 = min(max(b1, b0 + 1), nblk)
            s0, s1 = int(first[b0]), int(first[b1])
            single = bool(np.all(nseg[b0:b1] == 1))
            chunks.append(_TorchChunk(
                b0, b1,
                torch.from_numpy(kidx[s0:s1].astype(np.int64)).to(dev),
                torch.from_numpy(origin[s0:s1]).to(dev),
                None if single else torch.from_numpy(seg_block[s0:s1] - b0).to(dev),
            ))
            b0 = b1
        offsets = torch.arange(bs, dtype=torch.float64, device=dev)
        return cls(tuple(chunks), k, renderer.height, renderer.width, bs, nbx, nby, offsets)

    # -- the evaluation ------------------------------------------------------

    def logits(self, ch: _TorchChunk, table: torch.Tensor, centres: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gate logits of the chunk's segments: ``(S, bs, bs, L)`` (pixel row,
        pixel column, slot), and the offsets ``dx (S, bs, L)`` (per column) and
        ``dy (S, bs, L)`` (per row) of the pixels from the slots' centres.

        ``table (K+1, 4)``: ``s11, s12, s22, log α`` per kernel and ``centres
        (K+1, 2)`` float64: ``μ`` (row ``K``: the padding slot, ``log α =
        -inf``).  The centres are taken relative to the block's origin in
        float64 and only then rounded to the working precision, so a float32
        image of any size is as exact as a small one.  A block's pixels form a
        grid, so ``q = s11·dx² + 2·s12·dx·dy + s22·dy²`` is a row term, a column
        term and one product: two passes over the logits."""
        t = table[ch.kidx]  # (S, L, 4)
        c = (centres[ch.kidx] - ch.origin[:, None, :]).to(table.dtype)  # (S, L, 2)
        u = self.offsets.to(table.dtype)
        dx = u[None, :, None] - c[:, None, :, 0]  # (S, bs, L)
        dy = u[None, :, None] - c[:, None, :, 1]
        s11, s12, s22, la = (t[:, None, :, i] for i in range(4))
        row = la - s22 * dy * dy  # (S, bs, L): log α - s22·dy²
        col = s11 * dx * dx  # (S, bs, L)
        cross = 2.0 * s12 * dy
        out = row[:, :, None, :] - col[:, None, :, :]
        out.addcmul_(cross[:, :, None, :], dx[:, None, :, :], value=-1.0)
        return out, dx, dy

    def blocks_to_image(self, blocks: torch.Tensor) -> torch.Tensor:
        """``(B, bs, bs, C)`` block values to the ``(H, W, C)`` window."""
        bs, c = self.block, blocks.shape[-1]
        grid = blocks.reshape(self.nby, self.nbx, bs, bs, c).permute(0, 2, 1, 3, 4)
        return grid.reshape(self.nby * bs, self.nbx * bs, c)[: self.height, : self.width]

    def image_to_blocks(self, image: torch.Tensor) -> torch.Tensor:
        """``(H, W, C)`` to ``(B, bs, bs, C)``, zero past the window's edge."""
        bs, c = self.block, image.shape[-1]
        full = image.new_zeros(self.nby * bs, self.nbx * bs, c)
        full[: self.height, : self.width] = image
        blocks = full.reshape(self.nby, bs, self.nbx, bs, c).permute(0, 2, 1, 3, 4)
        return blocks.reshape(self.nby * self.nbx, bs, bs, c)


def _kernel_table(mu: torch.Tensor, A: torch.Tensor, la: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(K+1, 4)``: ``s11, s12, s22, log α`` with ``S = A Aᵀ``, and ``(K+1, 2)``
    float64: ``μ``; the last rows are the padding slot (zeros, ``log α = -inf``)."""
    import torch

    s11 = A[:, 0, 0] * A[:, 0, 0] + A[:, 0, 1] * A[:, 0, 1]
    s12 = A[:, 0, 0] * A[:, 1, 0] + A[:, 0, 1] * A[:, 1, 1]
    s22 = A[:, 1, 0] * A[:, 1, 0] + A[:, 1, 1] * A[:, 1, 1]
    table = torch.stack([s11, s12, s22, la], dim=1)
    pad = table.new_zeros(1, 4)
    pad[0, 3] = -math.inf
    centres = torch.cat([mu.double(), mu.new_zeros(1, 2, dtype=torch.float64)], dim=0)
    return torch.cat([table, pad], dim=0), centres


def _maketorch_function() -> type:
    import torch

    class _TorchCulled(torch.autograd.Function):
        """Forward and backward over the segments in torch ops (any device).

        Forward, per chunk: logits; per pixel the largest logit ``M`` (over the
        segments of its block: ``index_reduce`` amax), ``e = exp(ℓ - M)``,
        ``Z = Σ e`` and ``N_c = Σ e·m_c`` (segments summed with ``index_add``),
        ``L_c = N_c / Z``; it keeps per pixel ``M + log Z`` and the image.
        Backward recomputes the logits, ``w = exp(ℓ - M - log Z)``, and with
        ``g_c = ∂loss/∂L_c``: ``gℓ = w·Σ_c g_c (m_c - L_c)``; per slot the
        sums ``Σ gℓ``, ``Σ gℓ d``, ``Σ gℓ d dᵀ`` (row and column sums of the
        pixel grid: only ``Σ gℓ dx dy`` needs a full pass) and ``Σ g_c w``;
        then ``∂/∂log α = Σ gℓ``, ``∂/∂μ = 2 S Σ gℓ d``,
        ``∂/∂A = -2 (Σ gℓ d dᵀ) A``, ``∂/∂m_c = Σ g_c w`` (as the numba kernels,
        ``docs/rendering.md``)."""

        @staticmethod
        def forward(ctx: Any, mu: torch.Tensor, A: torch.Tensor, m: torch.Tensor,
                    la: torch.Tensor, plan: TorchPlan) -> torch.Tensor:
            k = mu.shape[0]
            nc = 1 if m.dim() == 1 else int(m.shape[1])
            table, centres = _kernel_table(mu, A, la)
            # [1, m_c] per kernel: one product gives Z = Σ e and N_c = Σ e·m_c
            mext = torch.cat([m.new_ones(k, 1), m.reshape(k, nc)], dim=1)
            mext = torch.cat([mext, m.new_zeros(1, nc + 1)], dim=0)  # (K+1, 1+C)
            bs = plan.block
            nblk = plan.nbx * plan.nby
            values = mu.new_empty(nblk, bs, bs, nc)
            shift = mu.new_empty(nblk, bs, bs)
            for ch in plan.chunks:
                logits, _, _ = plan.logits(ch, table, centres)  # (S, bs, bs, L)
                n_s, n_l = logits.shape[0], logits.shape[3]
                best = logits.amax(-1)  # (S, bs, bs)
                if ch.seg_block is None:
                    top = best
                else:
                    top = best.new_full((ch.b1 - ch.b0, bs, bs), -math.inf)
                    top.scatter_reduce_(0, ch.seg_block[:, None, None].expand_as(best), best,
                                        "amax")
                    best = top[ch.seg_block]
                e = logits.sub_(best[..., None]).exp_()
                zn = torch.bmm(e.view(n_s, bs * bs, n_l), mext[ch.kidx])  # (S, bs², 1+C)
                if ch.seg_block is not None:
                    zn = zn.new_zeros(ch.b1 - ch.b0, bs * bs, nc + 1).index_add_(
                        0, ch.seg_block, zn)
                z = zn[:, :, 0]
                values[ch.b0:ch.b1] = (zn[:, :, 1:] / z[:, :, None]).view(-1, bs, bs, nc)
                shift[ch.b0:ch.b1] = top + torch.log(z).view(-1, bs, bs)
            ctx.plan = plan
            ctx.gray = m.dim() == 1
            ctx.save_for_backward(mu, A, m, la, values, shift)
            image = plan.blocks_to_image(values)
            return image[:, :, 0].contiguous() if m.dim() == 1 else image.contiguous()

        @staticmethod
        def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
            plan: TorchPlan = ctx.plan
            mu, A, m, la, values, shift = ctx.saved_tensors
            k = mu.shape[0]
            nc = values.shape[-1]
            bs = plan.block
            g_img = grad_out.to(values.dtype).reshape(plan.height, plan.width, nc)
            g = plan.image_to_blocks(g_img)  # (B, bs, bs, C)
            # [g_c, -Σ_c g_c L_c] per pixel against [m_c, 1] per kernel: one product
            # gives Σ_c g_c (m_c - L_c)
            gext = torch.cat([g, -(g * values).sum(-1, keepdim=True)], dim=-1)  # (B, bs, bs, C+1)
            table, centres = _kernel_table(mu, A, la)
            mext = torch.cat([m.reshape(k, nc), m.new_ones(k, 1)], dim=1)
            mext = torch.cat([mext, m.new_zeros(1, nc + 1)], dim=0)  # (K+1, C+1)
            acc = mu.new_zeros(k + 1, 6 + nc)
            for ch in plan.chunks:
                logits, dx, dy = plan.logits(ch, table, centres)
                n_s, n_l = logits.shape[0], logits.shape[3]
                if ch.seg_block is None:
                    sh, gs = shift[ch.b0:ch.b1], gext[ch.b0:ch.b1]
                else:
                    sh, gs = shift[ch.b0:ch.b1][ch.seg_block], gext[ch.b0:ch.b1][ch.seg_block]
                w = logits.sub_(sh[..., None]).exp_()  # (S, bs, bs, L): the gate weights
                gs = gs.reshape(n_s, bs * bs, nc + 1)
                gl = torch.bmm(gs, mext[ch.kidx].transpose(1, 2)).view(n_s, bs, bs, n_l)
                gl.mul_(w)  # gℓ = w·Σ_c g_c (m_c - L_c)
                g_m = torch.bmm(w.view(n_s, bs * bs, n_l).transpose(1, 2), gs)[:, :, :nc]
                col = gl.sum(1)  # (S, bs, L): per pixel column
                row = gl.sum(2)  # (S, bs, L): per pixel row
                cross = (gl.mul_(dx[:, None, :, :]).sum(2) * dy).sum(1)  # Σ gℓ dx dy
                sums = torch.stack([
                    col.sum(1), (col * dx).sum(1), (row * dy).sum(1),
                    (col * dx * dx).sum(1), cross, (row * dy * dy).sum(1),
                ], dim=-1)  # (S, L, 6)
                acc.index_add_(0, ch.kidx.reshape(-1),
                               torch.cat([sums, g_m], dim=-1).reshape(n_s * n_l, 6 + nc))
            acc = acc[:k]
            s11, s12, s22 = table[:k, 0], table[:k, 1], table[:k, 2]
            gx, gy = acc[:, 1], acc[:, 2]
            g_mu = 2.0 * torch.stack([s11 * gx + s12 * gy, s12 * gx + s22 * gy], dim=1)
            p = torch.stack([torch.stack([acc[:, 3], acc[:, 4]], 1),
                             torch.stack([acc[:, 4], acc[:, 5]], 1)], 1)  # (K, 2, 2)
            g_A = -2.0 * torch.bmm(p, A)
            g_m_all = acc[:, 6:]
            g_m_out = g_m_all[:, 0] if ctx.gray else g_m_all
            return g_mu, g_A, g_m_out.reshape(m.shape), acc[:, 0], None

    return _TorchCulled


_TORCH_FUNCTION: type | None = None


def torch_function() -> Any:
    global _TORCH_FUNCTION
    if _TORCH_FUNCTION is None:
        _TORCH_FUNCTION = _maketorch_function()
    return _TORCH_FUNCTION
