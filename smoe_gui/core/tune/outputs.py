"""A study's outputs: the trial table, the best parameters and the figures.

Written into the study's folder, every file atomically
(:mod:`smoe_gui.core.io.fileio`):

* ``trials.csv``: one row per trial (:data:`TRIAL_COLUMNS` around the tuned parameters);
* ``params.json``: every parameter of the best trial, as ``smoe fit --params`` reads it;
* ``best.json``: the best trial's number, values, objectives and model file;
* ``sweep.png`` (one tuned parameter: PSNR and SSIM against it) or ``heatmap.png``
  (two: PSNR over both), ``pareto_kernels.png`` and ``pareto_seconds.png`` (PSNR
  against kernels and against seconds, the Pareto front marked) and, with two
  or more parameters, ``importance.png`` (Optuna's parameter importance for PSNR).

The best trial is the finished one with the best first objective.  Qt-free;
matplotlib draws off-screen (``matplotlib.figure.Figure``).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..io import fileio
from ..params import Params
from .space import GRID_SAMPLER, ParamRange

__all__ = ["TRIAL_COLUMNS", "best_trial", "pareto_front", "trial_row", "write_outputs",
           "write_trials_csv"]

#: Columns of ``trials.csv`` before and after the tuned parameters.
TRIAL_COLUMNS = (("trial", "state"),
                 ("psnr_db", "ssim", "n_kernels", "seconds", "train_s", "pruned_step", "error"))

_DIRECTION = {"psnr_db": 1.0, "ssim": 1.0, "n_kernels": -1.0, "seconds": -1.0}
_OBJECTIVE_KEY = {"psnr": "psnr_db", "ssim": "ssim", "kernels": "n_kernels", "seconds": "seconds"}


def _state(trial: Any) -> str:
    name = str(trial.state.name).lower()
    if name == "fail" and trial.user_attrs.get("stale"):
        return "stale"
    return name


def trial_row(trial: Any, ranges: Sequence[ParamRange]) -> dict[str, Any]:
    """One trial (an Optuna ``FrozenTrial``) as a row of ``trials.csv`` (None: no value)."""
    attrs = trial.user_attrs
    row: dict[str, Any] = {"trial": int(trial.number), "state": _state(trial)}
    for r in ranges:
        row[r.name] = trial.params.get(r.name)
    for key in TRIAL_COLUMNS[1]:
        row[key] = attrs.get(key)
    return row


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    text = str(value)
    return '"' + text.replace('"', '""') + '"' if ("," in text or '"' in text) else text


def trials_csv_text(study: Any, ranges: Sequence[ParamRange]) -> str:
    """``trials.csv`` of ``study``."""
    names = [*TRIAL_COLUMNS[0], *(r.name for r in ranges), *TRIAL_COLUMNS[1]]
    lines = [",".join(names)]
    for trial in study.get_trials(deepcopy=False):
        row = trial_row(trial, ranges)
        lines.append(",".join(_cell(row[n]) for n in names))
    return "\n".join(lines) + "\n"


def write_trials_csv(study: Any, out: Path, ranges: Sequence[ParamRange]) -> Path:
    """Write ``out/trials.csv``; returns its path."""
    path = out / "trials.csv"
    fileio.write_text(path, trials_csv_text(study, ranges))
    return path


def _complete(study: Any) -> list[Any]:
    return [t for t in study.get_trials(deepcopy=False)
            if t.state.name == "COMPLETE" and t.user_attrs.get("psnr_db") is not None]


def best_trial(study: Any) -> Any | None:
    """The complete trial with the best first objective (None when none finished)."""
    objectives = study.user_attrs.get("settings", {}).get("objectives", ["psnr"])
    key = _OBJECTIVE_KEY[objectives[0]]
    done = [t for t in _complete(study) if t.user_attrs.get(key) is not None]
    if not done:
        return None
    return max(done, key=lambda t: _DIRECTION[key] * float(t.user_attrs[key]))


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points ``(cost, psnr)`` no other point beats (lower or equal
    cost and higher or equal PSNR, one of them strictly), by ascending cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _figure(width: float = 6.0, height: float = 4.0,
            margins: tuple[float, float, float, float] | None = None) -> Any:
    """A figure; ``margins`` (left, right, bottom, top as fractions) fix the axes' box
    instead of the constrained layout, which costs 0.1-0.3 s a figure to solve."""
    from matplotlib.figure import Figure

    if margins is None:
        return Figure(figsize=(width, height), layout="constrained")
    fig = Figure(figsize=(width, height))
    left, right, bottom, top = margins
    fig.subplots_adjust(left=left, right=right, bottom=bottom, top=top)
    return fig


def _save(fig: Any, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    fileio.write_bytes(path, buffer.getvalue())
    return path


def _sweep_figure(trials: list[Any], r: ParamRange, out: Path) -> Path:
    pairs = sorted((float(t.params[r.name]), float(t.user_attrs["psnr_db"]),
                    t.user_attrs.get("ssim")) for t in trials if r.name in t.params)
    fig = _figure(margins=(0.11, 0.88, 0.12, 0.92))
    ax = fig.add_subplot()
    xs = [p[0] for p in pairs]
    ax.plot(xs, [p[1] for p in pairs], "o-", color="tab:blue", label="PSNR")
    unit = r.spec.unit
    ax.set_xlabel(f"{r.spec.label} ({unit})" if unit not in ("", "1") else r.spec.label)
    ax.set_ylabel("PSNR (dB)", color="tab:blue")
    if r.log:
        ax.set_xscale("log")
    ssims = [p[2] for p in pairs]
    if all(s is not None for s in ssims):
        twin = ax.twinx()
        twin.plot(xs, ssims, "s--", color="tab:orange", label="SSIM")
        twin.set_ylabel("SSIM", color="tab:orange")
    ax.set_title(f"PSNR and SSIM after training against {r.name}")
    ax.grid(alpha=0.3)
    return _save(fig, out / "sweep.png")


def _heatmap_figure(trials: list[Any], ranges: Sequence[ParamRange], grid: bool, out: Path) -> Path:
    import numpy as np

    a, b = ranges[0], ranges[1]
    fig = _figure(6.4, 4.8)
    ax = fig.add_subplot()
    xs = [float(t.params[a.name]) for t in trials]
    ys = [float(t.params[b.name]) for t in trials]
    zs = [float(t.user_attrs["psnr_db"]) for t in trials]
    if grid:
        ux, uy = sorted(set(xs)), sorted(set(ys))
        table = np.full((len(uy), len(ux)), np.nan)
        for x, y, z in zip(xs, ys, zs, strict=True):
            table[uy.index(y), ux.index(x)] = z
        mesh = ax.imshow(table, origin="lower", aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(ux)), [f"{v:g}" for v in ux])
        ax.set_yticks(range(len(uy)), [f"{v:g}" for v in uy])
        for (j, i), z in np.ndenumerate(table):
            if np.isfinite(z):
                ax.text(i, j, f"{z:.2f}", ha="center", va="center", color="white", fontsize=8)
    else:
        mesh = ax.scatter(xs, ys, c=zs, cmap="viridis", s=60)
        if a.log:
            ax.set_xscale("log")
        if b.log:
            ax.set_yscale("log")
    fig.colorbar(mesh, ax=ax, label="PSNR (dB)")
    ax.set_xlabel(a.name)
    ax.set_ylabel(b.name)
    ax.set_title("PSNR after training")
    return _save(fig, out / "heatmap.png")


def _pareto_figure(trials: list[Any], key: str, label: str, out: Path) -> Path:
    points = [(float(t.user_attrs[key]), float(t.user_attrs["psnr_db"])) for t in trials
              if t.user_attrs.get(key) is not None]
    fig = _figure(margins=(0.11, 0.97, 0.12, 0.92))
    ax = fig.add_subplot()
    ax.scatter([p[0] for p in points], [p[1] for p in points], color="0.6", label="trials")
    front = [points[i] for i in pareto_front(points)]
    ax.plot([p[0] for p in front], [p[1] for p in front], "o-", color="tab:red",
            label="Pareto front")
    for i in pareto_front(points):
        ax.annotate(f"#{trials[i].number}", points[i], textcoords="offset points", xytext=(4, 4),
                    fontsize=8)
    ax.set_xlabel(label)
    ax.set_ylabel("PSNR (dB)")
    ax.legend()
    ax.grid(alpha=0.3)
    ax.set_title(f"PSNR against {label}")
    name = "pareto_kernels.png" if key == "n_kernels" else "pareto_seconds.png"
    return _save(fig, out / name)


def _importance_figure(study: Any, out: Path) -> Path | None:
    import optuna

    try:
        importances = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0),
            target=lambda t: float(t.user_attrs.get("psnr_db") or math.nan))
    except (RuntimeError, ValueError, ZeroDivisionError):
        return None  # too few distinct trials
    if not importances:
        return None
    fig = _figure(6.0, 0.6 + 0.5 * len(importances))
    ax = fig.add_subplot()
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance for PSNR (fANOVA, sums to 1)")
    ax.set_title("Parameter importance")
    return _save(fig, out / "importance.png")


def write_outputs(
    study: Any, out: Path, ranges: Sequence[ParamRange],
) -> tuple[list[Path], dict[str, Any] | None]:
    """Write every output of the study into ``out``.

    Returns
    -------
    files : list of Path
    best : dict or None
        ``number, values, psnr_db, ssim, n_kernels, seconds, method, model`` of
        the best trial (None: no trial finished; then no ``params.json``).
    """
    files = [write_trials_csv(study, out, ranges)]
    settings = study.user_attrs.get("settings", {})
    trial = best_trial(study)
    best: dict[str, Any] | None = None
    if trial is not None:
        params = Params.from_dict(settings.get("params", {})).replace(**trial.params)
        model = out / "models" / f"trial-{trial.number:04d}.npz"
        best = {
            "trial": int(trial.number),
            "values": dict(trial.params),
            "method": settings.get("method"),
            **{k: trial.user_attrs.get(k) for k in ("psnr_db", "ssim", "n_kernels", "seconds")},
            "model": model.name if model.exists() else None,
        }
        fileio.write_text(out / "params.json", params.to_json())
        fileio.write_text(out / "best.json", json.dumps(best, indent=2, allow_nan=False) + "\n")
        files += [out / "params.json", out / "best.json"]
    done = _complete(study)
    if done:
        if len(ranges) == 1:
            files.append(_sweep_figure(done, ranges[0], out))
        elif len(ranges) == 2:
            on_grid = settings.get("sampler") == GRID_SAMPLER
            files.append(_heatmap_figure(done, ranges, on_grid, out))
        files.append(_pareto_figure(done, "n_kernels", "kernels", out))
        files.append(_pareto_figure(done, "seconds", "seconds per fit", out))
        if len(ranges) >= 2 and len(done) >= 3:
            path = _importance_figure(study, out)
            if path is not None:
                files.append(path)
    return files, best
