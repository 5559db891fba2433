"""Curves of a fit over time: the whole-image PSNR curve and the times read off it
(time to converge, first time a PSNR is reached).  Shared by the run records
(:mod:`.run`), the paper's claims (:mod:`.claims`) and the report (:mod:`.report`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..train.runs import FitHistory

__all__ = ["CONVERGE_TOL_DB", "first_time_reaching", "time_to_converge", "whole_image_curve"]

#: Tolerance (dB) of "time to converge" and of "reaches the grid's final PSNR".
CONVERGE_TOL_DB = 0.1

def first_time_reaching(
    times: Sequence[float], psnrs: Sequence[float], target: float
) -> float | None:
    """First time at which ``psnr >= target``, or None if never."""
    for t, p in zip(times, psnrs, strict=True):
        if p >= target:
            return float(t)
    return None


def time_to_converge(
    times: Sequence[float],
    psnrs: Sequence[float],
    final_psnr: float,
    tol_db: float = CONVERGE_TOL_DB,
) -> float:
    """Time at which the PSNR first came within ``tol_db`` of ``final_psnr``.

    Parameters
    ----------
    times : sequence of float
        Seconds since the fit started, ascending.
    psnrs : sequence of float
        PSNR (dB) at those times.
    final_psnr : float
        PSNR of the final model.

    Returns
    -------
    float
        Seconds; the last time if the history never came that close, 0 for an
        empty history.
    """
    if len(times) == 0:
        return 0.0
    t = first_time_reaching(times, psnrs, final_psnr - tol_db)
    return float(times[-1]) if t is None else t


def whole_image_curve(history: FitHistory, initial_psnr: float) -> tuple[list[float], list[float]]:
    """``(seconds, PSNR dB)`` of the whole image over a fit: the initial model's
    PSNR at 0 s (when finite), then every event from the merge on (the tile
    phase reports per-tile PSNR only).  Non-finite PSNRs of diverged steps are
    left out; an exact reconstruction's ``inf`` stays."""
    rows = history.whole_image().arrays()
    times = [0.0] if math.isfinite(initial_psnr) else []
    psnrs = [float(initial_psnr)] if math.isfinite(initial_psnr) else []
    for t, p in zip(rows["elapsed_s"].tolist(), rows["psnr_db"].tolist(), strict=True):
        if not math.isnan(p):
            times.append(float(t))
            psnrs.append(float(p))
    return times, psnrs
