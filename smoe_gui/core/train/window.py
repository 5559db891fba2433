"""Adam over the kernels of one pixel window, with undo and pruning.

:class:`KernelArrays` holds a kernel set as numpy arrays; :class:`_Window`
optimises some of them (others frozen as context) on a window of the image,
undoing a step whose loss, gradients or parameters are not finite (and, when
guarding, a finite jump of the MSE), and pruning kernels whose weight falls
below the threshold (:func:`prune_kernels`).  Used by every phase of
:mod:`smoe_gui.core.train.phases`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..model import SmoeModel
from ..params import Params
from ..rendering.culled import SmoeRenderer

if TYPE_CHECKING:
    import torch

__all__ = [
    "DIVERGENCE_LR_FACTOR",
    "JUMP_FACTOR",
    "MIN_LR_SCALE",
    "PRUNE_MAX_SHARE",
    "KernelArrays",
    "cap_width",
    "gate_sigma",
    "prune_kernels",
    "resolve_device",
]

#: Lowest learning-rate scale after repeated divergence; below it a phase ends.
MIN_LR_SCALE = 1e-6
#: Factor applied to the learning rates after a diverging step.
DIVERGENCE_LR_FACTOR = 0.5
#: A fine-tuning step whose MSE exceeds this multiple of the best MSE so far is
#: undone like a non-finite one (a finite divergence; 4x = 6 dB).
JUMP_FACTOR = 4.0
#: Fine-tuning prunes a kernel with α below the threshold only when its gate
#: share (mean gate weight over the image) is at most this.
PRUNE_MAX_SHARE = 1e-5


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
    pruned_outside: int = 0  # of ``pruned``: centres outside the image, no gate share
    replaced: int = 0  # new kernels placed where the residual is largest


def prune_kernels(
    tensors: list[torch.Tensor],
    optimizer: torch.optim.Adam,
    threshold: float,
    keep_one: bool = False,
    spare: NDArray[np.bool_] | None = None,
    drop: NDArray[np.bool_] | None = None,
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
        Kernels kept whatever their α (and whatever ``drop`` says).
    drop : (K,) bool, optional
        Kernels removed whatever their α (centres outside the image), unless spared.

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
    if threshold <= 0.0 and drop is None:
        keep_t = torch.ones_like(log_alpha, dtype=torch.bool)
    else:
        keep_t = (torch.exp(log_alpha.double()) >= threshold if threshold > 0.0
                  else torch.ones_like(log_alpha, dtype=torch.bool))
        if drop is not None:
            keep_t = keep_t & ~torch.as_tensor(np.asarray(drop, dtype=bool), device=keep_t.device)
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
                k: (v[keep_t].clone() if v.dim() > 0 and v.shape[0] == keep_t.shape[0]
                    else v.clone())
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
        times the best, prune only kernels that govern (almost) nothing, and
        prune a kernel whose centre left the window and that governs nothing.
    budget : int, optional
        Keep this many kernels: each kernel pruned is re-placed where the
        residual is largest (:mod:`smoe_gui.core.train.replace`).  None: no
        re-placement.
    max_sigma : float, optional
        After every step, no trainable kernel's gate is wider (standard
        deviation along its longer axis, :func:`gate_sigma`) than this many
        pixels or than it was at the start, whichever is larger
        (:func:`cap_width`); kernels added by re-placement get this cap.
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
        budget: int | None = None,
        max_sigma: float | None = None,
    ) -> None:
        import torch

        self.budget = None if budget is None else int(budget)
        self.max_sigma = None if max_sigma is None else float(max_sigma)

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
        self.target = torch.as_tensor(np.ascontiguousarray(target), dtype=torch.float32,
                                      device=device)
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
            [{"params": [t], "lr": lr * self.lr_scale}
             for t, lr in zip(self.tensors, lrs, strict=True)]
        )
        self.renderer = SmoeRenderer(self.height, self.width, self.x0, self.y0, device=str(device))
        self.previous: _Checkpoint | None = None
        self.sigma_cap = (
            None if self.max_sigma is None
            else torch.as_tensor(np.maximum(self.max_sigma, gate_sigma(trainable.A)),
                                 dtype=torch.float64, device=device)
        )

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
            if self.sigma_cap is not None:
                cap_width(self.tensors[1], self.sigma_cap)  # the tile phase's width limit
            params_ok = torch.stack([torch.isfinite(t).all() for t in self.tensors]).all()
            threshold = self.params.prune_threshold
            low_any = (torch.exp(self.tensors[3].double()) < threshold).any() \
                if threshold > 0.0 else ~one
            if self.guard:
                low_any = low_any | self._outside(self.tensors[0]).any()
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
            out = self._diverged(self.previous, loss_value, self.last_mse,
                                 f"loss jump (MSE x{ratio:.1f})")
            out.diverged = f"loss jump (MSE x{ratio:.1f} of the best)"
            return out
        if not read[2]:
            return self._diverged(ck, loss_value, mse_value, "gradient")
        if not read[3]:
            return self._diverged(ck, loss_value, mse_value, "parameters")
        self.previous = ck
        self.best_mse = min(self.best_mse, mse_value)
        self.last_mse = mse_value
        pruned, outside = self.prune() if read[4] else (0, 0)
        replaced = 0
        if pruned:
            self.best_mse = math.inf  # a smaller model: its own best from now on
            if self.budget is not None and self.n_kernels() < self.budget:
                replaced = self.replace(self.budget - self.n_kernels())
        return _StepOutcome(loss_value, mse_value, ck, None, pruned, outside, replaced)

    def _outside(self, mu: torch.Tensor) -> torch.Tensor:
        """(K,) bool tensor: centres outside the window (pixel centres at x0.., y0..)."""
        x, y = mu[:, 0] - self.x0, mu[:, 1] - self.y0
        return (x < -0.5) | (x >= self.width - 0.5) | (y < -0.5) | (y >= self.height - 0.5)

    def rewind(self, ck: _Checkpoint, mse: float) -> bool:
        """Go back to the parameters and optimizer state of ``ck`` (whose MSE is
        ``mse``) and halve the learning rates (:data:`DIVERGENCE_LR_FACTOR`), as a
        diverging step does; False (nothing done) when ``ck`` is of another
        kernel count."""
        if len(ck.params) != len(self.tensors) or any(
            saved.shape != t.shape for saved, t in zip(ck.params, self.tensors, strict=True)
        ):
            return False
        self._restore(ck)
        self.previous = None
        self.best_mse = min(self.best_mse, mse)
        self.last_mse = mse
        self.set_lr_scale(self.lr_scale * DIVERGENCE_LR_FACTOR)
        self.optimizer.zero_grad(set_to_none=True)
        return True

    def _diverged(self, back: _Checkpoint, loss: float, mse: float, what: str) -> _StepOutcome:
        self._restore(back)
        self.previous = None
        self.set_lr_scale(self.lr_scale * DIVERGENCE_LR_FACTOR)
        self.optimizer.zero_grad(set_to_none=True)
        return _StepOutcome(loss, mse, None, f"non-finite {what}", 0)

    def _spare(self, low: NDArray[np.bool_]) -> NDArray[np.bool_] | None:
        """Candidates (below the α threshold, or outside) that still govern part of the image
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
        shares = gate_shares(model, max(1, round(self.height * scale)),
                             max(1, round(self.width * scale)))
        self._spared = low & (shares > PRUNE_MAX_SHARE)
        self._spared_step = self._steps
        return self._spared

    def prune(self) -> tuple[int, int]:
        """Prune (α below the threshold; when guarding also centres outside the
        window), sparing kernels that still govern pixels when guarding.

        Returns
        -------
        (pruned, outside) : the kernels removed, and how many of them were outside.
        """
        import torch

        before = self.n_kernels()
        threshold = self.params.prune_threshold
        log_alpha = self.tensors[3].detach().double()
        low = ((torch.exp(log_alpha) < threshold) if threshold > 0.0
               else torch.zeros_like(log_alpha, dtype=torch.bool)).cpu().numpy()
        outside = (self._outside(self.tensors[0].detach()).cpu().numpy() if self.guard
                   else np.zeros_like(low))
        candidates = low | outside
        if not candidates.any():
            return 0, 0
        spared = self._spare(candidates)
        if spared is not None and not (candidates & ~spared).any():
            return 0, 0
        tensors, optimizer, keep = prune_kernels(
            self.tensors, self.optimizer, threshold, keep_one=self.keep_one, spare=spared,
            drop=outside,
        )
        if tensors is self.tensors:
            return 0, 0
        self._keep(tensors, optimizer, keep)
        return before - self.n_kernels(), int((outside & ~keep).sum())

    def replace_least_useful(self, n: int) -> int:
        """Remove the ``n`` kernels whose removal alone costs the least squared error
        on the window (:func:`smoe_gui.core.rendering.territories.removal_costs`)
        and place as many new ones where the residual is largest (:meth:`replace`);
        returns how many were re-placed.  The window then has its own best MSE
        anew (as after pruning)."""
        from ..rendering.territories import removal_costs
        from .replace import least_useful

        if n <= 0 or self.n_kernels() <= 1:
            return 0
        k = self.kernels()
        local = SmoeModel(k.mu - np.array([self.x0, self.y0]), k.A, k.m, k.log_alpha,
                          self.height, self.width)
        drop = least_useful(removal_costs(local, self.target.detach().cpu().numpy()), n)
        tensors, optimizer, keep = prune_kernels(self.tensors, self.optimizer, 0.0, drop=drop)
        if tensors is self.tensors:
            return 0
        self._keep(tensors, optimizer, keep)
        self.best_mse = math.inf
        return self.replace(int((~keep).sum()))

    def _keep(self, tensors: list[torch.Tensor], optimizer: torch.optim.Adam,
              keep: NDArray[np.bool_]) -> None:
        """Adopt ``tensors`` and ``optimizer``, which hold the ``keep`` rows of the kernels."""
        import torch

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
        if self.sigma_cap is not None:
            self.sigma_cap = self.sigma_cap[keep_t]
        # a new renderer: its cached culling lists belong to the old kernel set
        self.renderer = SmoeRenderer(self.height, self.width, self.x0, self.y0,
                                     device=str(self.device))

    def replace(self, n: int) -> int:
        """Add up to ``n`` kernels where the residual is largest (see
        :func:`smoe_gui.core.train.replace.replacement_kernels`); returns how many.

        The new kernels start with zero first moments and the median second
        moments of the others in Adam (a first step of the usual size).  The
        previous step can no longer be undone (a loss jump right after is
        undone to the checkpoint of that step instead).
        """
        import torch

        from .replace import replacement_kernels

        if n <= 0 or self.n_kernels() == 0:
            return 0
        with torch.no_grad():
            recon = self.render().detach().cpu().numpy()
        target = self.target.detach().cpu().numpy()
        threshold = self.params.prune_threshold
        floor = math.log(threshold) + 1.0 if threshold > 0.0 else -math.inf
        new = replacement_kernels(target, recon, self.kernels(), n, self.budget or n, floor)
        if len(new) == 0:
            return 0
        # the new kernels are local to the window: shift into model coordinates
        new.mu = new.mu + np.array([self.x0, self.y0])
        old = self.tensors
        tensors = [
            torch.cat([t.detach(), torch.tensor(a, dtype=t.dtype, device=self.device)])
            .requires_grad_(True)
            for t, a in zip(old, new.arrays(), strict=True)
        ]
        groups = []
        for group, t in zip(self.optimizer.param_groups, tensors, strict=True):
            g = {k: v for k, v in group.items() if k != "params"}
            g["params"] = [t]
            groups.append(g)
        optimizer = torch.optim.Adam(groups)
        k = len(new)
        for o, t in zip(old, tensors, strict=True):
            state = self.optimizer.state.get(o)
            if not state:
                continue
            grown = {}
            for key, v in state.items():
                if v.dim() > 0 and v.shape[0] == o.shape[0]:
                    rows = (torch.zeros_like(v[:1]) if key != "exp_avg_sq"
                            else v.median(dim=0, keepdim=True).values)
                    grown[key] = torch.cat([v, rows.expand((k,) + v.shape[1:])]).clone()
                else:
                    grown[key] = v.clone()
            optimizer.state[t] = grown
        start = int(self.index.max()) + 1 if self.index.size else 0
        self.index = np.concatenate([self.index, np.arange(start, start + k, dtype=np.intp)])
        self.tensors = tensors
        self.optimizer = optimizer
        if self.sigma_cap is not None and self.max_sigma is not None:
            self.sigma_cap = torch.cat([self.sigma_cap, torch.full(
                (k,), self.max_sigma, dtype=self.sigma_cap.dtype, device=self.device)])
        self.previous = None
        self._spared = None
        self.renderer = SmoeRenderer(self.height, self.width, self.x0, self.y0,
                                     device=str(self.device))
        return k


