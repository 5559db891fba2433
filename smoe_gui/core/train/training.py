"""Training of an SMoE model as in section III-E of the paper.

The fit runs in three phases and streams :class:`~smoe_gui.core.events.FitEvent`
objects while it runs:

``tiles``
    The image is cut into square tiles of ``tile_size`` pixels.  A kernel
    belongs to the tile that holds its centre.  Tile by tile (row-major), Adam
    minimises ``MSE + reg_weight·(Σ α_i)²`` over the tile's own kernels.  The
    MSE is taken over the tile grown by a band of :func:`loss_band` pixels
    (clipped to the image), rendered with the own kernels *and* the frozen
    kernels whose centres lie within :func:`context_margin` pixels of the tile
    (already trained ones for tiles earlier in the order).  So the own kernels
    learn to fit in with their neighbours, and they pay for any harm they do to
    the neighbours' pixels: the tiles merge without seams, and a tile's
    interior keeps its reconstruction when the later tiles train.  Kernels
    whose weight ``α = exp(log α)`` falls below ``prune_threshold`` are removed
    as soon as it happens.  The tiles share at most :data:`TILE_TIME_SHARE` of
    the time budget.
``merge``
    The kernels of all tiles (pruned ones removed) form one model.
``finetune``
    Adam on the plain MSE of the whole image, until the PSNR gains less than
    ``tol_db`` over ``patience`` steps, or ``max_steps`` steps were made, or the
    time budget of the whole fit is spent.  The learning rates are halved
    whenever the best PSNR has gained less than ``tol_db`` over
    ``patience / 4`` steps (a plateau).

A step whose loss, gradients or new parameters are not finite is undone (the
parameters and the Adam state return to where they were before it, or before
the step that led to the non-finite loss) and every learning rate is halved;
the event says so.  A non-finite model is never emitted.  During fine-tuning
a *finite* blow-up is handled the same way: a step after which the MSE is more
than :data:`JUMP_FACTOR` times the best MSE of the phase is undone and the
learning rates are halved (a single Adam step on ``log α`` or ``A`` can let
one kernel take over a large area; the whole-image PSNR then fell by >10 dB
and took hundreds of steps to recover).

Pruning during fine-tuning spares a kernel whose ``α`` fell below the
threshold but which still governs part of the image (its gate share is above
:data:`PRUNE_MAX_SHARE`): with a softmax gate a small ``α`` does not make a
kernel negligible, and removing the only kernel of a flat region dropped the
whole-image PSNR by >10 dB at once.

The whole-image PSNR is reported at a steady rate in every phase
(``FitEvent.image_psnr``): during ``tiles`` the model of the tiles trained so
far and the initial kernels elsewhere is rendered every
:data:`IMAGE_PSNR_INTERVAL_S` seconds (less often when a render costs more
than a tenth of that), from ``merge`` on it is every event's PSNR.

Everything is deterministic for a given ``seed`` on the CPU.  See
``docs/training.md`` for the readings taken and the measured figures.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..events import FitEvent, StopToken
from ..io.image import as_channels, check_image
from ..metrics import format_psnr, psnr_from_mse
from ..model import SmoeModel
from ..params import Params, check_method
from ..rendering.culled import SmoeRenderer

if TYPE_CHECKING:
    import torch

    from ..methods.pipeline import Initialization

__all__ = [
    "IMAGE_PSNR_INTERVAL_S",
    "JUMP_FACTOR",
    "PRUNE_MAX_SHARE",
    "TILE_TIME_SHARE",
    "KernelArrays",
    "TileOutcome",
    "fit_tile_size",
    "context_margin",
    "loss_band",
    "fit",
    "fit_input_image",
    "prune_kernels",
    "tile_index",
    "tile_windows",
    "train_tiles",
]

#: Largest share of the time budget that the tile phase may use.
TILE_TIME_SHARE = 0.35
#: Lowest learning-rate scale after repeated divergence; below it a phase ends.
MIN_LR_SCALE = 1e-6
#: Factor applied to the learning rates after a diverging step.
DIVERGENCE_LR_FACTOR = 0.5
#: Factor applied to the fine-tuning learning rates on a PSNR plateau.
PLATEAU_LR_FACTOR = 0.5
#: Lowest learning-rate scale the plateau schedule goes to.
MIN_PLATEAU_SCALE = 1.0 / 64.0
#: A fine-tuning step whose MSE exceeds this multiple of the best MSE so far is
#: undone like a non-finite one (a finite divergence; 4x = 6 dB).
JUMP_FACTOR = 4.0
#: Fine-tuning prunes a kernel with α below the threshold only when its gate
#: share (mean gate weight over the image) is at most this.
PRUNE_MAX_SHARE = 1e-5
#: Seconds between whole-image PSNR measurements during the tile phase.
IMAGE_PSNR_INTERVAL_S = 0.3
#: Largest share of the tile phase's time that those measurements may take.
IMAGE_PSNR_MAX_SHARE = 0.1

_NAMES = ("mu", "A", "m", "log_alpha")
_SHAPES = ((2,), (2, 2), (), ())


# --------------------------------------------------------------------------------------
# Tiles
# --------------------------------------------------------------------------------------
def tile_windows(height: int, width: int, tile_size: int) -> list[tuple[int, int, int, int]]:
    """The tiles of an image, row-major.

    Parameters
    ----------
    height, width : int
        Image size in pixels.
    tile_size : int
        Side of a tile in pixels; tiles on the right and bottom border are
        smaller when the size is not a multiple.

    Returns
    -------
    list of (y0, y1, x0, x1)
        Half-open pixel ranges of each tile.
    """
    ny = math.ceil(height / tile_size)
    nx = math.ceil(width / tile_size)
    return [
        (ty * tile_size, min(height, (ty + 1) * tile_size),
         tx * tile_size, min(width, (tx + 1) * tile_size))
        for ty in range(ny)
        for tx in range(nx)
    ]


def tile_index(mu: NDArray[np.float64], height: int, width: int, tile_size: int) -> NDArray[np.intp]:
    """Index (into :func:`tile_windows`) of the tile holding each kernel centre.

    A centre at ``(x, y)`` lies in the pixel ``(round(x), round(y))``; centres
    outside the image count for the nearest border tile.

    Parameters
    ----------
    mu : (K, 2) float64
        Kernel centres (x, y) in pixels.

    Returns
    -------
    (K,) intp
    """
    nx = math.ceil(width / tile_size)
    ny = math.ceil(height / tile_size)
    col = np.clip(np.floor((mu[:, 0] + 0.5) / tile_size), 0, nx - 1).astype(np.intp)
    row = np.clip(np.floor((mu[:, 1] + 0.5) / tile_size), 0, ny - 1).astype(np.intp)
    return row * nx + col


def context_margin(tile_size: int) -> int:
    """Width in pixels of the band of frozen context kernels around a tile.

    ``max(16, tile_size // 4)``: wide enough for the edge kernels (a few pixels
    wide) and the background kernels of the default spacing.
    """
    return max(16, tile_size // 4)


def loss_band(tile_size: int) -> int:
    """Width in pixels of the band around a tile whose pixels join its loss:
    half the :func:`context_margin`, so that every pixel of the band has the
    kernels that matter for it in the context."""
    return context_margin(tile_size) // 2


def fit_tile_size(image_shape: tuple[int, int], params: Params) -> int:
    """The tile side used for an image: ``tile_size``, clamped to the image's longer side.

    A tile larger than the image would be one tile holding the whole image, so any image
    that :func:`~smoe_gui.core.methods.pipeline.initialize` accepts is fitted with any
    ``tile_size``; :func:`fit` says so in its ``merge`` event when it clamps.
    """
    return max(1, min(int(params.tile_size), max(int(image_shape[0]), int(image_shape[1]))))


# --------------------------------------------------------------------------------------
# Kernel sets and the optimisation of one window
# --------------------------------------------------------------------------------------
@dataclass
class KernelArrays:
    """Every parameter of ``K`` kernels (gates and experts) as float64 numpy
    arrays, as training copies them in and out: ``mu (K, 2)``, ``A (K, 2, 2)``,
    ``m (K,)``, ``log_alpha (K,)``."""

    mu: NDArray[np.float64]
    A: NDArray[np.float64]
    m: NDArray[np.float64]
    log_alpha: NDArray[np.float64]

    @classmethod
    def from_model(cls, model: SmoeModel) -> KernelArrays:
        return cls(model.mu.copy(), model.A.copy(), model.m.copy(), model.log_alpha.copy())

    def arrays(self) -> tuple[NDArray[np.float64], ...]:
        return (self.mu, self.A, self.m, self.log_alpha)

    def subset(self, index: NDArray[np.intp] | NDArray[np.bool_]) -> KernelArrays:
        return KernelArrays(*(a[index].copy() for a in self.arrays()))

    def __len__(self) -> int:
        return int(self.m.shape[0])

    def to_model(self, height: int, width: int) -> SmoeModel:
        return SmoeModel(self.mu, self.A, self.m, self.log_alpha, height, width)


@dataclass
class _Checkpoint:
    params: list[torch.Tensor]
    states: list[dict[str, torch.Tensor]]


@dataclass
class _StepOutcome:
    loss: float
    mse: float
    before: _Checkpoint | None  # parameters that gave ``mse`` (None when diverged)
    diverged: str | None = None
    pruned: int = 0


def prune_kernels(
    tensors: list[torch.Tensor],
    optimizer: torch.optim.Adam,
    threshold: float,
    keep_one: bool = False,
    spare: NDArray[np.bool_] | None = None,
) -> tuple[list[torch.Tensor], torch.optim.Adam, NDArray[np.bool_]]:
    """Remove the kernels whose weight ``α = exp(log α)`` is below ``threshold``.

    Parameters
    ----------
    tensors : [mu (K, 2), A (K, 2, 2), m (K,), log_alpha (K,)]
        Leaf tensors that ``optimizer`` (an Adam with one parameter per group,
        in this order) drives.
    optimizer : torch.optim.Adam
    threshold : float
        Kernels with ``α < threshold`` go; ``0`` removes none.
    keep_one : bool
        Keep the kernel of largest α when all would go.
    spare : (K,) bool, optional
        Kernels kept whatever their α.

    Returns
    -------
    tensors : list of 4 tensors
        New leaf tensors holding the kept kernels (the same objects when none
        was removed).
    optimizer : torch.optim.Adam
        A new Adam over them, same learning rates, whose moment estimates are
        the kept rows of the old ones (the old optimizer when none was removed).
    keep : (K,) bool
        Which kernels were kept.
    """
    import torch

    log_alpha = tensors[3].detach()
    if threshold <= 0.0:
        keep_t = torch.ones_like(log_alpha, dtype=torch.bool)
    else:
        keep_t = torch.exp(log_alpha.double()) >= threshold
        if spare is not None:
            keep_t = keep_t | torch.as_tensor(np.asarray(spare, dtype=bool), device=keep_t.device)
        if keep_one and not bool(keep_t.any()) and log_alpha.numel() > 0:
            keep_t[int(torch.argmax(log_alpha))] = True
    keep = keep_t.cpu().numpy()
    if keep.all():
        return tensors, optimizer, keep
    new_tensors = [t.detach()[keep_t].clone().requires_grad_(True) for t in tensors]
    groups = []
    for group, new in zip(optimizer.param_groups, new_tensors, strict=True):
        g = {k: v for k, v in group.items() if k != "params"}
        g["params"] = [new]
        groups.append(g)
    new_opt = torch.optim.Adam(groups)
    for old, new in zip(tensors, new_tensors, strict=True):
        state = optimizer.state.get(old)
        if state:
            new_opt.state[new] = {
                k: (v[keep_t].clone() if v.dim() > 0 and v.shape[0] == keep_t.shape[0] else v.clone())
                for k, v in state.items()
            }
    return new_tensors, new_opt, keep


class _Window:
    """Adam over the trainable kernels of one pixel window, with undo and pruning.

    Parameters
    ----------
    trainable : KernelArrays
        Kernels optimised.
    context : KernelArrays or None
        Frozen kernels rendered with them.
    target : (h, w) float32
        Pixels of the window.
    x0, y0 : float
        Model coordinates of the window's top-left pixel centre.
    params : Params
    reg_weight : float
        Weight of ``(Σ α_i)²`` over the trainable kernels (0 for fine-tuning).
    lr_scale : float
        Initial factor on the table's learning rates.
    device : torch.device
    keep_one : bool
        Never prune the last kernel.
    index : (K,) intp, optional
        Labels of the trainable kernels (their index in a larger set); pruning
        keeps the labels of the kept ones in :attr:`index`.
    guard : bool
        Fine-tuning: undo a step whose MSE jumps above :data:`JUMP_FACTOR`
        times the best, and prune only kernels that govern (almost) nothing.
    """

    def __init__(
        self,
        trainable: KernelArrays,
        context: KernelArrays | None,
        target: NDArray[np.float32],
        x0: float,
        y0: float,
        params: Params,
        reg_weight: float,
        lr_scale: float,
        device: torch.device,
        keep_one: bool,
        index: NDArray[np.intp] | None = None,
        guard: bool = False,
    ) -> None:
        import torch

        self.index = np.arange(len(trainable)) if index is None else np.asarray(index, np.intp)
        self.guard = bool(guard)
        self.best_mse = math.inf
        self.last_mse = math.nan
        self._spared: NDArray[np.bool_] | None = None
        self._spared_step = 0
        self._steps = 0

        self.device = device
        self.params = params
        self.reg_weight = float(reg_weight)
        self.lr_scale = float(lr_scale)
        self.keep_one = keep_one
        self.height, self.width = target.shape[:2]
        self.x0, self.y0 = float(x0), float(y0)
        self.target = torch.as_tensor(np.ascontiguousarray(target), dtype=torch.float32, device=device)
        self.tensors = [
            torch.tensor(a, dtype=torch.float32, device=device).requires_grad_(True)
            for a in trainable.arrays()
        ]
        self.context = (
            None
            if context is None or len(context) == 0
            else [torch.tensor(a, dtype=torch.float32, device=device) for a in context.arrays()]
        )
        lrs = (params.lr_mu, params.lr_A, params.lr_m, params.lr_alpha)
        self.base_lrs = lrs
        self.optimizer = torch.optim.Adam(
            [{"params": [t], "lr": lr * self.lr_scale} for t, lr in zip(self.tensors, lrs, strict=True)]
        )
        self.renderer = SmoeRenderer(self.height, self.width, self.x0, self.y0, device=str(device))
        self.previous: _Checkpoint | None = None

    # -- state ------------------------------------------------------------------------
    def n_kernels(self) -> int:
        return int(self.tensors[2].shape[0])

    def kernels(self, checkpoint: _Checkpoint | None = None) -> KernelArrays:
        """The trainable kernels now (or at ``checkpoint``) as float64 numpy copies."""
        source = self.tensors if checkpoint is None else checkpoint.params
        return KernelArrays(*(t.detach().cpu().numpy().astype(np.float64) for t in source))

    def _checkpoint(self) -> _Checkpoint:
        states = []
        for t in self.tensors:
            st = self.optimizer.state.get(t, {})
            states.append({k: v.detach().clone() for k, v in st.items()})
        return _Checkpoint([t.detach().clone() for t in self.tensors], states)

    def _restore(self, ck: _Checkpoint) -> None:
        import torch

        with torch.no_grad():
            for t, saved, st in zip(self.tensors, ck.params, ck.states, strict=True):
                t.copy_(saved)
                if st:
                    self.optimizer.state[t] = {k: v.clone() for k, v in st.items()}
                else:
                    self.optimizer.state.pop(t, None)

    def set_lr_scale(self, scale: float) -> None:
        """Set the factor (divergence, plateau) on the table's learning rates."""
        self.lr_scale = float(scale)
        self._apply_lrs()

    def _apply_lrs(self) -> None:
        for group, lr in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = lr * self.lr_scale

    def render(self) -> torch.Tensor:
        import torch

        if self.context is None:
            return self.renderer(*self.tensors)
        mu, A, m, la = (torch.cat([t, c]) for t, c in zip(self.tensors, self.context, strict=True))
        return self.renderer(mu, A, m, la)

    # -- one step ----------------------------------------------------------------------
    def step(self) -> _StepOutcome:
        import torch

        ck = self._checkpoint()
        self.optimizer.zero_grad(set_to_none=True)
        image = self.render()
        mse = torch.mean((image - self.target) ** 2)
        loss = mse
        if self.reg_weight > 0.0:
            loss = mse + self.reg_weight * torch.exp(self.tensors[3]).sum() ** 2
        # The loss, the MSE and the checks of the gradients, the new parameters and
        # the pruning threshold are read back in one transfer after the Adam step
        # (a GPU runs forward, backward and Adam without waiting for the host).  A
        # step that should not have been taken is undone by restoring a checkpoint
        # (parameters and Adam's moments): ``ck`` for non-finite gradients or
        # parameters, the previous step's for a non-finite loss or a loss jump
        # (which the previous step caused), as if the step had not been taken.
        loss.backward()
        with torch.no_grad():
            one = torch.ones((), dtype=torch.bool, device=self.device)
            grads_ok = torch.stack([torch.isfinite(t.grad).all() for t in self.tensors
                                    if t.grad is not None] or [one]).all()
            self.optimizer.step()
            params_ok = torch.stack([torch.isfinite(t).all() for t in self.tensors]).all()
            threshold = self.params.prune_threshold
            low_any = (torch.exp(self.tensors[3].double()) < threshold).any() \
                if threshold > 0.0 else ~one
            read = torch.stack([loss.detach().double(), mse.detach().double(), grads_ok.double(),
                                params_ok.double(), low_any.double()]).tolist()
        loss_value, mse_value = float(read[0]), float(read[1])
        self._steps += 1
        if not math.isfinite(loss_value):
            # the parameters now came from the previous step: undo that one
            back = self.previous if self.previous is not None else ck
            return self._diverged(back, loss_value, mse_value, "loss")
        if self.guard and self.previous is not None and mse_value > JUMP_FACTOR * self.best_mse:
            # a finite divergence: the previous step made the MSE jump; undo it
            ratio = mse_value / self.best_mse
            out = self._diverged(self.previous, loss_value, self.last_mse, f"loss jump (MSE x{ratio:.1f})")
            out.diverged = f"loss jump (MSE x{ratio:.1f} of the best)"
            return out
        if not read[2]:
            return self._diverged(ck, loss_value, mse_value, "gradient")
        if not read[3]:
            return self._diverged(ck, loss_value, mse_value, "parameters")
        self.previous = ck
        self.best_mse = min(self.best_mse, mse_value)
        self.last_mse = mse_value
        pruned = self._prune() if read[4] else 0
        if pruned:
            self.best_mse = math.inf  # a smaller model: its own best from now on
        return _StepOutcome(loss_value, mse_value, ck, None, pruned)

    def _diverged(self, back: _Checkpoint, loss: float, mse: float, what: str) -> _StepOutcome:
        self._restore(back)
        self.previous = None
        self.set_lr_scale(self.lr_scale * DIVERGENCE_LR_FACTOR)
        self.optimizer.zero_grad(set_to_none=True)
        return _StepOutcome(loss, mse, None, f"non-finite {what}", 0)

    def _spare(self, low: NDArray[np.bool_]) -> NDArray[np.bool_] | None:
        """Kernels below the α threshold that still govern part of the image
        (gate share above :data:`PRUNE_MAX_SHARE`), when guarding; the shares
        are computed on a grid of at most ~40 000 pixels and re-checked every
        25 steps for the same candidates."""
        if not self.guard or not low.any():
            return None
        if (
            self._spared is not None
            and self._spared.shape == low.shape
            and not (low & ~self._spared).any()
            and self._steps - self._spared_step < 25
        ):
            return self._spared
        from ..rendering.territories import gate_shares

        kernels = self.kernels()
        model = SmoeModel(kernels.mu, kernels.A, kernels.m, kernels.log_alpha,
                          self.height, self.width)
        scale = min(1.0, math.sqrt(40_000.0 / (self.height * self.width)))
        shares = gate_shares(model, max(1, round(self.height * scale)), max(1, round(self.width * scale)))
        self._spared = low & (shares > PRUNE_MAX_SHARE)
        self._spared_step = self._steps
        return self._spared

    def _prune(self) -> int:
        import torch

        before = self.n_kernels()
        threshold = self.params.prune_threshold
        if threshold <= 0.0:
            return 0
        low = (torch.exp(self.tensors[3].detach().double()) < threshold).cpu().numpy()
        if not low.any():
            return 0
        spared = self._spare(low)
        if spared is not None and (low & ~spared).sum() == 0:
            return 0
        tensors, optimizer, keep = prune_kernels(
            self.tensors, self.optimizer, threshold, keep_one=self.keep_one, spare=spared
        )
        if tensors is self.tensors:
            return 0
        self._spared = None

        self.index = self.index[keep]
        keep_t = torch.as_tensor(keep, device=self.device)
        if self.previous is not None:
            self.previous = _Checkpoint(
                [p[keep_t] for p in self.previous.params],
                [
                    {k: (v[keep_t] if v.dim() > 0 and v.shape[0] == keep.shape[0] else v)
                     for k, v in st.items()}
                    for st in self.previous.states
                ],
            )
        self.tensors = tensors
        self.optimizer = optimizer
        # a new renderer: its cached culling lists belong to the old kernel set
        self.renderer = SmoeRenderer(self.height, self.width, self.x0, self.y0, device=str(self.device))
        return before - self.n_kernels()


