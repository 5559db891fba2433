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
from collections.abc import Callable, Iterable
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
    "OUTPUTS_FILE",
    "SWEEP_FILE",
    "TIMING_COLUMNS",
    "RunOutput",
    "check_payload",
    "csv_text",
    "finished_keys",
    "load_records",
    "load_sweep",
    "record_key",
    "record_outputs",
    "recorded_outputs",
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
#: File (under the output folder) listing the report files the sweep wrote there, so
#: that a sweep whose ``--out`` is also an input folder never reads them as images.
OUTPUTS_FILE = ".smoe-outputs.json"


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
    image_digest : str
        :func:`smoe_gui.core.io.modelio.image_digest` of the run's image
        (stored with its models); ``""`` when unknown.
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
    image_digest: str = ""


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
    digest = output.image_digest or None  # the window checks it against its image
    if output.init_model is not None:
        save_model(output.init_model, runs / f"{run_id}.init.npz", digest=digest)
    if output.final_model is not None:
        save_model(output.final_model, runs / f"{run_id}.model.npz", digest=digest)
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
    text = json.dumps(payload, indent=1, allow_nan=False) + "\n"
    fileio.write_text(runs / f"{run_id}.json", text)


def check_payload(payload: Any) -> dict[str, Any]:
    """A stored run (the parsed ``runs/<run_id>.json``) checked field by field.

    Every field that resuming, ``results.csv``, the figures and the claims read is
    checked: the record holds every column of :data:`COLUMNS`; ``run_id``,
    ``image``, ``image_sha``, ``params_hash`` are non-empty text; ``method`` is a
    known method; ``budget`` a whole number of at least 2; ``status`` ``ok`` or
    ``failed``.  An ``ok`` run also has a PSNR that is a number or ``"inf"`` (not
    NaN), an SSIM in [-1, 1], whole kernel counts and step count, finite
    non-negative times, a readable history and expert PSNRs that are numbers or
    null.

    Returns
    -------
    dict
        ``payload`` itself.

    Raises
    ------
    ValueError
        One line naming the first bad field.
    """
    from ..params import METHODS

    if not isinstance(payload, dict) or not isinstance(payload.get("record"), dict):
        raise ValueError("not a run record (no 'record' object)")
    record = payload["record"]
    missing = [c for c in COLUMNS if c not in record]
    if missing:
        raise ValueError(f"record lacks {', '.join(missing)}")
    for key in ("run_id", "image", "image_sha", "params_hash"):
        if not isinstance(record[key], str) or not record[key]:
            raise ValueError(f"'{key}' is {record[key]!r}, not a non-empty text")
    if record["method"] not in METHODS:
        raise ValueError(f"'method' is {record['method']!r}, not one of {', '.join(METHODS)}")
    _whole(record, "budget", 2)
    if record["status"] not in ("ok", "failed"):
        raise ValueError(f"'status' is {record['status']!r}, not 'ok' or 'failed'")
    if record["status"] == "ok":
        psnr = record["psnr_db"]
        if psnr != "inf" and not (_is_number(psnr) and math.isfinite(psnr)):
            raise ValueError(f"'psnr_db' is {psnr!r}, not a finite number or \"inf\"")
        ssim = record["ssim"]
        if not (_is_number(ssim) and -1.0 <= ssim <= 1.0):
            raise ValueError(f"'ssim' is {ssim!r}, not a number in [-1, 1]")
        for key in ("init_kernels", "final_kernels", "steps"):
            _whole(record, key, 0)
        for key in TIMING_COLUMNS:
            value = record[key]
            if not (_is_number(value) and math.isfinite(value) and value >= 0):
                raise ValueError(f"'{key}' is {value!r}, not a finite number of seconds")
        if not isinstance(payload.get("history", []), list):
            raise ValueError("'history' is not a list")
        stored_history(payload)
        expert = payload.get("expert_psnr", [])
        if not isinstance(expert, list) or not all(
            v is None or v == "inf" or _is_number(v) for v in expert
        ):
            raise ValueError("'expert_psnr' is not a list of numbers")
        initial = payload.get("initial_psnr_db")
        if initial is not None and initial != "inf" and not _is_number(initial):
            raise ValueError(f"'initial_psnr_db' is {initial!r}, not a number")
    return payload


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )


def _whole(record: dict[str, Any], key: str, low: int) -> None:
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"'{key}' is {value!r}, not a whole number of at least {low}")


def load_records(
    out: Path, on_skip: Callable[[str], None] | None = None
) -> dict[str, dict[str, Any]]:
    """Every stored run under ``out/runs`` by run id, each checked on its own.

    A file that cannot be read (a FIFO, over
    :data:`~smoe_gui.core.limits.MAX_RECORD_BYTES`, malformed JSON) or whose
    fields fail :func:`check_payload` is skipped: ``on_skip`` receives one line
    naming it and the reason.  The other runs are kept.
    """
    from ..errors import show_path
    from ..limits import MAX_RECORD_BYTES, read_json_file

    runs = runs_dir(out)
    found: dict[str, dict[str, Any]] = {}
    if not runs.is_dir():
        return found
    for path in sorted(runs.glob("*.json")):
        try:
            payload = check_payload(read_json_file(path, "a run record", MAX_RECORD_BYTES))
            found[str(payload["record"]["run_id"])] = payload
        except ValueError as exc:
            if on_skip is not None:
                text = str(exc)
                shown = show_path(path)
                text = text if text.startswith(shown) else f"{shown}: {text}"
                on_skip(f"skipped run record {text}")
    return found


def record_key(record: dict[str, Any]) -> tuple[str, str, int, str]:
    """Resume key of a stored row: image content hash, method, budget, parameter hash."""
    return (
        str(record["image_sha"]),
        str(record["method"]),
        int(record["budget"]),
        str(record["params_hash"]),
    )


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
    writer = csv.DictWriter(
        buffer, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n"
    )
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
    """What :func:`save_sweep` recorded, or None (absent, unreadable, not a JSON
    object, or over :data:`~smoe_gui.core.limits.MAX_PARAMS_BYTES`)."""
    from ..limits import MAX_PARAMS_BYTES, read_json_file

    try:
        data = read_json_file(out / SWEEP_FILE, "a sweep record", MAX_PARAMS_BYTES)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def record_outputs(out: Path, names: Iterable[str | Path]) -> None:
    """List the report files (names relative to ``out``) in ``out/.smoe-outputs.json``."""
    text = json.dumps(sorted({Path(n).as_posix() for n in names}), indent=1) + "\n"
    fileio.write_text(out / OUTPUTS_FILE, text)


def recorded_outputs(out: Path) -> set[str]:
    """The names :func:`record_outputs` listed (empty when absent or unreadable)."""
    from ..limits import MAX_PARAMS_BYTES, read_json_file

    try:
        data = read_json_file(out / OUTPUTS_FILE, "a list of outputs", MAX_PARAMS_BYTES)
    except ValueError:
        return set()
    return {str(n) for n in data if isinstance(n, str)} if isinstance(data, list) else set()
