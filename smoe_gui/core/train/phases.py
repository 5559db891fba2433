"""The phases of a fit: the tiles one by one, then fine-tuning of the whole model.

Both yield one :class:`~smoe_gui.core.events.FitEvent` per step and update the
shared :class:`_FitState`; :func:`smoe_gui.core.train.training.fit` runs them
with the merge in between.  The rules they follow are described in
:mod:`smoe_gui.core.train.training` and ``docs/training.md``.
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
from ..metrics import psnr_from_mse
from ..model import SmoeModel
from ..params import Params
from .messages import diverged_message, pruned_message, replaced_message, slide_message
from .replace import replacement_due
from .tiles import loss_band, max_tile_sigma, tile_context, tile_index, tile_windows
from .window import DIVERGENCE_LR_FACTOR, MIN_LR_SCALE, KernelArrays, _Checkpoint, _Window

if TYPE_CHECKING:
    import torch

__all__ = [
    "IMAGE_PSNR_INTERVAL_S",
    "IMAGE_PSNR_MAX_SHARE",
    "MIN_PLATEAU_SCALE",
    "PLATEAU_LR_FACTOR",
    "TILE_TIME_SHARE",
    "TileOutcome",
]

#: Largest share of the time budget that the tile phase may use.
TILE_TIME_SHARE = 0.35
#: Factor applied to the fine-tuning learning rates on a PSNR plateau.
PLATEAU_LR_FACTOR = 0.5
#: Lowest learning-rate scale the plateau schedule goes to.
MIN_PLATEAU_SCALE = 1.0 / 64.0
#: Seconds between whole-image PSNR measurements during the tile phase.
IMAGE_PSNR_INTERVAL_S = 0.3
#: Largest share of the tile phase's time that those measurements may take.
IMAGE_PSNR_MAX_SHARE = 0.1


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
    #: The latest whole-image PSNR measured (dB), carried on the events between measurements.
    last_image_psnr: float = math.nan

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
        self.next_image_psnr = self.clock.now() + max(
            IMAGE_PSNR_INTERVAL_S, cost / IMAGE_PSNR_MAX_SHARE
        )
        self.last_image_psnr = psnr_from_mse(err)
        return self.last_image_psnr

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

    def model_with(
        self, index: NDArray[np.intp], own: NDArray[np.intp], values: KernelArrays
    ) -> SmoeModel | None:
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
    band = loss_band(state.tile_size)
    sigma = max_tile_sigma(state.tile_size)
    n_tiles = len(windows)
    for t, (y0, y1, x0, x1) in enumerate(windows):
        if state.stopped():
            return
        own = np.flatnonzero(state.alive & (owner == t))
        if own.size == 0 or params.tile_steps == 0:
            continue
        # the loss window: the tile and a band around it, clipped to the image
        ly0, ly1 = max(0, y0 - band), min(state.height, y1 + band)
        lx0, lx1 = max(0, x0 - band), min(state.width, x1 + band)
        # the frozen context: the whole current model, culled to what reaches the window
        near = tile_context(state.kernels.mu, state.kernels.A, state.kernels.log_alpha,
                            state.alive & (owner != t), own, (ly0, ly1, lx0, lx1))
        window = _Window(
            state.kernels.subset(own), state.kernels.subset(near), image[ly0:ly1, lx0:lx1],
            lx0, ly0, params, params.reg_weight, state.lr_scale, state.device,
            keep_one=False, index=own, max_sigma=sigma,
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
                message = diverged_message(f"tile {t + 1}/{n_tiles}", result.diverged,
                                           state.step, DIVERGENCE_LR_FACTOR, window.lr_scale)
            elif result.pruned:
                message = pruned_message(f"tile {t + 1}/{n_tiles}", result.pruned,
                                         params.prune_threshold, result.pruned_outside)
            snapshot = (
                state.model_with(window.index, own, window.kernels())
                if state.snapshot_due() else None
            )
            fresh = False
            if state.image_psnr_due():
                now = snapshot if snapshot is not None else state.model_with(
                    window.index, own, window.kernels()
                )
                fresh = state.measure_image_psnr(now) is not None
            yield FitEvent(
                phase="tiles", step=state.step, loss=result.loss, psnr=psnr_from_mse(result.mse),
                n_kernels=n_others + window.n_kernels(), elapsed_s=state.clock.now(),
                model=snapshot, tile=t, n_tiles=n_tiles, message=message,
                lr_scale=window.lr_scale, image_psnr=state.last_image_psnr,
                image_psnr_fresh=fresh,
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
        state.outcomes.append(
            TileOutcome((y0, y1, x0, x1), recon, steps, pruned, psnr_from_mse(err))
        )


@dataclass
class _Best:
    mse: float = math.inf
    checkpoint: _Checkpoint | None = None
    kernels: KernelArrays | None = None

    def offer(self, mse: float, checkpoint: _Checkpoint | None) -> None:
        # an equal MSE with a checkpoint replaces a best held without one (the
        # merged model), so that a slide can go back to it
        better = mse < self.mse or (self.checkpoint is None and mse <= self.mse)
        if checkpoint is not None and math.isfinite(mse) and better:
            self.mse = mse
            self.checkpoint = checkpoint
            self.kernels = None

    def result(self) -> KernelArrays | None:
        if self.kernels is None and self.checkpoint is not None:
            self.kernels = KernelArrays(
                *(t.detach().cpu().numpy().astype(np.float64) for t in self.checkpoint.params)
            )
        return self.kernels


def _full_window(state: _FitState, kernels: KernelArrays, budget: int | None = None) -> _Window:
    """A guarded window over the whole image; with ``budget``, pruned kernels are re-placed."""
    return _Window(
        kernels, None, state.image, 0.0, 0.0, state.params, 0.0, state.lr_scale,
        state.device, keep_one=True, guard=True, budget=budget,
    )


#: Fine-tuning's learning rates ramp up linearly over its first steps (Adam's first
#: steps move every parameter by about its rate, whatever its gradient).
FINETUNE_WARMUP_STEPS = 50
#: A fine-tuning step whose whole-image PSNR lies this far below the best so far
#: is a slide (a divergence too slow for the window's 6 dB jump check): training
#: goes back to the best parameters with halved learning rates (dB).
SLIDE_DB = 2.0

def _finetune_phase(
    state: _FitState, window: _Window, best: _Best, deadline: float, outcome: list[str]
) -> Iterator[FitEvent]:
    """Fine-tune the whole model without the penalty; yields one event per step.

    ``outcome`` receives why it ended ("converged", "time", "steps", "stopped",
    "diverged", "exact").
    """
    params = state.params
    # best PSNR after each step since the last re-placement of the least useful kernels
    # (a re-placement starts a new run: its first steps recover what it moved)
    history: list[float] = []
    run_best = best.mse  # the best MSE of this run (best.mse until a re-placement)
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
        # learning-rate warm-up: a fresh Adam moves every parameter by about its
        # learning rate on its first steps, all kernels at once (the whole-image PSNR
        # fell 4 dB after the merge); ramp the rates over FINETUNE_WARMUP_STEPS
        warm = min(1.0, (steps + 1) / FINETUNE_WARMUP_STEPS)
        target_scale = window.lr_scale
        if warm < 1.0:
            window.set_lr_scale(target_scale * warm)
        result = window.step()
        if warm < 1.0:  # back to the target (halved if the step diverged)
            window.set_lr_scale(window.lr_scale / warm)
        steps += 1
        state.step += 1
        best.offer(result.mse, result.before)
        if result.diverged is None and math.isfinite(result.mse):
            run_best = min(run_best, result.mse)
        history.append(psnr_from_mse(run_best))
        message = None
        slid = (
            result.diverged is None and math.isfinite(result.mse) and best.mse > 0.0
            and psnr_from_mse(best.mse) - psnr_from_mse(result.mse) > SLIDE_DB
        )
        back = best.checkpoint if slid else None
        if back is not None and window.rewind(back, best.mse):
            message = slide_message(state.step, psnr_from_mse(result.mse),
                                    psnr_from_mse(best.mse), DIVERGENCE_LR_FACTOR,
                                    window.lr_scale)
        elif result.diverged is not None:
            message = diverged_message("fine-tuning", result.diverged, state.step,
                                       DIVERGENCE_LR_FACTOR, window.lr_scale)
        elif result.pruned:
            message = pruned_message("fine-tuning", result.pruned, params.prune_threshold,
                                     result.pruned_outside, result.replaced)
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
        if (
            back is None and result.diverged is None and not converged
            and replacement_due(steps, params.replace_every, params.replace_share,
                                state.clock.now(), deadline, params.max_steps)
        ):
            n = window.replace_least_useful(round(params.replace_share * window.n_kernels()))
            if n:
                text = replaced_message(state.step, n, params.replace_share)
                message = text if message is None else f"{message}; {text}"
                history.clear()
                run_best = math.inf
                last_drop = steps
        state.lr_scale = window.lr_scale
        snapshot = (window.kernels().to_model(state.height, state.width)
                    if state.snapshot_due() else None)
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
