"""The jobs that the application's worker threads run (no Qt here).

Each job calls :mod:`smoe_gui.core` and packs what the views need (images,
drawing geometry) into an immutable result, so the GUI thread only hands arrays
to pyqtgraph.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from ...core.labels import label_boundaries
from ...core.methods.pipeline import Initialization
from ...core.metrics import psnr
from ...core.model import SmoeModel
from ...core.params import Params
from ...core.threads import set_numba_threads
from ...core.train.runs import FitHistory
from .geometry import (
    KernelGeometry,
    ReducedGeometry,
    kernel_geometry,
    reduced_geometry,
    segment_strokes,
)

__all__ = [
    "InspectResult",
    "ProgressBatch",
    "SnapshotResult",
    "StageResult",
    "TrainRun",
    "compute_gate_map",
    "compute_inspection",
    "compute_snapshot",
    "compute_stages",
    "preview_size",
    "training_warmed",
    "warm_up_training",
    "with_numba_threads",
]

T = TypeVar("T")
F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class SnapshotResult:
    """A model made visible: its reconstruction, residual and kernel geometry.

    Attributes
    ----------
    model : SmoeModel
    reconstruction : (H, W) float32, or (H, W, 3) for a colour model
    residual : (H, W) or (H, W, 3) float32
        ``|original - reconstruction|`` (per channel in colour).
    psnr : float
        dB (over all channels in colour: :func:`smoe_gui.core.metrics.psnr`).
    kernels : KernelGeometry
    render_ms : float
        Wall-clock milliseconds of the rendering alone.
    cpu_ms : float
        CPU milliseconds of the calling thread for the whole job (rendering,
        residual, kernel geometry); the live frames are paced by it.
    """

    model: SmoeModel
    reconstruction: F32
    residual: F32
    psnr: float
    kernels: KernelGeometry
    render_ms: float
    cpu_ms: float = float("nan")


@dataclass(frozen=True, eq=False)
class StageResult:
    """Every stage of an initialisation, ready to draw.

    Attributes
    ----------
    init : Initialization
    snapshot : SnapshotResult
        The initial model's reconstruction and kernels.
    segment_strokes : dict θ -> (2n, 2) float64
    reduced : ReducedGeometry
    compute_ms : float
        Wall-clock of the whole job.
    superpixel_bounds : (H, W) uint8 or None
        The segment methods' superpixel boundaries (1 on a boundary,
        :func:`~smoe_gui.core.labels.label_boundaries`); None otherwise.
    """

    init: Initialization
    snapshot: SnapshotResult
    segment_strokes: dict[int, F64]
    reduced: ReducedGeometry
    compute_ms: float
    superpixel_bounds: NDArray[np.uint8] | None = None


@dataclass(frozen=True)
class TrainRun:
    """One fit to run: a label for the curves and the fit's arguments.

    Attributes
    ----------
    label : str
        ``"train"``, or the method's name in a Compare.
    params : Params
    method : str
    init : Initialization or None
        The initialisation drawn in the views when it matches ``params`` and
        ``method`` (the fit then starts from it); None: the fit initialises.
    """

    label: str
    params: Params
    method: str
    init: Initialization | None = None


@dataclass
class ProgressBatch:
    """Fit events of one run, batched for the GUI.

    Attributes
    ----------
    label : str
        The run's label ("train", or the method in a Compare).
    history : FitHistory
        The batch's events (numpy-ready rows: step, elapsed_s, phase, psnr_db,
        n_kernels, tile).
    messages : list of str
        The events' messages.
    n_tiles : int
        Number of tiles of the fit.
    """

    label: str
    history: FitHistory
    messages: list[str] = field(default_factory=list)
    n_tiles: int = 1


def preview_size(height: int, width: int, max_pixels: int | None) -> tuple[int, int]:
    """Output size ``(h, w)`` with at most ``max_pixels`` pixels and the same aspect."""
    if max_pixels is None or height * width <= max_pixels:
        return height, width
    factor = float(np.sqrt(max_pixels / (height * width)))
    return max(1, round(height * factor)), max(1, round(width * factor))


def compute_snapshot(
    image: F32,
    model: SmoeModel,
    method: str | None = None,
    n_pairs: int = 0,
    n_background: int = 0,
    max_pixels: int | None = None,
    reconstruction: F32 | None = None,
    kernel_mode: str = "centres",
    territory_pixels: int | None = None,
) -> SnapshotResult:
    """Render ``model`` and compare it with ``image`` (H, W) or (H, W, 3).

    A colour model (experts (K, 3)) is compared with the image in RGB (a gray
    image as three equal channels), a gray one with its luma.

    With ``max_pixels``, a larger image is rendered as a preview of at most that
    many pixels covering the whole image (live training views); the residual
    is then taken against the area-downscaled image.  The PSNR is the
    preview's.  A full-size ``reconstruction`` already at hand (the
    initialisation's) is used instead of rendering again.

    ``kernel_mode`` (one of :data:`~smoe_gui.ui.control.geometry.KERNEL_MODES`) says what
    the kernel view draws, so only that is computed: the gate shares for
    ``"ellipses"``, the gate territories for ``"territories"`` (on a grid of at
    most ``territory_pixels`` pixels, default: the preview's size).
    """
    import cv2

    from ...core.io.image import as_channels
    from ...core.rendering.culled import render

    cpu0 = time.thread_time()
    h, w = image.shape[:2]
    ph, pw = preview_size(h, w, max_pixels)
    t0 = time.perf_counter()
    if (ph, pw) == (h, w):
        raw = render(model) if reconstruction is None else reconstruction
    else:
        raw = render(model, height=ph, width=pw)
    recon = np.ascontiguousarray(np.clip(raw, 0.0, 1.0), dtype=np.float32)
    ms = (time.perf_counter() - t0) * 1e3
    target = (
        image if (ph, pw) == (h, w) else cv2.resize(image, (pw, ph), interpolation=cv2.INTER_AREA)
    )
    if target.ndim != recon.ndim:
        target = as_channels(target, "rgb" if recon.ndim == 3 else "gray")
    residual = np.ascontiguousarray(np.abs(target - recon), dtype=np.float32)
    quality = psnr(recon, target)
    geometry = kernel_geometry(
        model,
        method,
        n_pairs,
        n_background,
        shares=kernel_mode == "ellipses",
        territory_size=(
            preview_size(h, w, territory_pixels or max_pixels)
            if kernel_mode == "territories"
            else None
        ),
    )
    return SnapshotResult(
        model=model,
        reconstruction=recon,
        residual=residual,
        psnr=quality,
        kernels=geometry,
        render_ms=ms,
        cpu_ms=(time.thread_time() - cpu0) * 1e3,
    )


def compute_stages(
    image: F32,
    params: Params,
    method: str,
    kernel_mode: str = "centres",
    territory_pixels: int | None = None,
) -> StageResult:
    """Run :func:`smoe_gui.core.methods.pipeline.initialize` and prepare every view."""
    from ...core.methods.pipeline import initialize

    t0 = time.perf_counter()
    init = initialize(image, params, method=method)
    n_pairs = len(init.reduced)  # the edge pairs (no reduced segments: none)
    snap = compute_snapshot(
        image,
        init.model,
        method,
        n_pairs,
        int(init.n_background),
        reconstruction=init.reconstruction,
        kernel_mode=kernel_mode,
        territory_pixels=territory_pixels,
    )
    result = StageResult(
        init=init,
        snapshot=snap,
        segment_strokes=segment_strokes(init.segments),
        reduced=reduced_geometry(init.reduced, init.salient, max(2.0, float(params.delta_mu))),
        compute_ms=(time.perf_counter() - t0) * 1e3,
        superpixel_bounds=None
        if init.segment_map is None
        else (label_boundaries(init.segment_map).astype(np.uint8)),
    )
    return result


def with_numba_threads(threads: int, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` with numba's thread count for the calling thread set to
    ``threads`` (numba's setting is per thread, so the training keeps its own)."""
    set_numba_threads(threads)
    return fn(*args)


_warmed = False
#: Held by the one warm-up that runs: windows made one after another (tests,
#: scripts) start a warm-up each, and warm-ups outlive their windows; two at
#: once import torch's compiler stack (its first optimiser) in two threads.
_warm_lock = threading.Lock()


def training_warmed() -> bool:
    """Whether :func:`warm_up_training` has run in this process."""
    return _warmed


def warm_up_training() -> float:
    """Run a tiny fit once per process; returns its seconds (0 when done before).

    The first fit of a process loads numba's compiled training kernels and
    initialises torch's autograd, seconds in all, much of it holding the GIL.
    Done in a worker thread while the user looks at the first stages, it no
    longer stalls the window (nor eats the time budget) after Start.

    Polls the core's work hooks (:mod:`smoe_gui.core.work`) before and after
    the fit and between its steps; the compiling inside the first step cannot
    stop.

    Raises
    ------
    Cancelled
        When the hooks ask to stop (the process is then not marked warmed).
    """
    if _warmed:
        return 0.0
    from ...core.work import current_hooks

    hooks = current_hooks()
    hooks.check()
    while not _warm_lock.acquire(timeout=0.1):  # another warm-up runs: wait for it
        hooks.check()
        if _warmed:
            return 0.0
    try:
        return 0.0 if _warmed else _warm_up_once(hooks)
    finally:
        _warm_lock.release()


def _warm_up_once(hooks: Any) -> float:
    global _warmed
    from ...core.events import StopToken
    from ...core.train.runs import run_fit
    from ...core.work import Cancelled

    t0 = time.perf_counter()
    yy, xx = np.mgrid[0:40, 0:40].astype(np.float32)
    image = np.clip(0.2 + 0.6 * ((xx - 20) ** 2 + (yy - 20) ** 2 < 100) + 0.005 * xx, 0, 1).astype(
        np.float32
    )
    params = Params(
        max_pts=6, expert_iters=1, tile_size=32, tile_steps=2, max_steps=3, time_budget=30.0
    )
    token = StopToken()

    def on_event(_event: object) -> None:
        if hooks.cancelled():
            token.stop()

    run_fit(image, params, stop=token, on_event=on_event, snapshot_interval_s=0.0)
    if hooks.cancelled():
        raise Cancelled("cancelled")
    from ...core.train.video import prepare_export

    prepare_export()  # the first training video then imports nothing (File -> Export)
    _warmed = True
    return time.perf_counter() - t0


def compute_gate_map(model: SmoeModel, index: int) -> tuple[int, F32]:
    """``(index, w_index (H, W) float32)``: the gating weight map of one kernel."""
    from ...core.rendering.inspection import gate_weight_map

    return index, gate_weight_map(model, index)


@dataclass(frozen=True, eq=False)
class InspectResult:
    """One kernel looked at closely.

    Attributes
    ----------
    index : int
    info : smoe_gui.core.rendering.inspection.KernelInfo
    weight_map : (H, W) float32
        ``w_index`` at every pixel of the image.
    outline : (H, W) uint8
        1 on the outline of the kernel's gate territory.
    share : float
        Its gate share (mean of ``weight_map``).
    area : float
        Its territory's area in pixels.
    compute_ms : float
    """

    index: int
    info: Any
    weight_map: F32
    outline: NDArray[np.uint8]
    share: float
    area: float
    compute_ms: float


def compute_inspection(model: SmoeModel, index: int) -> InspectResult:
    """Weight map, territory outline, gate share and territory area of kernel ``index``."""
    from ...core.rendering.inspection import kernel_info
    from ...core.rendering.territories import gate_territories, kernel_weight_map, territory_outline

    t0 = time.perf_counter()
    info = kernel_info(model, index)
    wmap = kernel_weight_map(model, index)
    terr = gate_territories(model)
    inside = terr.label == info.index
    return InspectResult(
        index=info.index,
        info=info,
        weight_map=wmap,
        outline=territory_outline(terr.label, info.index).astype(np.uint8),
        share=float(np.mean(wmap, dtype=np.float64)),
        area=float(np.count_nonzero(inside)) * terr.pixel_area,
        compute_ms=(time.perf_counter() - t0) * 1e3,
    )