def _resolve_device(device: str | torch.device | None) -> torch.device:
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA device is available")
    return dev


# --------------------------------------------------------------------------------------
# The phases
# --------------------------------------------------------------------------------------
class _Clock:
    """Seconds of training since the fit started: the time the ``stop``
    token was paused is left out."""

    def __init__(self, stop: StopToken | None = None) -> None:
        self.stop = stop
        self.start = time.perf_counter() - (stop.paused_s() if stop is not None else 0.0)

    def now(self) -> float:
        paused = self.stop.paused_s() if self.stop is not None else 0.0
        return time.perf_counter() - self.start - paused


@dataclass
class TileOutcome:
    """What one tile's training left.

    Attributes
    ----------
    window : (y0, y1, x0, x1)
        Half-open pixel ranges of the tile.
    reconstruction : (y1 - y0, x1 - x0) float32
        The tile rendered with its trained kernels and its frozen context at the
        end of its training.
    steps : int
        Steps made.
    n_pruned : int
        Kernels removed by pruning.
    psnr : float
        PSNR of ``reconstruction`` against the image, in dB.
    """

    window: tuple[int, int, int, int]
    reconstruction: NDArray[np.float32]
    steps: int
    n_pruned: int
    psnr: float


@dataclass
class _FitState:
    """Mutable state shared by the phases of one fit."""

    image: NDArray[np.float32]
    params: Params
    device: torch.device
    clock: _Clock
    stop: StopToken | None
    snapshot_interval_s: float
    kernels: KernelArrays
    alive: NDArray[np.bool_]
    tile_size: int
    step: int = 0
    last_snapshot: float = 0.0
    lr_scale: float = 1.0
    outcomes: list[TileOutcome] = field(default_factory=list)
    phase_times: dict[str, float] = field(default_factory=dict)
    next_image_psnr: float = 0.0
    image_psnr_s: float = 0.0

    def image_psnr_due(self) -> bool:
        return self.clock.now() >= self.next_image_psnr

    def measure_image_psnr(self, model: SmoeModel | None) -> float | None:
        """Whole-image PSNR of ``model`` (rendered in full); schedules the
        next measurement :data:`IMAGE_PSNR_INTERVAL_S` later, or later still
        so that measuring takes at most :data:`IMAGE_PSNR_MAX_SHARE` of the time."""
        if model is None:
            return None
        from ..rendering.culled import render

        t0 = time.perf_counter()
        recon = render(model)
        err = float(np.mean(np.square(recon.astype(np.float64) - self.image)))
        cost = time.perf_counter() - t0
        self.image_psnr_s += cost
        self.next_image_psnr = self.clock.now() + max(IMAGE_PSNR_INTERVAL_S, cost / IMAGE_PSNR_MAX_SHARE)
        return psnr_from_mse(err)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def stopped(self) -> bool:
        """Whether to stop now; while the token is paused, wait first."""
        if self.stop is None:
            return False
        self.stop.wait_while_paused()
        return self.stop.stopped

    def snapshot_due(self) -> bool:
        now = self.clock.now()
        if now - self.last_snapshot >= self.snapshot_interval_s:
            self.last_snapshot = now
            return True
        return False

    def merged(self) -> KernelArrays:
        return self.kernels.subset(self.alive)

    def model_with(self, index: NDArray[np.intp], own: NDArray[np.intp], values: KernelArrays) -> SmoeModel | None:
        """The whole model with the kernels ``own`` replaced by ``values`` (labels ``index``);
        None when every kernel is pruned so far (the merge then says so)."""
        arrays = [a.copy() for a in self.kernels.arrays()]
        alive = self.alive.copy()
        alive[own] = False
        alive[index] = True
        if not alive.any():
            return None
        for a, v in zip(arrays, values.arrays(), strict=True):
            a[index] = v
        return KernelArrays(*arrays).subset(alive).to_model(self.height, self.width)


