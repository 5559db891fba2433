"""One tuning trial: a full fit per image through the one run path, and its pruning rule.

A trial fits every image of the study with the trial's parameters
(:func:`smoe_gui.core.train.runs.run_fit`: initialise, train, evaluate) and
returns its objectives: the mean PSNR (dB) and SSIM over the images, the mean
final kernel count and the mean seconds per fit (initialisation and training;
the once-per-process compilation of the numba kernels and the final evaluation
are not counted, so the first trial of a worker costs no more than the others).
:func:`run_trial` is a plain function of plain data, so it runs the same in this
process, in a local worker process or on a Dask worker.

Pruning
-------
While it trains, a trial reports the whole-image PSNR at :data:`REPORT_POINTS`
points of each image's time budget (step ``image_index * REPORT_POINTS + k``
at training time ``k / REPORT_POINTS`` of the budget).  A trial is pruned
(stopped, recorded as Optuna's ``PRUNED``) when, at a step past the warm-up,
its PSNR falls below the median of the finished trials at that step (Optuna's
median rule); the medians are taken when the trial starts
(:func:`prune_thresholds`), because the trial may run in another process
without access to the study.
"""

from __future__ import annotations

import math
import statistics
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import one_line
from ..events import FitEvent, StopToken
from ..params import Params

__all__ = [
    "REPORT_POINTS",
    "STARTUP_TRIALS",
    "STOPPED",
    "WARMUP_POINTS",
    "TrialJob",
    "TrialOutput",
    "prune_thresholds",
    "run_trial",
]

#: Points per image at which a trial reports its whole-image PSNR.
REPORT_POINTS = 20
#: Points of each image's budget (from its start) at which no trial is pruned.
WARMUP_POINTS = 6
#: Finished trials needed at a step before the median rule prunes there.
STARTUP_TRIALS = 4
#: The error of a trial that ``stop`` ended (the study runs it again on resume).
STOPPED = "stopped"


@dataclass
class TrialJob:
    """What one trial runs.

    Attributes
    ----------
    number : int
        The Optuna trial number.
    values : dict
        The tuned parameters' values of this trial.
    params : Params
        Every parameter of the fits (``values`` applied).
    method : str
    images : list of (str, ndarray)
        ``(name, (H, W) or (H, W, 3) float32)`` per image.
    thresholds : dict of int to float
        Pruning thresholds by step (dB); empty: never pruned.
    threads : int
        Torch and numba threads (0: leave them).
    keep_model : bool
        Return the first image's trained model.
    error : str
        Why the trial cannot run (its values break a rule of the parameters); it
        then fails at once with this error.
    """

    number: int
    values: dict[str, Any]
    params: Params
    method: str
    images: list[tuple[str, NDArray[np.float32]]]
    thresholds: dict[int, float] = field(default_factory=dict)
    threads: int = 0
    keep_model: bool = True
    error: str = ""


@dataclass
class TrialOutput:
    """What one trial gave.

    Attributes
    ----------
    number : int
    status : str
        ``"ok"``, ``"pruned"`` or ``"failed"``.
    psnr_db, ssim, n_kernels, seconds : float
        Means over the images fitted (dB, 1, kernels, s: initialisation and
        training); NaN when none finished.
    train_s : float
        Training seconds summed over the images (s).
    intermediate : dict of int to float
        Whole-image PSNR (dB) by report step.
    per_image : list of dict
        ``name, psnr_db, ssim, n_kernels, seconds, train_s, init_s`` per image fitted.
    error : str
        One line, for ``"failed"``.
    pruned_step : int or None
        Step at which the trial was pruned.
    model : SmoeModel or None
        The first image's trained model (``keep_model``).
    image_digest : str
        :func:`smoe_gui.core.io.modelio.image_digest` of that image (stored
        with the model); ``""`` without a model.
    wall_s : float
        Seconds the whole trial took in its worker.
    """

    number: int
    status: str = "ok"
    psnr_db: float = math.nan
    ssim: float = math.nan
    n_kernels: float = math.nan
    seconds: float = math.nan
    train_s: float = 0.0
    intermediate: dict[int, float] = field(default_factory=dict)
    per_image: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    pruned_step: int | None = None
    model: Any = None
    image_digest: str = ""
    wall_s: float = 0.0


def report_step(image_index: int, elapsed_s: float, budget_s: float) -> int:
    """The report step of training time ``elapsed_s`` of image ``image_index``."""
    k = int(REPORT_POINTS * elapsed_s / budget_s) if budget_s > 0 else 0
    return image_index * REPORT_POINTS + min(REPORT_POINTS - 1, max(0, k))


