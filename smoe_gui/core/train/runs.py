"""One fit run -- initialise, train, evaluate -- and its history.

The code path that ``smoe fit``, the experiments, the window's training worker
and the benchmarks share:

* :func:`run_fit` initialises a model (:func:`smoe_gui.core.methods.pipeline.initialize`)
  unless one is given, trains it (:func:`smoe_gui.core.train.training.fit`), renders
  the best model with the exact formula and measures PSNR and SSIM against the
  image.
* :class:`FitHistory` records the :class:`~smoe_gui.core.events.FitEvent`
  stream in one format (step, elapsed_s, phase, psnr_db, n_kernels, tile), with
  views for JSON (:meth:`FitHistory.records`), numpy (:meth:`FitHistory.arrays`)
  and CSV (:meth:`FitHistory.csv_text`).
* :func:`fit_report` turns a :class:`FitResult` into the JSON-ready report of
  ``smoe fit`` (``report.json``).

An exact reconstruction's infinite PSNR is kept as ``math.inf`` here and
written as ``"inf"`` in JSON and ``inf`` in CSV (see :mod:`smoe_gui.core.metrics`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..events import FitEvent, StopToken
from ..metrics import psnr_json
from ..model import SmoeModel
from ..params import METHODS, Params, check_method
from .snapshots import ModelHistory

if TYPE_CHECKING:
    from ..methods.pipeline import Initialization

__all__ = ["HISTORY_COLUMNS", "FitHistory", "FitResult", "fit_report", "run_fit"]

#: Columns of a :class:`FitHistory`, in CSV order.
HISTORY_COLUMNS: tuple[str, ...] = (
    "step", "elapsed_s", "phase", "psnr_db", "n_kernels", "tile", "image_psnr_db",
)

#: ``tile`` column value of events outside the tile phase (in arrays and CSV: -1).
NO_TILE = -1


class FitHistory:
    """The events of one fit, one row per event.

    Columns
    -------
    step : int
        Global step count since the fit started.
    elapsed_s : float
        Training seconds since the fit started (s).
    phase : str
        ``"tiles"``, ``"merge"`` or ``"finetune"``.
    psnr_db : float
        PSNR (dB) of the current tile during ``tiles``, of the whole image from
        ``merge`` on; ``inf`` for an exact reconstruction, NaN for a diverged step.
    n_kernels : int
        Kernels of the whole model at that event.
    tile : int
        Index of the tile during ``tiles``, else -1.
    image_psnr_db : float
        Whole-image PSNR (dB) where measured (``FitEvent.image_psnr``: every
        event from ``merge`` on, every ~0.3 s during ``tiles``), NaN elsewhere.

    Appending is O(1); :meth:`arrays` is cached until the next append.
    """

    def __init__(self) -> None:
        self._step: list[int] = []
        self._elapsed: list[float] = []
        self._phase: list[str] = []
        self._psnr: list[float] = []
        self._kernels: list[int] = []
        self._tile: list[int] = []
        self._image: list[float] = []
        self._arrays: dict[str, NDArray[Any]] | None = None

    # -- building ------------------------------------------------------------------
    def append(self, event: FitEvent) -> None:
        """Add one event."""
        # a carried (not freshly measured) whole-image PSNR is not a point of the curve
        image = event.image_psnr if getattr(event, "image_psnr_fresh", True) else None
        self.add_row(event.step, event.elapsed_s, event.phase, event.psnr, event.n_kernels,
                     event.tile, image)

    def add_row(self, step: int, elapsed_s: float, phase: str, psnr_db: float, n_kernels: int,
                tile: int | None = None, image_psnr_db: float | None = None) -> None:
        """Add one row from its values (``tile`` None or -1 outside the tile phase;
        ``image_psnr_db`` None: ``psnr_db`` outside the tile phase, else NaN)."""
        self._step.append(int(step))
        self._elapsed.append(float(elapsed_s))
        self._phase.append(str(phase))
        self._psnr.append(float(psnr_db))
        self._kernels.append(int(n_kernels))
        self._tile.append(NO_TILE if tile is None else int(tile))
        if image_psnr_db is None:
            image_psnr_db = math.nan if phase == "tiles" else psnr_db
        self._image.append(float(image_psnr_db))
        self._arrays = None

    def extend(self, other: FitHistory | Iterable[FitEvent]) -> None:
        """Add every row of another history, or every event of an iterable."""
        if isinstance(other, FitHistory):
            for row in zip(other._step, other._elapsed, other._phase, other._psnr,
                           other._kernels, other._tile, other._image, strict=True):
                self.add_row(*row)
        else:
            for event in other:
                self.append(event)

    @classmethod
    def from_events(cls, events: Iterable[FitEvent]) -> FitHistory:
        """A history of ``events``."""
        history = cls()
        history.extend(events)
        return history

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> FitHistory:
        """The inverse of :meth:`records` (``psnr_db`` may be ``"inf"`` or null).

        Raises
        ------
        ValueError
            When a record lacks a column or holds a value of the wrong kind.
        """
        history = cls()
        for i, rec in enumerate(records):
            try:
                psnr = rec["psnr_db"]
                whole = rec.get("image_psnr_db", "absent")
                history.add_row(
                    rec["step"], rec["elapsed_s"], rec["phase"],
                    math.nan if psnr is None else float(psnr), rec["n_kernels"], rec.get("tile"),
                    None if whole == "absent" else (math.nan if whole is None else float(whole)),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"history record {i}: bad or missing value ({exc})") from None
        return history

    # -- views ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._step)

    def arrays(self) -> dict[str, NDArray[Any]]:
        """The columns as arrays: ``step, n_kernels, tile`` int64 ``(n,)``,
        ``elapsed_s, psnr_db, image_psnr_db`` float64 ``(n,)``, ``phase`` str ``(n,)``.
        Do not modify them (they are cached)."""
        if self._arrays is None:
            self._arrays = {
                "step": np.asarray(self._step, dtype=np.int64),
                "elapsed_s": np.asarray(self._elapsed, dtype=np.float64),
                "phase": np.asarray(self._phase, dtype=str),
                "psnr_db": np.asarray(self._psnr, dtype=np.float64),
                "n_kernels": np.asarray(self._kernels, dtype=np.int64),
                "tile": np.asarray(self._tile, dtype=np.int64),
                "image_psnr_db": np.asarray(self._image, dtype=np.float64),
            }
        return self._arrays

    def records(self) -> list[dict[str, Any]]:
        """JSON-ready rows: ``elapsed_s`` and ``psnr_db`` rounded to 4 decimals,
        ``psnr_db`` ``"inf"`` for an exact reconstruction and null for NaN,
        ``tile`` null outside the tile phase."""
        return [
            {
                "step": step,
                "elapsed_s": round(elapsed, 4),
                "phase": phase,
                "psnr_db": psnr_json(round(psnr, 4) if math.isfinite(psnr) else psnr),
                "n_kernels": kernels,
                "tile": None if tile == NO_TILE else tile,
                "image_psnr_db": psnr_json(round(whole, 4) if math.isfinite(whole) else whole),
            }
            for step, elapsed, phase, psnr, kernels, tile, whole in zip(
                self._step, self._elapsed, self._phase, self._psnr, self._kernels, self._tile,
                self._image, strict=True,
            )
        ]

    def csv_text(self, label: str | None = None) -> str:
        """The rows as CSV with a header (:data:`HISTORY_COLUMNS`); ``psnr_db``
        is written ``inf`` for an exact reconstruction, ``nan`` for a diverged
        step; ``tile`` is -1 outside the tile phase.  With ``label``, a first
        column ``run`` holds it on every row."""
        head = ",".join(HISTORY_COLUMNS)
        lines = [f"run,{head}" if label is not None else head]
        prefix = f"{label}," if label is not None else ""
        for step, elapsed, phase, psnr, kernels, tile, whole in zip(
            self._step, self._elapsed, self._phase, self._psnr, self._kernels, self._tile,
            self._image, strict=True,
        ):
            lines.append(
                f"{prefix}{step},{elapsed:.4f},{phase},{psnr:.4f},{kernels},{tile},{whole:.4f}"
            )
        return "\n".join(lines) + "\n"

    def thinned(self, points: int) -> FitHistory:
        """At most ``points`` rows, evenly spread, first and last kept.

        Raises
        ------
        ValueError
            For ``points < 2``.
        """
        if points < 2:
            raise ValueError(f"points must be at least 2, got {points}")
        n = len(self)
        if n <= points:
            return self.select(np.arange(n))
        return self.select(np.unique(np.round(np.linspace(0, n - 1, points)).astype(np.int64)))

    def select(self, index: NDArray[np.integer[Any]] | NDArray[np.bool_]) -> FitHistory:
        """A new history of the rows picked by ``index`` (positions or a mask)."""
        idx = np.arange(len(self))[np.asarray(index)]
        out = FitHistory()
        for i in idx.tolist():
            out.add_row(self._step[i], self._elapsed[i], self._phase[i], self._psnr[i],
                        self._kernels[i], self._tile[i], self._image[i])
        return out

    def whole_image(self) -> FitHistory:
        """The rows where the whole image's PSNR was measured (every row from
        ``merge`` on, and the tile-phase rows that measured it), with that
        PSNR as ``psnr_db``."""
        arrays = self.arrays()
        idx = np.flatnonzero((arrays["phase"] != "tiles") | ~np.isnan(arrays["image_psnr_db"]))
        out = FitHistory()
        for i in idx.tolist():
            out.add_row(self._step[i], self._elapsed[i], self._phase[i], self._image[i],
                        self._kernels[i], self._tile[i], self._image[i])
        return out

    def phase_starts(self) -> dict[str, tuple[int, float]]:
        """``phase -> (step, elapsed_s)`` of the first row of each phase."""
        starts: dict[str, tuple[int, float]] = {}
        for step, elapsed, phase in zip(self._step, self._elapsed, self._phase, strict=True):
            starts.setdefault(phase, (step, elapsed))
        return starts

    def __repr__(self) -> str:
        return f"FitHistory({len(self)} rows)"


@dataclass
class FitResult:
    """The outcome of :func:`run_fit`.

    Attributes
    ----------
    model : SmoeModel
        The best model of the fit (lowest whole-image MSE seen).
    final : FitEvent
        The last event of the fit (its ``message`` says why it stopped).
    history : FitHistory
        Every event of the fit.
    init_s : float
        Seconds spent in the initialisation (0 when a model was given).
    interrupted : bool
        Whether the fit was stopped (``stop``) before its budget or convergence.
    messages : list of str
        Messages of the events (divergence, pruning, convergence), in order.
    n_initial : int
        Number of kernels of the initial model.
    reconstruction : (H, W) float32
        ``model`` rendered with the exact formula (:func:`smoe_gui.core.rendering.culled.render`).
    psnr_db : float
        PSNR (dB) of ``reconstruction`` against the image; ``inf`` when exact.
    ssim : float
        SSIM of ``reconstruction`` against the image.
    initial_model : SmoeModel or None
        The model the training started from.
    initialization : Initialization or None
        The stages of the initialisation, when :func:`run_fit` ran it or was
        given one (expert PSNR per iteration, notes).
    snapshots : ModelHistory
        The initial model (step 0) and every model snapshot the events carried
        (see ``snapshot_interval_s`` of :func:`run_fit`), bounded in memory
        (:class:`~smoe_gui.core.train.snapshots.ModelHistory`).
    """

    model: SmoeModel
    final: FitEvent
    history: FitHistory
    init_s: float
    interrupted: bool
    messages: list[str]
    n_initial: int
    reconstruction: NDArray[np.float32]
    psnr_db: float
    ssim: float
    initial_model: SmoeModel | None = None
    initialization: Initialization | None = field(default=None, repr=False)
    snapshots: ModelHistory = field(default_factory=ModelHistory, repr=False)


def run_fit(
    image: NDArray[np.floating[Any]],
    params: Params,
    method: str | None = None,
    *,
    stop: StopToken | None = None,
    on_event: Callable[[FitEvent], None] | None = None,
    init: Initialization | SmoeModel | None = None,
    device: str | None = None,
    snapshot_interval_s: float = math.inf,
) -> FitResult:
    """Initialise, train and evaluate a model of ``image``.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) float array in [0, 1]
        The image; modelled in gray or RGB as ``init``'s experts or, without
        ``init``, ``params.channels`` say (:func:`smoe_gui.core.train.training.fit`).
        PSNR and SSIM are over all channels (:mod:`smoe_gui.core.metrics`).
    params : Params
    method : str, optional
        One of :data:`smoe_gui.core.params.METHODS` (default: the first); used
        when ``init`` is None.
    stop : StopToken, optional
        Set it (from any thread) to stop the training within one step; the best
        model so far is kept and ``interrupted`` is True.
    on_event : callable, optional
        Called with every :class:`~smoe_gui.core.events.FitEvent`, in the
        calling thread.
    init : Initialization or SmoeModel, optional
        Start from this instead of initialising.
    device : str, optional
        Torch device (default CUDA when available, else CPU).
    snapshot_interval_s : float
        Seconds between model snapshots in the events (default: only the
        merge and final events carry a model; a window passes e.g. 0.2); the
        result's ``snapshots`` keeps them.

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        For a bad image, method or parameters (before any work), or from the
        training (see :func:`smoe_gui.core.train.training.fit`).
    """
    from ..methods.pipeline import Initialization, initialize
    from ..metrics import psnr, ssim
    from ..rendering.culled import render
    from .training import fit, fit_input_image

    method = METHODS[0] if method is None else check_method(method)
    img = fit_input_image(image, params, init)  # gray (H, W) or RGB (H, W, 3)
    t0 = time.perf_counter()
    initialization: Initialization | None = None
    if init is None:
        initialization = initialize(img, params, method=method)
        start = initialization.model
    elif isinstance(init, Initialization):
        initialization = init
        start = init.model
    else:
        start = init
    init_s = time.perf_counter() - t0 if init is None else 0.0

    history = FitHistory()
    snapshots = ModelHistory()
    snapshots.add(0, 0.0, "init", start)
    messages: list[str] = []
    final: FitEvent | None = None
    for event in fit(img, params, init=start, method=method, stop=stop, device=device,
                     snapshot_interval_s=snapshot_interval_s):
        history.append(event)
        snapshots.add_event(event)
        if event.message:
            messages.append(event.message)
        if on_event is not None:
            on_event(event)
        if event.final:
            final = event
    if final is None or final.model is None:  # fit always ends with a final event
        raise RuntimeError("the fit ended without a final model")
    reconstruction = render(final.model)
    return FitResult(
        model=final.model,
        final=final,
        history=history,
        init_s=init_s,
        interrupted=stop is not None and stop.stopped,
        messages=messages,
        n_initial=start.n_kernels,
        reconstruction=reconstruction,
        psnr_db=psnr(reconstruction, img),
        ssim=ssim(reconstruction, img),
        initial_model=start,
        initialization=initialization,
        snapshots=snapshots,
    )


def fit_report(
    result: FitResult,
    image: NDArray[np.floating[Any]],
    params: Params,
    method: str,
    image_path: str | bytes | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The JSON-ready report of a fit (``report.json`` of ``smoe fit``).

    Parameters
    ----------
    result : FitResult
    image : (H, W) array
        The image fitted (for its size).
    params : Params
    method : str
    image_path : path-like, optional
        Stored as text shown safely (:func:`smoe_gui.core.errors.show_path`).

    Returns
    -------
    dict
        ``image {path, width, height}, method, channels ("gray" or "rgb"), psnr_db, ssim, n_kernels,
        n_kernels_initial, steps, interrupted, stop_reason, time_budget_s,
        phase_times_s, messages, params_digest, psnr_history``; ``psnr_db`` is
        ``"inf"`` for an exact reconstruction (:func:`smoe_gui.core.metrics.psnr_json`).
        Serialise with ``json.dumps(report, allow_nan=False)``.
    """
    from ..errors import show_path

    height, width = np.shape(image)[:2]
    times = dict(result.final.phase_times_s or {})
    phase_times = {"init": round(result.init_s, 4)}
    phase_times.update({k: round(v, 4) for k, v in times.items()})
    phase_times["total"] = round(result.init_s + result.final.elapsed_s, 4)
    ssim = result.ssim if math.isfinite(result.ssim) else None
    return {
        "image": {
            "path": None if image_path is None else show_path(image_path),
            "width": int(width),
            "height": int(height),
        },
        "method": method,
        "channels": "rgb" if result.model.is_colour else "gray",
        "psnr_db": psnr_json(result.psnr_db),
        "ssim": ssim,
        "n_kernels": result.model.n_kernels,
        "n_kernels_initial": result.n_initial,
        "steps": result.final.step,
        "interrupted": result.interrupted,
        "stop_reason": result.final.message,
        "time_budget_s": params.time_budget,
        "phase_times_s": phase_times,
        "messages": result.messages[-50:],
        "params_digest": params.digest(),
        "psnr_history": result.history.records(),
    }