def _tile_phase(state: _FitState, deadline: float) -> Iterator[FitEvent]:
    """Train the tiles in turn, updating ``state`` in place; yields one event per step."""
    import torch

    params = state.params
    image = state.image
    windows = tile_windows(state.height, state.width, state.tile_size)
    owner = tile_index(state.kernels.mu, state.height, state.width, state.tile_size)
    margin = context_margin(state.tile_size)
    band = loss_band(state.tile_size)
    n_tiles = len(windows)
    for t, (y0, y1, x0, x1) in enumerate(windows):
        if state.stopped():
            return
        own = np.flatnonzero(state.alive & (owner == t))
        if own.size == 0 or params.tile_steps == 0:
            continue
        mu = state.kernels.mu
        near = (
            state.alive
            & (owner != t)
            & (mu[:, 0] >= x0 - margin - 0.5)
            & (mu[:, 0] < x1 + margin - 0.5)
            & (mu[:, 1] >= y0 - margin - 0.5)
            & (mu[:, 1] < y1 + margin - 0.5)
        )
        # the loss window: the tile and a band around it, clipped to the image
        ly0, ly1 = max(0, y0 - band), min(state.height, y1 + band)
        lx0, lx1 = max(0, x0 - band), min(state.width, x1 + band)
        window = _Window(
            state.kernels.subset(own), state.kernels.subset(near), image[ly0:ly1, lx0:lx1],
            lx0, ly0, params, params.reg_weight, state.lr_scale, state.device,
            keep_one=False, index=own,
        )
        tile_deadline = state.clock.now() + max(0.0, deadline - state.clock.now()) / (n_tiles - t)
        steps = 0
        pruned = 0
        n_others = int(state.alive.sum()) - own.size
        while steps < params.tile_steps and window.n_kernels() > 0:
            if state.stopped() or (steps > 0 and state.clock.now() >= tile_deadline):
                break
            result = window.step()
            steps += 1
            state.step += 1
            pruned += result.pruned
            message = None
            if result.diverged is not None:
                message = (
                    f"tile {t + 1}/{n_tiles}: {result.diverged} at step {state.step}; step "
                    f"undone, learning rates x{DIVERGENCE_LR_FACTOR:g} (now x{window.lr_scale:g} "
                    "of the table)"
                )
            elif result.pruned:
                message = (
                    f"tile {t + 1}/{n_tiles}: pruned {result.pruned} kernel(s) with "
                    f"α < {params.prune_threshold:g}"
                )
            snapshot = (
                state.model_with(window.index, own, window.kernels()) if state.snapshot_due() else None
            )
            image_psnr = None
            if state.image_psnr_due():
                now = snapshot if snapshot is not None else state.model_with(window.index, own, window.kernels())
                image_psnr = state.measure_image_psnr(now)
            yield FitEvent(
                phase="tiles", step=state.step, loss=result.loss, psnr=psnr_from_mse(result.mse),
                n_kernels=n_others + window.n_kernels(), elapsed_s=state.clock.now(),
                model=snapshot, tile=t, n_tiles=n_tiles, message=message,
                lr_scale=window.lr_scale, image_psnr=image_psnr,
            )
            if window.lr_scale < MIN_LR_SCALE:
                break
        # write the tile's kernels back into the whole set
        trained = window.kernels()
        state.alive[own] = False
        state.alive[window.index] = True
        for a, v in zip(state.kernels.arrays(), trained.arrays(), strict=True):
            a[window.index] = v
        if window.n_kernels() or window.context is not None:
            with torch.no_grad():
                full = window.render().detach().cpu().numpy().astype(np.float32)
            recon = np.ascontiguousarray(full[y0 - ly0 : y1 - ly0, x0 - lx0 : x1 - lx0])
            err = float(np.mean((recon.astype(np.float64) - image[y0:y1, x0:x1]) ** 2))
        else:
            recon = np.zeros((y1 - y0, x1 - x0), np.float32)
            err = math.nan
        state.outcomes.append(TileOutcome((y0, y1, x0, x1), recon, steps, pruned, psnr_from_mse(err)))