def prune_thresholds(finished: Iterable[Mapping[int, float]]) -> dict[int, float]:
    """Median PSNR by step over the ``intermediate`` values of finished trials.

    Steps in each image's warm-up (:data:`WARMUP_POINTS`) and steps with fewer
    than :data:`STARTUP_TRIALS` values are left out.
    """
    by_step: dict[int, list[float]] = {}
    for values in finished:
        for step, value in values.items():
            if math.isfinite(value):
                by_step.setdefault(int(step), []).append(float(value))
    return {
        step: statistics.median(vals)
        for step, vals in sorted(by_step.items())
        if step % REPORT_POINTS >= WARMUP_POINTS and len(vals) >= STARTUP_TRIALS
    }


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def run_trial(job: TrialJob, on_event: Callable[[FitEvent], None] | None = None,
              stop: StopToken | None = None) -> TrialOutput:
    """Fit every image of ``job`` and measure the objectives.

    Never raises for a failing fit (the output says ``"failed"`` with the
    error), except :class:`KeyboardInterrupt`.

    Parameters
    ----------
    job : TrialJob
    on_event : callable, optional
        Called with every fit event (a display in the same process).
    stop : StopToken, optional
        Stops the running fit (within one training step; an initialisation
        runs to its end); the trial is then ``"failed"`` with error
        :data:`STOPPED`.  Pausing it holds the running fit before its next
        training step, and the time held counts neither against the budget nor
        in the ``seconds`` objective.  Pruning stops the trial's fit, never
        ``stop``.
    """
    from ..threads import set_threads
    from ..train.runs import run_fit

    started = time.perf_counter()
    out = TrialOutput(number=job.number)
    if job.error:
        out.status, out.error = "failed", job.error
        return out
    if job.threads > 0:
        set_threads(job.threads)
    budget = float(job.params.time_budget)
    psnrs: list[float] = []
    ssims: list[float] = []
    kernels: list[float] = []
    seconds: list[float] = []
    try:
        for index, (name, image) in enumerate(job.images):
            if stop is not None and stop.stopped:
                out.status, out.error = "failed", STOPPED
                break
            # the fit's own token: pruning stops this fit, never the caller's study;
            # the study's stop, pause and resume reach it at once (StopToken.child)
            token = StopToken() if stop is None else stop.child()
            pruned: list[int] = []

            def watch(event: FitEvent, index: int = index, token: StopToken = token,
                      pruned: list[int] = pruned) -> None:
                if stop is not None and stop.stopped:
                    token.stop()  # the fit checks its token before its next step
                whole = event.image_psnr if event.image_psnr is not None else (
                    event.psnr if event.phase != "tiles" else None)
                if whole is not None and not math.isnan(whole):
                    step = report_step(index, event.elapsed_s, budget)
                    out.intermediate[step] = float(whole)
                    limit = job.thresholds.get(step)
                    if limit is not None and whole < limit and not pruned:
                        pruned.append(step)
                        token.stop()
                if on_event is not None:
                    on_event(event)

            result = run_fit(image, job.params, job.method, stop=token, on_event=watch)
            wall = float(result.init_s + result.final.elapsed_s)
            out.train_s += float(result.final.elapsed_s)
            if pruned:
                out.status, out.pruned_step = "pruned", pruned[0]
                break
            if stop is not None and stop.stopped:
                out.status, out.error = "failed", STOPPED
                break
            psnrs.append(result.psnr_db)
            ssims.append(result.ssim)
            kernels.append(float(result.model.n_kernels))
            seconds.append(wall)
            out.per_image.append({
                "name": name, "psnr_db": result.psnr_db, "ssim": result.ssim,
                "n_kernels": result.model.n_kernels, "seconds": wall,
                "train_s": float(result.final.elapsed_s), "init_s": result.init_s,
            })
            if index == 0 and job.keep_model:
                from ..io.modelio import image_digest

                out.model = result.model
                out.image_digest = image_digest(image)
    except Exception as exc:  # a failing trial is a result, not the end of the study
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, KeyboardInterrupt):
                raise KeyboardInterrupt from exc
            cause = cause.__cause__ or cause.__context__
        out.status = "failed"
        out.error = one_line(exc) or traceback.format_exception_only(exc)[-1].strip()
    out.psnr_db, out.ssim = _mean(psnrs), _mean(ssims)
    out.n_kernels, out.seconds = _mean(kernels), _mean(seconds)
    out.wall_s = time.perf_counter() - started
    return out
