"""Storing a sweep: one file set per finished run, resumable records, ``results.csv``.

Qt-free.  Files under the output folder ``out``: ``runs/<run_id>.json`` (the
CSV row, the fit's history as :class:`~smoe_gui.core.train.runs.FitHistory` records,
the initial model's PSNR, the expert-initialisation PSNR per iteration, notes),
``runs/<run_id>.init.npz`` / ``.model.npz`` (initial and final model),
``runs/<run_id>.png`` (the reconstruction), ``results.csv`` and ``sweep.json``
(how the last invocation that ran the sweep ran: machine, workers, threads).  A run is
finished once its JSON exists (written last); a re-run with the same ``out``
skips finished runs whose key (image content hash, method, budget, parameter
hash) matches.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..io import fileio
from ..metrics import psnr_json
from ..model import SmoeModel
from ..train.runs import FitHistory

__all__ = [
    "COLUMNS",
    "HISTORY_POINTS",
    "STORE_FORMAT",
    "SWEEP_FILE",
    "TIMING_COLUMNS",
    "RunOutput",
    "csv_text",
    "finished_keys",
    "load_records",
    "load_sweep",
    "record_key",
    "runs_dir",
    "save_run",
    "save_sweep",
    "stored_history",
]

#: Columns of ``results.csv`` in order.
COLUMNS = (
    "image", "method", "budget", "init_kernels", "final_kernels", "psnr_db", "ssim",
    "converge_s", "init_s", "fit_s", "wall_s", "steps", "time_budget_s", "max_pts",
    "background_spacing", "params_hash", "image_sha", "status", "error", "run_id",
)
#: Columns that hold wall-clock measurements (differ between identical runs).
TIMING_COLUMNS = ("converge_s", "init_s", "fit_s", "wall_s")
#: Largest number of history rows stored per run.
HISTORY_POINTS = 1500
#: Version of the per-run JSON layout; runs stored in another are run again.
#: 2: ``history`` is a :class:`~smoe_gui.core.train.runs.FitHistory`'s records.
STORE_FORMAT = 2
#: File (under the output folder) of the last running invocation's execution settings.
SWEEP_FILE = "sweep.json"


@dataclass(eq=False)
class RunOutput:
    """Everything one run produced.

    Attributes
    ----------
    record : dict
        The CSV row (keys :data:`COLUMNS`); ``psnr_db`` is ``"inf"`` for an
        exact reconstruction.
    history : FitHistory or None
        Every event of the fit (:class:`smoe_gui.core.train.runs.FitHistory`).
    initial_psnr : float
        PSNR (dB) of the initial model (NaN when unknown).
    expert_psnr : list of float
        PSNR after sampling the experts, then after each refinement iteration.
    notes : list of str
        Messages of the initialisation and the fit.
    init_model, final_model : SmoeModel or None
    reconstruction : (H, W) uint8 or None
    host : str
        Machine the run ran on.
    """

    record: dict[str, Any]
    history: FitHistory | None = None
    initial_psnr: float = math.nan
    expert_psnr: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    init_model: SmoeModel | None = None
    final_model: SmoeModel | None = None
    reconstruction: NDArray[np.uint8] | None = None
    host: str = ""


def _json_psnr(value: float) -> float | str | None:
    """A PSNR for JSON: ``"inf"`` when exact, None for NaN, else rounded to 4 decimals."""
    if math.isnan(value):
        return None
    return psnr_json(round(value, 4) if math.isfinite(value) else value)


def stored_history(payload: dict[str, Any]) -> tuple[FitHistory, float]:
    """The fit history and initial-model PSNR (dB, NaN if unknown) of a stored run.

    Raises
    ------
    ValueError
        When the payload holds no readable history.
    """
    history = FitHistory.from_records(payload.get("history") or [])
    initial = payload.get("initial_psnr_db")
    return history, math.nan if initial is None else float(initial)


def runs_dir(out: Path) -> Path:
    """The folder of the per-run files under the output folder ``out``."""
    return out / "runs"


def save_run(out: Path, output: RunOutput) -> None:
    """Write one run's files; the JSON last (its presence marks the run finished)."""
    from ..io.modelio import save_model

    runs = runs_dir(out)
    runs.mkdir(parents=True, exist_ok=True)
    run_id = output.record["run_id"]
    if output.init_model is not None:
        save_model(output.init_model, runs / f"{run_id}.init.npz")
    if output.final_model is not None:
        save_model(output.final_model, runs / f"{run_id}.model.npz")
    if output.reconstruction is not None:
        fileio.write_png(runs / f"{run_id}.png", output.reconstruction)
    history = output.history.thinned(HISTORY_POINTS) if output.history is not None else None
    payload = {
        "format": STORE_FORMAT,
        "record": output.record,
        "history": history.records() if history is not None else [],
        "initial_psnr_db": _json_psnr(output.initial_psnr),
        "expert_psnr": [_json_psnr(p) for p in output.expert_psnr],
        "notes": output.notes,
        "host": output.host,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    fileio.write_text(runs / f"{run_id}.json", json.dumps(payload, indent=1, allow_nan=False) + "\n")


def load_records(out: Path) -> dict[str, dict[str, Any]]:
    """Every stored run under ``out/runs`` by run id (unreadable files are ignored)."""
    runs = runs_dir(out)
    found: dict[str, dict[str, Any]] = {}
    if not runs.is_dir():
        return found
    for path in sorted(runs.glob("*.json")):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            record = payload["record"]
            found[str(record["run_id"])] = payload
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def record_key(record: dict[str, Any]) -> tuple[str, str, int, str]:
    """Resume key of a stored row: image content hash, method, budget, parameter hash."""
    return (str(record["image_sha"]), str(record["method"]), int(record["budget"]), str(record["params_hash"]))


def finished_keys(payloads: Iterable[dict[str, Any]]) -> set[tuple[str, str, int, str]]:
    """Keys of the runs that finished with status ``ok`` in this version's format
    (:data:`STORE_FORMAT`; older runs are run again)."""
    keys = set()
    for payload in payloads:
        record = payload.get("record", {})
        try:
            if record.get("status") == "ok" and payload.get("format") == STORE_FORMAT:
                keys.add(record_key(record))
        except (KeyError, TypeError, ValueError):
            continue
    return keys


def csv_text(rows: Iterable[dict[str, Any]]) -> str:
    """``results.csv`` text for ``rows`` (columns :data:`COLUMNS`)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in COLUMNS})
    return buffer.getvalue()


def save_sweep(out: Path, execution: dict[str, Any]) -> None:
    """Record how the sweep ran (``machine``, ``workers``, ``threads``,
    ``dask_scheduler``, ``elapsed_s``) in ``out/sweep.json``, for a report
    rewritten later from the stored runs."""
    fileio.write_text(out / SWEEP_FILE, json.dumps(execution, indent=1, allow_nan=False) + "\n")


def load_sweep(out: Path) -> dict[str, Any] | None:
    """What :func:`save_sweep` recorded, or None (absent or unreadable)."""
    try:
        data = json.loads((out / SWEEP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