@dataclass
class _Best:
    mse: float = math.inf
    checkpoint: _Checkpoint | None = None
    kernels: KernelArrays | None = None

    def offer(self, mse: float, checkpoint: _Checkpoint | None) -> None:
        if checkpoint is not None and math.isfinite(mse) and mse < self.mse:
            self.mse = mse
            self.checkpoint = checkpoint
            self.kernels = None

    def result(self) -> KernelArrays | None:
        if self.kernels is None and self.checkpoint is not None:
            self.kernels = KernelArrays(
                *(t.detach().cpu().numpy().astype(np.float64) for t in self.checkpoint.params)
            )
        return self.kernels


def _full_window(state: _FitState, kernels: KernelArrays) -> _Window:
    return _Window(
        kernels, None, state.image, 0.0, 0.0, state.params, 0.0, state.lr_scale,
        state.device, keep_one=True, guard=True,
    )


def _finetune_phase(
    state: _FitState, window: _Window, best: _Best, deadline: float, outcome: list[str]
) -> Iterator[FitEvent]:
    """Fine-tune the whole model without the penalty; yields one event per step.

    ``outcome`` receives why it ended ("converged", "time", "steps", "stopped",
    "diverged", "exact").
    """
    params = state.params
    history: list[float] = []  # best PSNR after each step
    plateau_window = max(1, params.patience // 4)
    last_drop = 0
    plateau_scale = 1.0
    steps = 0
    while True:
        if state.stopped():
            outcome.append("stopped")
            return
        if best.mse <= 0.0:
            outcome.append("exact")
            return
        if steps >= params.max_steps:
            outcome.append("steps")
            return
        if steps > 0 and state.clock.now() >= deadline:
            outcome.append("time")
            return
        result = window.step()
        steps += 1
        state.step += 1
        best.offer(result.mse, result.before)
        history.append(psnr_from_mse(best.mse))
        message = None
        if result.diverged is not None:
            message = (
                f"fine-tuning: {result.diverged} at step {state.step}; step undone, learning "
                f"rates x{DIVERGENCE_LR_FACTOR:g} (now x{window.lr_scale:g} of the table)"
            )
        elif result.pruned:
            message = f"fine-tuning: pruned {result.pruned} kernel(s) with α < {params.prune_threshold:g}"
        converged = (
            len(history) > params.patience
            and history[-1] - history[-1 - params.patience] < params.tol_db
        )
        # learning-rate schedule: halve on a plateau of patience/4 steps
        if (
            not converged
            and len(history) > plateau_window
            and steps - last_drop >= plateau_window
            and plateau_scale > MIN_PLATEAU_SCALE
            and history[-1] - history[-1 - plateau_window] < params.tol_db
        ):
            plateau_scale *= PLATEAU_LR_FACTOR
            window.set_lr_scale(window.lr_scale * PLATEAU_LR_FACTOR)
            last_drop = steps
        state.lr_scale = window.lr_scale
        snapshot = window.kernels().to_model(state.height, state.width) if state.snapshot_due() else None
        yield FitEvent(
            phase="finetune", step=state.step, loss=result.loss, psnr=psnr_from_mse(result.mse),
            n_kernels=window.n_kernels(), elapsed_s=state.clock.now(), model=snapshot,
            message=message, lr_scale=window.lr_scale, image_psnr=psnr_from_mse(result.mse),
        )
        if converged:
            outcome.append("converged")
            return
        if window.lr_scale < MIN_LR_SCALE:
            outcome.append("diverged")
            return


def train_tiles(
    image: NDArray[np.floating],
    model: SmoeModel,
    params: Params,
    device: str | torch.device | None = None,
) -> tuple[SmoeModel, list[TileOutcome]]:
    """Run the tile phase alone (``tile_steps`` per tile, no time limit) and merge.

    The same code as the ``tiles`` and ``merge`` phases of :func:`fit`; useful to
    inspect the tiles.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) float array in [0, 1]
    model : SmoeModel
        The initial model of ``image`` (gray or colour experts; the image is
        taken in the same form, see :func:`fit`).
    params : Params

    Returns
    -------
    merged : SmoeModel
        All tiles' kernels, pruned ones removed.
    outcomes : list of TileOutcome
        One per tile that had kernels, in tile order.
    """
    import torch

    img = fit_input_image(image, params, model)
    model = _initial_model(img, params, model, "edge")
    torch.manual_seed(params.seed)
    state = _FitState(
        image=img, params=params, device=_resolve_device(device), clock=_Clock(), stop=None,
        snapshot_interval_s=math.inf, kernels=KernelArrays.from_model(model),
        alive=np.ones(model.n_kernels, dtype=bool), tile_size=fit_tile_size(img.shape, params),
    )
    for _ in _tile_phase(state, deadline=math.inf):
        pass
    merged = state.merged()
    if len(merged) == 0:
        raise ValueError("every kernel was pruned during the tile phase")
    return merged.to_model(state.height, state.width), state.outcomes


# --------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------
def fit_input_image(
    image: NDArray[np.floating], params: Params, init: Initialization | SmoeModel | None
) -> NDArray[np.float32]:
    """The image as the fit models it: gray ``(H, W)`` or RGB ``(H, W, 3)``.

    An initial model decides by its experts (``(K,)`` gray, ``(K, 3)`` RGB);
    without one, ``params.channels`` does (:func:`smoe_gui.core.io.image.as_channels`:
    a colour image's luma for gray, three equal channels of a gray image for rgb).
    """
    arr = np.asarray(image)
    if arr.ndim == 3:
        check_image(arr, colour=True)  # the message names the input as given
    model = getattr(init, "model", init)
    if isinstance(model, SmoeModel):
        if model.is_colour and model.n_channels != 3:
            raise ValueError(
                f"the model has {model.n_channels} expert channels; 1 (gray) or 3 (RGB) are supported"
            )
        channels = "rgb" if model.is_colour else "gray"
    else:
        channels = params.channels
    if arr.ndim in (2, 3):
        arr = as_channels(check_image(arr, colour=True), channels)
    return check_image(arr, colour=True)


def _initial_model(
    image: NDArray[np.float32],
    params: Params,
    init: Initialization | SmoeModel | None,
    method: str,
) -> SmoeModel:
    if init is None:
        from ..methods.pipeline import initialize

        init = initialize(image, params, method=method)
    model = getattr(init, "model", init)
    if not isinstance(model, SmoeModel):
        raise ValueError(
            f"init must be an Initialization or a SmoeModel, got {type(init).__name__}"
        )
    if (model.height, model.width) != image.shape[:2]:
        raise ValueError(
            f"the model is for a {model.width}x{model.height} image, but the image is "
            f"{image.shape[1]}x{image.shape[0]}"
        )
    if model.n_kernels == 0:
        raise ValueError("the initial model has no kernels; nothing to train")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if model.n_channels != channels or model.is_colour != (image.ndim == 3):
        raise ValueError(
            f"the model's experts have shape {model.m.shape[1:] or '(K,)'}, but the image has "
            f"{channels} channel(s)"
        )
    return model


def fit(
    image: NDArray[np.floating],
    params: Params,
    init: Initialization | SmoeModel | None = None,
    method: str = "edge",
    *,
    stop: StopToken | None = None,
    snapshot_interval_s: float = 0.2,
    device: str | torch.device | None = None,
) -> Iterator[FitEvent]:
    """Train an SMoE model of ``image``, streaming events.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) float array in [0, 1]
        The image.  An initial model decides how it is modelled (experts
        ``(K,)``: its BT.601 luma; ``(K, 3)``: RGB); without one,
        ``params.channels`` does.  In colour the loss is the MSE over all
        pixels and channels, and the PSNR of the events is
        ``10·log10(1/MSE)`` of that MSE.
    params : Params
        ``tile_size``, ``tile_steps``, ``lr_*``, ``reg_weight``,
        ``prune_threshold``, ``max_steps``, ``time_budget``, ``tol_db``,
        ``patience`` and ``seed`` are used here (the others by the
        initialisation).
    init : Initialization or SmoeModel, optional
        The initial model; when None, ``initialize(image, params, method)``
        makes it (its time does not count against ``time_budget``).
    method : str
        One of :data:`smoe_gui.core.params.METHODS`.
        Initialisation method when ``init`` is None.
    stop : StopToken, optional
        Checked before every step; once set, the fit yields its final event
        with the best model so far.  While it is paused the fit waits before
        its next step, and the time paused counts neither against
        ``time_budget`` nor in ``elapsed_s``.
    snapshot_interval_s : float
        Seconds between model snapshots in the events (0: every step).
    device : str or torch.device, optional
        ``"cpu"`` or ``"cuda"``; default CUDA when available, else CPU.

    Yields
    ------
    FitEvent
        One per step (phases ``tiles`` then ``finetune``), one for ``merge``, and
        a last one with ``final=True`` whose ``model`` is the best model (lowest
        whole-image MSE seen).  Closing the generator stops the fit at once.

    Raises
    ------
    ValueError
        For a bad image, an initial model of another size, without kernels or
        with expert channels other than 1 or 3, an unknown method or device, or a
        negative snapshot interval.
    """
    if not isinstance(params, Params):
        raise ValueError(f"params must be a Params, got {type(params).__name__}")
    check_method(method)
    if not (isinstance(snapshot_interval_s, (int, float)) and snapshot_interval_s >= 0):
        raise ValueError(f"snapshot_interval_s must be >= 0, got {snapshot_interval_s!r}")
    img = fit_input_image(image, params, init)
    dev = _resolve_device(device)
    model = _initial_model(img, params, init, method)
    return _fit(img, params, model, stop, float(snapshot_interval_s), dev)


#: Device types whose compiled kernels were warmed up in this process (:func:`_warm_up`).
_WARM: set[str] = set()


def _warm_up(device: torch.device) -> None:
    """Run a tiny fit through every phase once per process and device type, so
    that the just-in-time compilation of the numba kernels (seconds in a fresh
    checkout or a new worker process) is not charged to a fit's time budget:
    without it the first fit of a sweep made a tenth of the steps of the others."""
    if device.type in _WARM:
        return
    _WARM.add(device.type)  # first, so that the warm-up's own fit does not recurse
    yy, xx = np.mgrid[0:24, 0:24].astype(np.float32)
    image = np.ascontiguousarray((0.2 + 0.6 * (xx > 11) + 0.1 * yy / 24).astype(np.float32))
    c = np.array([[5.5, 5.5], [17.5, 5.5], [5.5, 17.5], [17.5, 17.5]])
    model = SmoeModel(mu=c, A=np.tile(np.eye(2) / 6.0, (4, 1, 1)), m=image[c[:, 1].astype(int), c[:, 0].astype(int)].astype(np.float64),
                      log_alpha=np.zeros(4), height=24, width=24)
    tiny = Params(tile_size=16, tile_steps=2, max_steps=12, time_budget=10.0, patience=4, prune_threshold=1e-3)
    for _ in _fit(image, tiny, model, None, 0.0, device):
        pass


def _fit(
    image: NDArray[np.float32],
    params: Params,
    model: SmoeModel,
    stop: StopToken | None,
    snapshot_interval_s: float,
    device: torch.device,
) -> Iterator[FitEvent]:
    import torch

    _warm_up(device)
    torch.manual_seed(params.seed)
    tile_size = fit_tile_size(image.shape, params)
    start = KernelArrays.from_model(model)
    state = _FitState(
        image=image, params=params, device=device, clock=_Clock(stop), stop=stop,
        snapshot_interval_s=snapshot_interval_s, kernels=KernelArrays(*(a.copy() for a in start.arrays())),
        alive=np.ones(model.n_kernels, dtype=bool), tile_size=tile_size,
    )
    # the starting point is a candidate for the best model (its evaluation is not training time)
    with torch.no_grad():
        start_window = _full_window(state, start)
        start_mse = float(torch.mean((start_window.render() - start_window.target) ** 2))
    del start_window
    best = _Best()
    if math.isfinite(start_mse):
        best.mse = start_mse
        best.kernels = start
    clock = state.clock = _Clock(stop)
    budget = params.time_budget
    n_tiles = len(tile_windows(state.height, state.width, tile_size))

    # -- tiles ------------------------------------------------------------------------
    if best.mse > 0.0:  # an exact start (e.g. a constant image) has nothing to train
        yield from _tile_phase(state, deadline=TILE_TIME_SHARE * budget)
    state.phase_times["tiles"] = clock.now()

    # -- merge ------------------------------------------------------------------------
    merged = state.merged()
    if len(merged) == 0:
        raise ValueError(
            "every kernel was pruned during the tile phase (prune_threshold "
            f"{params.prune_threshold:g} with reg_weight {params.reg_weight:g}); "
            "lower one of them"
        )
    window = _full_window(state, merged)
    with torch.no_grad():
        merged_mse = float(torch.mean((window.render() - window.target) ** 2))
    if math.isfinite(merged_mse) and merged_mse < best.mse:
        best.mse = merged_mse
        best.kernels = merged
    state.phase_times["merge"] = clock.now() - state.phase_times["tiles"]
    pruned_tiles = model.n_kernels - len(merged)
    merge_message = f"merged {n_tiles} tile(s): {len(merged)} kernels ({pruned_tiles} pruned)"
    if tile_size < params.tile_size:
        merge_message = (
            f"tile size {params.tile_size} px clamped to the image's longer side "
            f"({tile_size} px); " + merge_message
        )
    yield FitEvent(
        phase="merge", step=state.step, loss=merged_mse, psnr=psnr_from_mse(merged_mse),
        n_kernels=len(merged), elapsed_s=clock.now(),
        model=merged.to_model(state.height, state.width), n_tiles=n_tiles,
        message=merge_message, lr_scale=state.lr_scale, image_psnr=psnr_from_mse(merged_mse),
    )
    state.last_snapshot = clock.now()

    # -- fine-tuning ------------------------------------------------------------------
    start_ft = clock.now()
    step_before_ft = state.step
    outcome: list[str] = []
    yield from _finetune_phase(state, window, best, deadline=budget, outcome=outcome)
    state.phase_times["finetune"] = clock.now() - start_ft
    reason = outcome[0] if outcome else "stopped"
    last_phase = "finetune" if state.step > step_before_ft else "merge"

    result = best.result()
    if result is None:  # the initial model itself was not finite: cannot happen with a valid init
        raise ValueError("training produced no finite model")
    final_model = result.to_model(state.height, state.width)
    messages = {
        "converged": f"converged: PSNR gained < {params.tol_db:g} dB over {params.patience} steps",
        "time": f"time budget of {budget:g} s spent",
        "steps": f"step budget of {params.max_steps} fine-tuning steps spent",
        "stopped": "stopped on request",
        "exact": "the reconstruction is exact (PSNR inf dB): nothing left to train",
        "diverged": "stopped: the learning rate fell below "
        f"{MIN_LR_SCALE:g} of the table after repeated divergence",
    }
    message = messages[reason]
    if result is start and reason != "exact":
        start_db = format_psnr(psnr_from_mse(start_mse))
        if reason == "time":
            message = (
                f"the time budget of {budget:g} s was too short to train: no step improved on "
                f"the initial model ({start_db}), which is kept"
            )
        else:
            message += (
                f"; no step improved on the initial model ({start_db}), which is kept"
            )
    yield FitEvent(
        phase=last_phase,
        step=state.step, loss=best.mse, psnr=psnr_from_mse(best.mse),
        n_kernels=final_model.n_kernels, elapsed_s=clock.now(), model=final_model,
        n_tiles=n_tiles, message=message, final=True, lr_scale=state.lr_scale,
        phase_times_s=dict(state.phase_times), image_psnr=psnr_from_mse(best.mse),
    )
