"""Training of an SMoE model as in section III-E of the paper.

The fit runs in three phases and streams :class:`~smoe_gui.core.events.FitEvent`
objects while it runs:

``tiles``
    The image is cut into square tiles of ``tile_size`` pixels.  A kernel
    belongs to the tile that holds its centre.  Tile by tile (row-major), Adam
    minimises ``MSE + reg_weight·(Σ α_i)²`` over the tile's own kernels.  The
    MSE is taken over the tile grown by a band of :func:`loss_band` pixels
    (clipped to the image), rendered with the own kernels *and*, frozen, every
    other kernel of the current model that reaches that window
    (:func:`tile_context`: already trained ones for tiles earlier in the
    order), so their gate shares compete as they will after the merge and α
    stays on one scale across the tiles.  No own kernel may grow wider than
    :func:`max_tile_sigma` (half the band), so what it does to pixels is seen
    by its own loss.  So the own kernels learn to fit in with their neighbours,
    and they pay for any harm they do to the neighbours' pixels: the tiles
    merge without seams, and a tile's interior keeps its reconstruction when
    the later tiles train.  Kernels whose weight ``α = exp(log α)`` falls below
    ``prune_threshold`` are removed as soon as it happens.  The tiles share at
    most :data:`TILE_TIME_SHARE` of the time budget.
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
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..events import FitEvent, StopToken
from ..io.image import as_channels, check_image
from ..metrics import psnr_from_mse
from ..model import SmoeModel
from ..params import METHODS, Params, check_method
from .messages import final_message, merge_message
from .phases import (
    IMAGE_PSNR_INTERVAL_S,
    TILE_TIME_SHARE,
    TileOutcome,
    _Best,
    _Clock,
    _finetune_phase,
    _FitState,
    _full_window,
    _tile_phase,
)
from .tiles import (
    fit_tile_size,
    loss_band,
    max_tile_sigma,
    tile_context,
    tile_index,
    tile_windows,
)
from .window import (
    JUMP_FACTOR,
    MIN_LR_SCALE,
    PRUNE_MAX_SHARE,
    KernelArrays,
    _Window,  # noqa: F401  (benchmarks drive one window)
    prune_kernels,
    resolve_device,
)

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
    "loss_band",
    "max_tile_sigma",
    "tile_context",
    "fit",
    "fit_input_image",
    "prune_kernels",
    "tile_index",
    "tile_windows",
    "train_tiles",
]

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
    model = _initial_model(img, params, model, None)
    torch.manual_seed(params.seed)
    state = _FitState(
        image=img, params=params, device=resolve_device(device), clock=_Clock(), stop=None,
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
                f"the model has {model.n_channels} expert channels; 1 (gray) or 3 (RGB) "
                "are supported"
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
    method: str | None,
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


#: Below this MSE of the float32 training render, the start is checked with the
#: exact float64 formula: a constant image is fitted exactly by its initial model,
#: and float32 rounding alone must not start a training that can only add noise.
_EXACT_GATE_MSE = 1e-12


def _renders_exactly(model: SmoeModel, image: NDArray[np.float32]) -> bool:
    """Whether ``model`` rendered in float64 (:func:`smoe_gui.core.rendering.culled.render`)
    equals ``image`` exactly (after the float32 rounding of a stored image)."""
    from ..rendering.culled import render

    recon = np.asarray(render(model), dtype=np.float32).reshape(image.shape)
    return bool(np.array_equal(recon, image.astype(np.float32)))


def fit(
    image: NDArray[np.floating],
    params: Params,
    init: Initialization | SmoeModel | None = None,
    method: str | None = None,
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
    method : str, optional
        One of :data:`smoe_gui.core.params.METHODS` (default: the first).
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
    method = METHODS[0] if method is None else check_method(method)
    if not (isinstance(snapshot_interval_s, (int, float)) and snapshot_interval_s >= 0):
        raise ValueError(f"snapshot_interval_s must be >= 0, got {snapshot_interval_s!r}")
    img = fit_input_image(image, params, init)
    dev = resolve_device(device)
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
    experts = image[c[:, 1].astype(int), c[:, 0].astype(int)].astype(np.float64)
    model = SmoeModel(mu=c, A=np.tile(np.eye(2) / 6.0, (4, 1, 1)), m=experts,
                      log_alpha=np.zeros(4), height=24, width=24)
    tiny = Params(tile_size=16, tile_steps=2, max_steps=12, time_budget=10.0, patience=4,
                  prune_threshold=1e-3, replace_every=3, replace_share=0.25)
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
        snapshot_interval_s=snapshot_interval_s,
        kernels=KernelArrays(*(a.copy() for a in start.arrays())),
        alive=np.ones(model.n_kernels, dtype=bool), tile_size=tile_size,
    )
    # the starting point is a candidate for the best model (its evaluation is not training time)
    with torch.no_grad():
        start_window = _full_window(state, start)
        start_mse = float(torch.mean((start_window.render() - start_window.target) ** 2))
    del start_window
    if 0.0 < start_mse < _EXACT_GATE_MSE and _renders_exactly(model, image):
        start_mse = 0.0  # float32 rounding, not an error: the exact formula gives the image
    best = _Best()
    if math.isfinite(start_mse):
        best.mse = start_mse
        best.kernels = start
        state.last_image_psnr = psnr_from_mse(start_mse)
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
    n_tile_pruned = model.n_kernels - len(merged)
    window = _full_window(state, merged, budget=model.n_kernels)
    # kernels outside the image that govern nothing go; every kernel pruned is re-placed
    n_outside = window.prune()[1]
    n_replaced = window.replace(model.n_kernels - window.n_kernels())
    merged = window.kernels()
    with torch.no_grad():
        merged_recon = window.render()
        merged_mse = float(torch.mean((merged_recon - window.target) ** 2))
    tiles_psnr = _stitched_psnr(state, merged_recon.detach().cpu().numpy())
    if math.isfinite(merged_mse) and merged_mse < best.mse:
        best.mse = merged_mse
        best.kernels = merged
    state.phase_times["merge"] = clock.now() - state.phase_times["tiles"]
    text = merge_message(
        n_tiles, len(merged), n_tile_pruned + n_outside, tile_size, params.tile_size,
        psnr_from_mse(start_mse), psnr_from_mse(merged_mse), n_replaced,
    )
    yield FitEvent(
        phase="merge", step=state.step, loss=merged_mse, psnr=psnr_from_mse(merged_mse),
        n_kernels=len(merged), elapsed_s=clock.now(),
        model=merged.to_model(state.height, state.width), n_tiles=n_tiles,
        message=text, lr_scale=state.lr_scale, image_psnr=psnr_from_mse(merged_mse),
        tiles_psnr=tiles_psnr,
    )
    state.last_snapshot = clock.now()

    # -- fine-tuning ------------------------------------------------------------------
    start_ft = clock.now()
    step_before_ft = state.step
    outcome: list[str] = []
    if best.mse > 0.0:
        yield from _finetune_phase(state, window, best, deadline=budget, outcome=outcome)
    else:  # an exact start: nothing to train
        outcome.append("exact")
    state.phase_times["finetune"] = clock.now() - start_ft
    reason = outcome[0] if outcome else "stopped"
    last_phase = "finetune" if state.step > step_before_ft else "merge"

    result = best.result()
    if result is None:  # the initial model itself was not finite: cannot happen with a valid init
        raise ValueError("training produced no finite model")
    final_model = result.to_model(state.height, state.width)
    message = final_message(
        reason, budget, params.tol_db, params.patience, params.max_steps, MIN_LR_SCALE,
        psnr_from_mse(start_mse) if result is start else None,
    )
    yield FitEvent(
        phase=last_phase,
        step=state.step, loss=best.mse, psnr=psnr_from_mse(best.mse),
        n_kernels=final_model.n_kernels, elapsed_s=clock.now(), model=final_model,
        n_tiles=n_tiles, message=message, final=True, lr_scale=state.lr_scale,
        phase_times_s=dict(state.phase_times), image_psnr=psnr_from_mse(best.mse),
    )


def _stitched_psnr(state: _FitState, merged: NDArray[np.float32]) -> float | None:
    """PSNR (dB) of the tiles' own reconstructions put together (the merged
    rendering where no tile trained); None when no tile trained."""
    if not state.outcomes:
        return None
    stitched = np.array(merged, dtype=np.float64, copy=True)
    for outcome in state.outcomes:
        y0, y1, x0, x1 = outcome.window
        piece = np.asarray(outcome.reconstruction, dtype=np.float64)
        if piece.ndim == 2 and stitched.ndim == 3:
            piece = piece[..., None]  # a one-channel tile rendering over every channel
        stitched[y0:y1, x0:x1] = piece
    return psnr_from_mse(float(np.mean(np.square(stitched - state.image))))