def gate_sigma(A: NDArray[np.float64]) -> NDArray[np.float64]:
    """Largest standard deviation of each gate, in pixels.

    The gate ``exp(-‖Aᵀ(x-μ)‖²)`` is a Gaussian of covariance ``Σ = (A Aᵀ)⁻¹/2``,
    so its standard deviation along an axis is ``1/(√2·s)`` for the singular
    values ``s`` of ``A``.

    Parameters
    ----------
    A : (K, 2, 2) float array

    Returns
    -------
    (K,) float64
        ``1/(√2·s_min)``; ``inf`` for a singular matrix.
    """
    a = np.asarray(A, dtype=np.float64)
    if a.shape[0] == 0:
        return np.zeros(0)
    s_min = np.asarray(np.linalg.svd(a, compute_uv=False)[:, -1], dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.asarray(1.0 / (math.sqrt(2.0) * s_min), dtype=np.float64)


def cap_width(A: torch.Tensor, max_sigma: torch.Tensor) -> None:
    """Narrow, in place, every steering matrix whose gate is wider than its cap.

    Singular values of ``A`` below ``1/(√2·max_sigma)`` are raised to it (the
    singular vectors, i.e. the orientation, and the other axis are kept), so
    that no gate's standard deviation (:func:`gate_sigma`) exceeds the cap;
    every other matrix is left bit for bit as it is.  No value is read back to
    the host.

    Parameters
    ----------
    A : (K, 2, 2) tensor
        Steering matrices (modified in place, outside autograd).
    max_sigma : (K,) tensor
        Largest standard deviation of each kernel in pixels, > 0.
    """
    import torch

    if A.shape[0] == 0:
        return
    with torch.no_grad():
        s_min = 1.0 / (math.sqrt(2.0) * max_sigma.to(torch.float64))
        a = A.detach().double()
        finite = torch.isfinite(a).all(dim=2).all(dim=1)
        a = torch.where(finite[:, None, None], a, torch.eye(2, dtype=a.dtype, device=a.device))
        u, s, vh = torch.linalg.svd(a)
        wide = finite & (s[:, 1] < s_min)  # singular values come in descending order
        fixed = u @ torch.diag_embed(torch.maximum(s, s_min[:, None])) @ vh
        A.copy_(torch.where(wide[:, None, None], fixed.to(A.dtype), A))


def resolve_device(device: str | torch.device | None) -> torch.device:
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA device is available")
    return dev
