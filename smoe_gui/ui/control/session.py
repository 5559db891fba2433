"""The window's session: a Qt-free controller over a view protocol.

A :class:`Session` holds what the user is working on (the image and its
path, the parameters and the initialisation method), the newest stage,
snapshot and weight-map requests (older results are dropped, never drawn),
the training and Compare state, which model views 4-5 show and the inspected
kernel.  It submits work to job queues and trainers it is given and tells a
:class:`SessionView` what to draw; it never imports Qt, so it is tested with
fakes (``tests/test_session.py``), as ndv's ``ArrayViewer`` controller is.

The window (:mod:`smoe_gui.ui.main_window`) implements :class:`SessionView`
and wires widgets and worker threads to the session.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ...core import registry
from ...core.methods.pipeline import Initialization
from ...core.model import SmoeModel
from ...core.params import METHODS, Params
from ...core.rendering.inspection import KernelInfo, kernel_info, nearest_kernel
from ...core.train.messages import status_line
from ...core.train.runs import FitResult
from .geometry import KERNEL_MODES
from .jobs import (
    InspectResult,
    ProgressBatch,
    SnapshotResult,
    StageResult,
    TrainRun,
    compute_inspection,
    compute_snapshot,
    compute_stages,
    with_numba_threads,
)
from .pacing import LiveFrames
from .points import TrainingPoint
from .ports import JobQueue, SessionView, Trainer, TrainerFactory

__all__ = [
    "CAPTION_INTERVAL_S",
    "COMPARE_METHODS",
    "OVERLAY_INTERVAL_S",
    "RENDER_THREADS",
    "JobQueue",
    "Session",
    "SessionView",
    "TrainRun",
    "Trainer",
    "TrainingPoint",
    "compare_pair",
    "stage_summary",
    "view_captions",
]

#: While training, the kernel overlay (thousands of ellipses) is redrawn at
#: most this often (less often when it costs more, :mod:`~smoe_gui.ui.control.pacing`);
#: the reconstruction under it at every live frame.
OVERLAY_INTERVAL_S = 0.3
#: While training, the views' titles ("… · training · step 340 · K=1290") change
#: at most this often: a new title lays the view out and paints it again.
CAPTION_INTERVAL_S = 1.0
#: Numba threads of the live preview renderer (the training keeps the other cores).
RENDER_THREADS = 1
#: What Compare trains by default, one after the other: the edge-aligned
#: initialisation (first in METHODS) and the grid baseline it is compared with
#: in the paper.  The window's "vs" selector picks the second method.
COMPARE_METHODS: tuple[str, ...] = tuple(METHODS[:2])


def compare_pair(method: str, partner: str) -> tuple[str, str]:
    """The two methods a Compare trains: ``method`` (the selected one), then
    ``partner``; when both are the same, the partner is the edge method (or,
    for edge, the grid baseline), so that two different runs are compared."""
    if partner != method:
        return method, partner
    return method, (COMPARE_METHODS[0] if method != COMPARE_METHODS[0] else COMPARE_METHODS[1])


def view_captions(method: str, stages: str, n_superpixels: int = 0) -> dict[str, str]:
    """Captions of views 1-3 for a result of ``method``: ``stages`` (e.g.
    "s-smoe stages"), or what the view shows instead / that it has no meaning
    for the method (each method's ``caption``, :class:`smoe_gui.core.registry.Method`)."""
    counts = {"superpixels": int(n_superpixels)}
    caption = getattr(registry.get(method), "caption", None)
    views = ("edges", "segments", "reduced")
    if caption is None:  # a method without captions of its own
        return dict.fromkeys(views, stages)
    return {name: caption(name, stages, counts) for name in views}


def stage_summary(result: StageResult, draw_ms: float) -> tuple[str, str]:
    """Status-bar texts of a stage result: the counts and the timings (ms) of
    each stage of its method (:data:`smoe_gui.core.methods.pipeline.STAGES_BY_METHOD`)."""
    init = result.init
    colour = " · colour (RGB)" if init.image.ndim == 3 else ""
    summary_text = getattr(registry.get(init.method), "summary_text", None)
    own = (  # the method's own counts
        summary_text(init) if summary_text is not None
        else f"{init.method}: kernels {init.model.n_kernels:,}"
    )
    counts = f"{own} · init PSNR {result.snapshot.psnr:.2f} dB{colour}"
    timings = dict(init.timings_ms)
    timings["render"] = result.snapshot.render_ms
    times = (
        "ms: " + " · ".join(f"{k} {v:.0f}" for k, v in timings.items()) + f" · draw {draw_ms:.0f}"
    )
    return counts, times


class Session:
    """The state of one window and the rules that change it.

    Parameters
    ----------
    view : SessionView
    stage_jobs, render_jobs, inspect_jobs : JobQueue
        Where stage recomputation, model rendering and weight maps run.
    frame_jobs : JobQueue, optional
        Where a training's live frames render (default ``render_jobs``; the
        window gives them a thread below the training's CPU priority).
    start_trainer : callable
        ``start_trainer(image, runs) -> Trainer``.
    params : Params
    method : str
    clock : callable
        Seconds (monotonic); tests pass a fake.
    cpu_clock : callable
        CPU seconds of the calling (GUI) thread, what drawing a live frame
        costs (default ``time.thread_time``).

    Attributes
    ----------
    source_image : (H, W) or (H, W, 3) float32 or None
        The image as opened (a colour file keeps its colours, so the
        Gray/Colour switch never reloads it).
    image : (H, W) or (H, W, 3) float32 or None
        What the model is made of: ``source_image`` as ``params.channels``
        says (:func:`smoe_gui.core.io.image.as_channels`; the luma for gray).
    compare_with : str
        The second method of a Compare (default grid; see :func:`compare_pair`).
    image_path : Path or None
    params : Params
    method : str
    stage_result : StageResult or None
        The newest stage result drawn.
    shown_model : SmoeModel or None
        The model views 4-5 show (initial, training snapshot, trained or loaded).
    selected_kernel : int or None
    kernel_mode : str
        What view 4 draws (:data:`~smoe_gui.ui.control.geometry.KERNEL_MODES`); the
        gate shares and territories are computed only for the mode shown.
    stages_caption, model_caption : str
        Which result views 1-3 and views 4-5 show ("edge · initial · K=1873",
        "grid · trained · 2400 steps · K=1290", …).
    dropped_results : int
        Stale results dropped so far.
    live_frames : LiveFrames
        The pace of a training's live frames in views 4-5.
    train_labels : tuple of str
        Labels of the runs of the current (or last) training.
    train_params : (Params, str) or None
        Parameters and method the current training started with.
    """

    def __init__(
        self,
        view: SessionView,
        stage_jobs: JobQueue,
        render_jobs: JobQueue,
        inspect_jobs: JobQueue,
        start_trainer: TrainerFactory,
        params: Params | None = None,
        method: str = METHODS[0],
        clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] = time.thread_time,
        frame_jobs: JobQueue | None = None,
    ) -> None:
        self.view = view
        self._stage_jobs = stage_jobs
        self._render_jobs = render_jobs
        self._frame_jobs = render_jobs if frame_jobs is None else frame_jobs
        self._inspect_jobs = inspect_jobs
        self._start_trainer = start_trainer
        self._clock = clock
        self._cpu_clock = cpu_clock  # the GUI thread's CPU seconds: what drawing a frame costs
        self.image: NDArray[np.float32] | None = None
        self.source_image: NDArray[np.float32] | None = None
        self.compare_with = COMPARE_METHODS[1]
        self.image_path: Path | None = None
        self.params = params if params is not None else Params()
        self.method = method
        self.stage_result: StageResult | None = None
        self.shown_model: SmoeModel | None = None
        self.selected_kernel: int | None = None
        self.kernel_mode = "ellipses"
        self.stages_caption = ""
        self.model_caption = ""
        self.dropped_results = 0
        self.train_labels: tuple[str, ...] = ()
        self.train_params: tuple[Params, str] | None = None
        self.closing = False
        self._next_id = 0
        self._latest_stage = -1
        self._latest_snapshot = -1
        self._drawn_snapshot = -1
        self._final_snapshot = -1
        self._lost_snapshot = -1  # the newest request, when it ended without a result
        self._latest_gate = -1
        self._result_model: SmoeModel | None = None  # trained or loaded: shown in views 4-5
        self._result_snapshot: SnapshotResult | None = None
        self._final_models: dict[str, SmoeModel] = {}
        self._final_results: dict[str, FitResult] = {}
        self._last_points: dict[str, TrainingPoint] = {}
        self._last_image_psnr: dict[str, float] = {}  # whole-image PSNR per run label
        self._trainer: Trainer | None = None
        self._restart_after_stop = False
        self._overlay_jobs: set[int] = set()
        #: How often a training's live frames are drawn (:mod:`~smoe_gui.ui.control.pacing`).
        self.live_frames = LiveFrames(OVERLAY_INTERVAL_S)
        self._pending_frame: tuple[str, SmoeModel] | None = None  # the newest snapshot waiting
        self._caption_at = -np.inf
        #: Called with True when a stage request starts and False when the newest
        #: one is drawn or failed: the window's Tune panel holds its study meanwhile.
        self.busy_listeners: list[Callable[[bool], None]] = []

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # ------------------------------------------------------------------ image and parameters
    def set_image(self, image: NDArray[np.float32], path: Path | None = None) -> int:
        """Show ``image`` (H, W) or (H, W, 3) and recompute every stage; returns
        the request id.  A running training is stopped first."""
        self.stop_training_and_wait()
        self.source_image = np.ascontiguousarray(image, dtype=np.float32)
        self.image = self._channels_image()
        self.image_path = path
        self._clear_results()
        return self.recompute()

    def _channels_image(self) -> NDArray[np.float32]:
        """``source_image`` as ``params.channels`` says (gray: (H, W); rgb: (H, W, 3))."""
        from ...core.io.image import as_channels

        src = self.source_image
        assert src is not None
        if (src.ndim == 2) == (self.params.channels == "gray"):
            return src
        return as_channels(src, self.params.channels)

    def _sync_channels(self) -> bool:
        """Make ``image`` follow ``params.channels`` (the Gray/Colour switch);
        returns whether it changed (the views then start again from it)."""
        if self.source_image is None or self.image is None:
            return False
        if (self.image.ndim == 3) == (self.params.channels == "rgb"):
            return False
        self.image = self._channels_image()
        self._clear_results()
        return True

    def _clear_results(self) -> None:
        assert self.image is not None
        self.stage_result = None
        self._result_model = None
        self._result_snapshot = None
        self.shown_model = None
        self._latest_snapshot = -1
        self._latest_gate = -1
        self.selected_kernel = None
        self.stages_caption = self.model_caption = ""  # the view clears its titles with the image
        self.view.show_image(self.image, self.image_path)

    def conflicts_with_training(self, params: Params, method: str) -> bool:
        """Whether ``(params, method)`` differ from those the running training uses."""
        return (
            self.is_training()
            and self.train_params is not None
            and (params, method) != self.train_params
        )

    def restart_training_with(self, params: Params, method: str) -> None:
        """Stop the running training; once it has ended, start again with ``params``."""
        self.params, self.method = params, method
        self._restart_after_stop = True
        self.stop_training()

    def set_params(self, params: Params, method: str, affects_stages: bool = True) -> bool:
        """Adopt ``params`` and ``method``; returns whether the stages must be
        recomputed (a trained or loaded model then no longer matches them)."""
        self.params, self.method = params, method
        self.select_kernel(None)  # what the inspection said no longer holds
        if self._sync_channels():
            return True
        if not affects_stages:
            return False
        self._result_model = None
        self._result_snapshot = None
        return self.image is not None

    # ------------------------------------------------------------------ stages
    @property
    def latest_request(self) -> int:
        """Id of the newest stage request."""
        return self._latest_stage

    def recompute(self) -> int:
        """Recompute every stage off the GUI thread; returns the request id
        (-1 without an image).  Results of older requests are dropped."""
        if self.image is None:
            return -1
        self._sync_channels()
        rid = self._new_id()
        self._latest_stage = rid
        self._notify_busy(True)
        self._stage_jobs.submit(rid, compute_stages, self.image, self.params, self.method,
                                self.kernel_mode, self.view.preview_pixels())
        return rid

    def _notify_busy(self, busy: bool) -> None:
        for listener in list(self.busy_listeners):
            listener(busy)

    def stage_done(self, rid: int, result: StageResult | None) -> bool:
        """A stage job ended; returns whether its result was drawn."""
        if rid != self._latest_stage or self.closing or result is None:
            self.dropped_results += 1
            if rid == self._latest_stage:
                self._notify_busy(False)
            return False
        self.stage_result = result
        snap = self._result_snapshot
        self.shown_model = snap.model if snap is not None else result.snapshot.model
        self.selected_kernel = None
        self._latest_gate = -1
        self.view.show_stages(rid, result, snap)
        init = result.init
        self._set_captions(f"{init.method} stages", self.model_caption if snap is not None
                           else f"{init.method} · initial · K={result.snapshot.model.n_kernels}")
        self._notify_busy(False)
        return True

    def _set_captions(self, stages: str, model: str) -> None:
        self.stages_caption, self.model_caption = stages, model
        self.view.show_captions(stages, model)

    def set_kernel_mode(self, mode: str) -> int:
        """Draw view 4 as ``mode``; the shown model is drawn again with what the
        mode needs (gate shares, territories).  Returns the render request id
        (-1 when nothing is shown or a running training will send the next
        frame, which then carries the overlay).  A paused training sends no
        frames: its newest model is drawn in the new mode at once."""
        if mode not in KERNEL_MODES:
            raise ValueError(f"unknown kernel view mode {mode!r}; expected one of {KERNEL_MODES}")
        self.kernel_mode = mode
        if self.image is None or self.shown_model is None:
            return -1
        if self.is_training() and not self.is_paused():
            self.live_frames.overlay_now()
            return -1
        waiting = self._pending_frame if self.is_training() else None  # newer than the shown
        return self._request_render(waiting[1] if waiting else self.shown_model, final=True)

    def stage_failed(self, rid: int, message: str) -> bool:
        """A stage job failed; returns whether it was the newest (and reported)."""
        if rid != self._latest_stage:
            return False
        self._notify_busy(False)
        self.view.show_status(f"Cannot compute the stages: {message}")
        return True

    def matching_init(self, params: Params, method: str) -> Initialization | None:
        """The drawn initialisation when it was made from this image, ``params`` and ``method``."""
        r = self.stage_result
        if r is None:
            return None
        init = r.init
        if init.params == params and init.method == method and init.image is self.image:
            return init
        return None

    # ------------------------------------------------------------------ models
    def model_to_save(self) -> SmoeModel | None:
        """The trained or loaded model, else the initial model."""
        if self._result_model is not None:
            return self._result_model
        return self.stage_result.snapshot.model if self.stage_result is not None else None

    def check_model_fits(self, model: SmoeModel, name: str) -> None:
        """Raise ValueError (one line) unless ``model`` fits the open image."""
        if self.image is None:
            raise ValueError("Open the image the model was made for first.")
        h, w = self.image.shape[:2]
        if (model.height, model.width) != (h, w):
            raise ValueError(
                f"{name} models a {model.width}×{model.height} image, but the open image is "
                f"{w}×{h}. Open the image it was made for first."
            )

    def show_model(self, model: SmoeModel) -> int:
        """Show a loaded model in views 4-5 (stops training); returns the render request id."""
        self.check_model_fits(model, "the model")
        self.stop_training_and_wait()
        self._result_model = model
        self._result_snapshot = None
        self._set_captions(self.stages_caption, f"loaded model · K={model.n_kernels}")
        return self._request_render(model)

    def _request_render(self, model: SmoeModel, final: bool = False,
                        reconstruction: NDArray[np.float32] | None = None) -> int:
        assert self.image is not None
        rid = self._new_id()
        self._latest_snapshot = rid
        self.live_frames.superseded()  # this render replaces the live frame in flight
        self._pending_frame = None
        if final:
            self._final_snapshot = rid
        method, n_pairs, n_background = None, 0, 0
        r = self.stage_result
        if r is not None and model is r.snapshot.model:  # the initial model: its kinds of kernel
            method = r.init.method
            n_pairs = len(r.init.reduced)  # the edge pairs (no reduced segments: none)
            n_background = int(r.init.n_background)
            reconstruction = r.snapshot.reconstruction if reconstruction is None else reconstruction
        self._render_jobs.submit(
            rid,
            compute_snapshot,
            self.image,
            model,
            method,
            n_pairs,
            n_background,
            None,
            reconstruction,
            self.kernel_mode,
            self.view.preview_pixels(),
        )
        return rid

    def render_pending(self) -> bool:
        """Whether the newest model render (a kernel-mode change, a run's
        final model, a loaded model) has not been drawn yet (nor failed)."""
        latest = self._latest_snapshot
        return latest > self._drawn_snapshot and latest != self._lost_snapshot

    def snapshot_failed(self, rid: int, message: str) -> bool:
        """A render or live-frame job failed (the view shows ``message``); the next
        live frame may go.  Returns whether it was the newest request."""
        self.snapshot_done(rid, None)
        return rid == self._lost_snapshot

    def snapshot_done(self, rid: int, snap: SnapshotResult | None) -> bool:
        """A render job ended (``snap`` None: failed, cancelled); returns if it was drawn."""
        if snap is None and rid == self._latest_snapshot:
            self._lost_snapshot = rid
        if rid != self._latest_snapshot or self.closing or snap is None:
            self.dropped_results += 1
            if self.live_frames.done(rid, math.nan, False):
                self._submit_frame()
            return False
        cpu0 = self._cpu_clock()
        carried = rid in self._overlay_jobs  # a live frame rendered for the overlay
        overlay = rid == self._final_snapshot or not self.is_training() or carried
        self._overlay_jobs.clear()
        self._drawn_snapshot = rid
        changed = self.shown_model is not snap.model
        self.shown_model = snap.model
        if self._result_model is snap.model:
            self._result_snapshot = snap
        self.view.show_snapshot(rid, snap, overlay)
        if changed:
            self.view.refresh_hover()
            k = self.selected_kernel
            if k is not None and overlay:  # the inspected kernel, in the model shown now
                self.select_kernel(k if k < snap.model.n_kernels else None)
        cost = snap.cpu_ms / 1e3 + (self._cpu_clock() - cpu0)  # the job's and the drawing's
        if self.live_frames.done(rid, cost, carried):
            self._submit_frame()  # a newer snapshot may be waiting
        return True

    # ------------------------------------------------------------------ inspection
    def kernel_near(self, x: float, y: float, radius: float) -> tuple[int, KernelInfo] | None:
        """The shown model's kernel whose centre is nearest ``(x, y)`` within
        ``radius`` (px), with its numbers; None when there is none."""
        model = self.shown_model
        if model is None:
            return None
        k = nearest_kernel(model, x, y, radius)
        return None if k is None else (k, kernel_info(model, k))

    def select_kernel(self, kernel: int | None) -> int:
        """Inspect ``kernel`` (its weight map, territory, gate share: computed
        off the GUI thread), or clear the inspection (None); returns the
        request id (-1 when cleared)."""
        self.selected_kernel = kernel
        if kernel is None or self.shown_model is None:
            self.selected_kernel = None
            self._latest_gate = -1
            self.view.show_inspection(None)
            return -1
        rid = self._new_id()
        self._latest_gate = rid
        self._inspect_jobs.submit(rid, compute_inspection, self.shown_model, kernel)
        return rid

    def gate_done(self, rid: int, result: InspectResult | None) -> bool:
        """An inspection job ended; returns whether it was drawn."""
        if rid != self._latest_gate or self.closing or result is None:
            return False
        if self.image is None or result.weight_map.shape != self.image.shape[:2]:
            return False
        self.view.show_inspection(result)
        return True

    def partner_of(self, kernel: int) -> int | None:
        """The other kernel of ``kernel``'s edge pair in the shown model, when
        it is the initial edge model (training renumbers kernels)."""
        r = self.stage_result
        if r is None or self.shown_model is not r.snapshot.model:
            return None
        partner = r.snapshot.kernels.partner
        if not 0 <= kernel < len(partner) or partner[kernel] < 0:
            return None
        return int(partner[kernel])

    def kernel_kind(self, kernel: int) -> str:
        """What kernel ``kernel`` of the shown model is (a category of
        :data:`~smoe_gui.ui.control.geometry.KERNEL_CATEGORIES`): the kind its
        initialisation made it when the initial model is shown (whatever the
        method), else "trained" (a training snapshot, a trained or loaded model)."""
        r = self.stage_result
        if r is None or self.shown_model is not r.snapshot.model:
            return "trained"
        return r.snapshot.kernels.category_of(kernel)

    # ------------------------------------------------------------------ Compare
    def compared_labels(self) -> tuple[str, ...]:
        """Labels of the finished runs of the last Compare (empty before one)."""
        return tuple(label for label in self.train_labels
                     if label in METHODS and label in self._final_results)

    def forget_compare(self) -> bool:
        """Another method was chosen: the last Compare's runs no longer belong
        to what is shown (their curves, status and run selector go); returns
        whether there was one.  Nothing changes during a training."""
        if self.is_training() or not self.compared_labels():
            return False
        self.train_labels = ()
        return True

    def compare_methods(self) -> tuple[str, str]:
        """The two methods the next Compare trains (:func:`compare_pair`)."""
        return compare_pair(self.method, self.compare_with)

    def show_run(self, label: str) -> int:
        """Show the final model of run ``label`` of the last Compare (or
        training) in views 4-5; returns the render request id.

        Raises
        ------
        ValueError
            When there is no finished run called ``label``.
        """
        result = self._final_results.get(label)
        if result is None:
            raise ValueError(f"there is no finished run {label!r}")
        self._result_model = result.model
        self._result_snapshot = None
        self._set_captions(self.stages_caption, self._trained_caption(label, result))
        return self._request_render(result.model, final=True, reconstruction=result.reconstruction)

    def final_result(self, label: str) -> FitResult | None:
        """The whole result of the last run called ``label``."""
        return self._final_results.get(label)

    def _run_name(self, label: str) -> str:
        if label in METHODS:
            return label
        return self.train_params[1] if self.train_params is not None else self.method

    def _trained_caption(self, label: str, result: FitResult) -> str:
        point = self._last_points.get(label)
        steps = f" · {point.step} steps" if point is not None else ""
        return f"{self._run_name(label)} · trained{steps} · K={result.model.n_kernels}"

    # ------------------------------------------------------------------ training
    @property
    def trainer(self) -> Trainer | None:
        """The running training, if any."""
        return self._trainer

    def is_training(self) -> bool:
        """Whether a training or Compare run is in progress."""
        return self._trainer is not None and self._trainer.is_running()

    def is_paused(self) -> bool:
        return self._trainer is not None and self._trainer.paused

    def final_model(self, label: str) -> SmoeModel | None:
        """The final model of the last run called ``label`` ("train", or a method in a Compare)."""
        return self._final_models.get(label)

    def last_point(self, label: str) -> TrainingPoint | None:
        """The last progress point of run ``label``."""
        return self._last_points.get(label)

    def start_training(self, compare: bool = False) -> bool:
        """Train from the current initialisation, or (``compare``) the two
        methods of :meth:`compare_methods` one after the other with the same
        parameters; returns whether it started.  Raises ValueError without an
        image."""
        if self.is_training():
            return False
        if self.image is None:
            raise ValueError("Open an image first.")
        if self._sync_channels():
            self.recompute()
        params = self.params
        if compare:
            runs = self._compare_runs(params)
        else:
            runs = [TrainRun("train", params, self.method, self.matching_init(params, self.method))]
        self._final_models = {}
        self._final_results = {}
        self._last_points = {}
        self._last_image_psnr = {}
        self.select_kernel(None)  # a new run: the inspection no longer holds
        self.train_labels = tuple(r.label for r in runs)
        self.train_params = (params, self.method)
        self.live_frames.reset()
        self._pending_frame, self._caption_at = None, -np.inf
        self._trainer = self._start_trainer(self.image, runs)
        self.view.show_training_state("")
        return True

    def _compare_runs(self, params: Params) -> list[TrainRun]:
        """The two fits of a Compare at equal kernel budgets: with a budget
        (``params.n_kernels > 0``) both plan for it; without one the second
        method plans for the first one's kernel count (a method's own count can
        differ several-fold: edge 1,373 against S-SMoE 310 on parrots)."""
        first, second = self.compare_methods()
        init = self.matching_init(params, first)
        partner = params
        if params.n_kernels == 0:
            count = init.n_kernels if init is not None else 0
            if count > 0:
                partner = params.replace(n_kernels=count)
        return [
            TrainRun(first, params, first, init),
            TrainRun(second, partner, second, self.matching_init(partner, second)),
        ]

    def toggle_pause(self) -> None:
        """Pause a running training, or resume a paused one."""
        trainer = self._trainer
        if trainer is None or not self.is_training():
            return
        if trainer.paused:
            trainer.resume()
            self.view.show_training_state("resumed")
        else:
            trainer.pause()
            self.view.show_training_state("paused")

    def stop_training(self) -> None:
        """Ask the fit to stop within one step; the best model so far is kept."""
        if self._trainer is not None:
            self._trainer.stop()
            self.view.show_training_state("stopping…")

    def stop_training_and_wait(self) -> None:
        """Stop a running training, wait for its thread, and handle what it posted."""
        if self._trainer is not None:
            self._restart_after_stop = False
            self._trainer.stop_and_wait()
            self.drain_training()
            self._trainer = None
            self._training_ended()

    def training_thread_finished(self, trainer: Trainer) -> None:
        """The thread of ``trainer`` has finished (ignored unless it is the current one)."""
        if trainer is not self._trainer:
            return  # a run already stopped and waited for (new image, closing)
        self.drain_training()
        self._trainer = None
        trainer.wait()  # never drop the last reference to a running thread
        self._training_ended()

    def drain_training(self) -> None:
        """Handle every message the trainer has posted."""
        if self._trainer is None:
            return
        for kind, *payload in self._trainer.drain():
            getattr(self, f"_on_{kind}")(*payload)

    def _on_run_started(self, label: str) -> None:
        self.view.show_progress(label, f"{label}: starting…", None)

    def _on_progress(self, batch: ProgressBatch) -> None:
        if self._trainer is None or batch.label not in self.train_labels:
            return
        if len(batch.history):
            a = batch.history.arrays()
            budget = self.train_params[0].time_budget if self.train_params else None
            self._last_points[batch.label] = TrainingPoint(
                int(a["step"][-1]), float(a["psnr_db"][-1]), int(a["n_kernels"][-1]),
                float(a["elapsed_s"][-1]), budget)
        self.view.show_progress(batch.label, self.progress_text(batch), batch)

    def progress_text(self, batch: ProgressBatch) -> str:
        """The training status line for the last event of ``batch``."""
        if not len(batch.history):
            return ""
        a = batch.history.arrays()
        whole = a["image_psnr_db"][~np.isnan(a["image_psnr_db"])]  # the headline: whole image
        if len(whole):
            self._last_image_psnr[batch.label] = float(whole[-1])
        phase, tile = str(a["phase"][-1]), int(a["tile"][-1])
        budget = self.train_params[0].time_budget if self.train_params else None
        return f"{batch.label}: " + status_line(
            phase, int(a["step"][-1]), self._last_image_psnr.get(batch.label),
            int(a["n_kernels"][-1]), float(a["elapsed_s"][-1]), budget,
            tile=tile if tile >= 0 else None, n_tiles=batch.n_tiles,
            tile_psnr=float(a["psnr_db"][-1]), separator=" · ",
        ) + (" · paused" if self.is_paused() else "")

    def _on_snapshot(self, label: str, model: SmoeModel) -> None:
        if self.image is None or (model.height, model.width) != self.image.shape[:2]:
            return
        self._pending_frame = (label, model)  # a newer snapshot replaces a waiting one
        self._submit_frame()

    def _submit_frame(self) -> None:
        """Render the waiting snapshot as a live frame when the pace allows
        (:class:`~smoe_gui.ui.control.pacing.LiveFrames`: one in flight, spaced by
        what frames cost)."""
        now = self._clock()
        if self._pending_frame is None or self.closing or not self.live_frames.due(now):
            return
        (label, model), self._pending_frame = self._pending_frame, None
        rid = self._new_id()
        self._latest_snapshot = rid
        if now - self._caption_at >= CAPTION_INTERVAL_S:  # a new title lays the view out anew
            self._caption_at = now
            point = self._last_points.get(label)
            step = f" · step {point.step}" if point is not None else ""
            self._set_captions(self.stages_caption,
                               f"{self._run_name(label)} · training{step} · K={model.n_kernels}")
        preview = self.view.preview_pixels()
        # a frame drawn without the overlay needs no gate shares or territories
        # (the render job's dearest part)
        mode = "centres"
        overlay = self.live_frames.overlay_due(now)
        if overlay:
            mode = self.kernel_mode
            self._overlay_jobs.add(rid)
        self.live_frames.submitted(rid, now, overlay)
        self._frame_jobs.submit(
            rid, with_numba_threads, RENDER_THREADS, compute_snapshot,
            self.image, model, None, 0, 0, preview, None, mode, preview,
        )

    def _on_run_finished(self, label: str, result: FitResult) -> None:
        model = result.model
        self._final_models[label] = model
        self._final_results[label] = result
        self._result_model = model
        self._result_snapshot = None
        self._set_captions(self.stages_caption, self._trained_caption(label, result))
        if self.image is not None and (model.height, model.width) == self.image.shape[:2]:
            self._request_render(model, final=True, reconstruction=result.reconstruction)

    def _on_failed(self, message: str) -> None:
        self.view.show_error("Training failed", message)

    def _training_ended(self) -> None:
        points = [
            self._last_points[label].text(label)
            for label in self.train_labels
            if label in self._last_points
        ]
        self.view.training_ended("done — " + " · ".join(points) if points else "")
        if self._restart_after_stop and not self.closing:
            self._restart_after_stop = False
            self.start_training()

    def close(self) -> None:
        """Stop training and drop every later result (the window is closing)."""
        self.closing = True
        self.stop_training_and_wait()
