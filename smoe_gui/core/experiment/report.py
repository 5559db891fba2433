"""Reporting a sweep: the figures (matplotlib) and ``results.md``.

Qt-free; matplotlib draws off-screen (``matplotlib.figure.Figure``, no pyplot).
Figures: PSNR and SSIM against the number of kernels (cf. the paper's Fig. 5),
time to converge (Fig. 6), expert-initialisation PSNR per iteration (Fig. 3),
whole-image PSNR against time, and the kernel placements of both methods (Fig. 7).
"""

from __future__ import annotations

import io
import json
import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import registry
from ..io import fileio
from ..metrics import PSNR_PLOT_MAX_DB
from ..params import METHODS, Params
from ..threads import default_threads
from .claims import EDGE, GRID, Claim, paper_claims
from .curves import CONVERGE_TOL_DB, first_time_reaching, whole_image_curve
from .plan import Job, rows_for
from .store import csv_text, load_sweep, runs_dir, save_sweep, stored_history

__all__ = ["Comparison", "clock", "compare_runs", "machine_info", "paper_claims", "write_report"]


def clock(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss`` of a duration in seconds."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def machine_info() -> dict[str, str]:
    """Platform, CPU, core count and library versions of this machine."""
    import numpy

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": str(default_threads()),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    info["processor"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        info["torch"] = "not installed"
    from ... import __version__

    info["smoe-gui"] = __version__
    return info


@dataclass(frozen=True)
class Comparison:
    """Edge against grid on one (image, budget).

    ``edge_time_s`` / ``grid_time_s``: seconds from the start of the run
    (initialisation included) until the PSNR first reached the grid's final
    PSNR minus :data:`CONVERGE_TOL_DB`; ``edge_time_s`` is None if edge never did.
    """

    image: str
    budget: int
    edge_psnr: float
    grid_psnr: float
    edge_time_s: float | None
    grid_time_s: float

    @property
    def edge_better(self) -> bool:
        """Edge's final PSNR is higher."""
        return self.edge_psnr > self.grid_psnr

    @property
    def edge_sooner(self) -> bool:
        """Edge reached the grid's final PSNR in less time."""
        return self.edge_time_s is not None and self.edge_time_s < self.grid_time_s


def _curve(payload: dict[str, Any]) -> tuple[list[float], list[float]]:
    """A stored run's whole-image ``(seconds since the fit started, PSNR dB)``."""
    history, initial = stored_history(payload)
    return whole_image_curve(history, initial)


def _plot_psnr(values: Any) -> NDArray[np.float64]:
    """PSNRs for a plot axis: ``inf`` (exact) clipped to :data:`PSNR_PLOT_MAX_DB`, None as NaN."""
    out = np.asarray([math.nan if v is None else float(v) for v in values], dtype=np.float64)
    return np.minimum(out, PSNR_PLOT_MAX_DB)


def compare_runs(
    edge: dict[str, Any], grid: dict[str, Any], tol_db: float = CONVERGE_TOL_DB
) -> Comparison:
    """Compare two stored runs (payloads with ``record`` and ``history``)."""
    er, gr = edge["record"], grid["record"]
    target = float(gr["psnr_db"]) - tol_db

    def reach(payload: dict[str, Any]) -> float | None:
        times, psnrs = _curve(payload)
        t = first_time_reaching(times, psnrs, target)
        return None if t is None else t + float(payload["record"]["init_s"])

    grid_time = reach(grid)
    if grid_time is None:
        grid_time = float(gr["init_s"]) + float(gr["converge_s"])
    return Comparison(
        str(er["image"]),
        int(er["budget"]),
        float(er["psnr_db"]),
        float(gr["psnr_db"]),
        reach(edge),
        grid_time,
    )


def _figure(
    n_panels: int, panel_w: float = 4.2, panel_h: float = 3.2, cols: int | None = None
) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    cols = cols or min(4, max(1, n_panels))
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(panel_w * cols, panel_h * rows), layout="constrained")
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n_panels)]
    return fig, axes


def _save_figure(fig: Any, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    fileio.write_bytes(path, buffer.getvalue())


_STYLE: dict[str, dict[str, str]] = {}
_MORE_COLORS = ("tab:orange", "tab:brown", "tab:pink", "tab:olive")


def _style(method: str) -> dict[str, str]:
    """Colour and marker of a method in every figure: the method's ``plot_style``
    (a method without one takes the next free colour)."""
    if method not in _STYLE:
        own = dict(getattr(registry.get(method), "plot_style", {})) if method in METHODS else {}
        if "color" not in own:
            taken = sum(1 for s in _STYLE.values() if s.get("color") in _MORE_COLORS)
            own["color"] = _MORE_COLORS[taken % len(_MORE_COLORS)]
        own.setdefault("marker", "^")
        _STYLE[method] = own
    return _STYLE[method]


def _metric_figure(
    ok: list[dict[str, Any]],
    images: list[str],
    methods: Sequence[str],
    column: str,
    ylabel: str,
    title: str,
    path: Path,
) -> None:
    fig, axes = _figure(len(images))
    for ax, image in zip(axes, images, strict=True):
        for method in methods:
            pts = sorted(
                (int(r["final_kernels"]), min(float(r[column]), PSNR_PLOT_MAX_DB), int(r["budget"]))
                for r in ok
                if r["image"] == image and r["method"] == method
            )
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=method, **_style(method))
        ax.set_title(image)
        ax.set_xlabel("kernels (final)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    _save_figure(fig, path)


def _time_figure(
    ok: list[dict[str, Any]],
    images: list[str],
    methods: Sequence[str],
    budgets: Sequence[int],
    path: Path,
) -> None:
    # wide enough for the title and the legend below even with one panel
    fig, axes = _figure(len(budgets), panel_w=max(4.2, 1.3 * len(images) + 1.5, 9.0 / len(budgets)))
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(images))
    for ax, budget in zip(axes, budgets, strict=True):
        for j, method in enumerate(methods):
            init = np.full(len(images), np.nan)
            conv = np.full(len(images), np.nan)
            for i, image in enumerate(images):
                for r in ok:
                    if r["image"] == image and r["method"] == method and int(r["budget"]) == budget:
                        init[i], conv[i] = float(r["init_s"]), float(r["converge_s"])
            pos = x + (j - (len(methods) - 1) / 2) * width
            color = _style(method)["color"]
            ax.bar(pos, conv, width, bottom=init, color=color)
            ax.bar(pos, init, width, color=color, alpha=0.45, hatch="//")
        ax.set_xticks(x, images, rotation=20)
        ax.set_ylabel("time (s)")
        ax.set_title(f"budget {budget} kernels")
        ax.grid(True, axis="y", alpha=0.3)
    # one legend for all panels, below them: a legend per panel covers its bars
    from matplotlib.patches import Patch

    handles = [Patch(color=_style(m)["color"], label=m) for m in methods]
    handles += [
        Patch(facecolor="white", edgecolor="0.3", label="solid: fit to convergence"),
        Patch(facecolor="0.85", edgecolor="0.3", hatch="//", label="hatched: initialisation"),
    ]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(handles), 3 * len(budgets)),
        fontsize="small",
    )
    fig.suptitle(
        f"Time to converge (PSNR within {CONVERGE_TOL_DB:g} dB of final; cf. paper Fig. 6)"
    )
    _save_figure(fig, path)


def _expert_figure(
    ok_payloads: list[dict[str, Any]],
    images: list[str],
    methods: Sequence[str],
    budgets: Sequence[int],
    path: Path,
) -> None:
    fig, axes = _figure(len(images))
    styles = ["-", "--", ":", "-."]
    for ax, image in zip(axes, images, strict=True):
        for payload in ok_payloads:
            r = payload["record"]
            if r["image"] != image or not payload.get("expert_psnr"):
                continue
            b = int(r["budget"])
            style = styles[list(budgets).index(b) % len(styles)] if b in budgets else "-"
            values = _plot_psnr(payload["expert_psnr"])
            ax.plot(
                range(len(values)),
                values,
                style,
                color=_style(r["method"])["color"],
                label=f"{r['method']} {b}",
            )
        ax.set_title(image)
        ax.set_xlabel("refinement iteration (0: sampled)")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("Expert initialisation: PSNR per refinement iteration (cf. paper Fig. 3)")
    _save_figure(fig, path)


def _history_figure(
    ok_payloads: list[dict[str, Any]], images: list[str], budgets: Sequence[int], path: Path
) -> None:
    fig, axes = _figure(len(images))
    styles = ["-", "--", ":", "-."]
    for ax, image in zip(axes, images, strict=True):
        for payload in ok_payloads:
            r = payload["record"]
            if r["image"] != image:
                continue
            b = int(r["budget"])
            style = styles[list(budgets).index(b) % len(styles)] if b in budgets else "-"
            times, psnrs = _curve(payload)
            t = np.asarray(times, dtype=float) + float(r["init_s"])
            p = _plot_psnr(psnrs)
            color = _style(r["method"])["color"]
            # the initial model (hollow marker), then the whole-image PSNR from the merge
            # on; the tile phase in between reports per-tile PSNR only and is left blank
            ax.plot(t[:1], p[:1], _style(r["method"])["marker"], color=color, fillstyle="none")
            ax.plot(t[1:], p[1:], style, color=color, label=f"{r['method']} {b}")
        ax.set_title(image)
        ax.set_xlabel("time since start of run (s, initialisation included)")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(
        "Whole-image PSNR during training (marker: initial model; the tile phase is not shown)"
    )
    _save_figure(fig, path)


def _placement_figure(
    out: Path, pair: tuple[dict[str, Any], dict[str, Any]], image: NDArray[np.float32], path: Path
) -> None:
    from matplotlib.collections import EllipseCollection

    from ..io.modelio import load_model
    from ..model import ellipse_axes

    fig, axes = _figure(4, panel_w=5.0, panel_h=5.0 * image.shape[0] / image.shape[1] + 0.5, cols=2)
    for col, payload in enumerate(pair):
        r = payload["record"]
        model = load_model(runs_dir(out) / f"{r['run_id']}.init.npz")
        ax = axes[col]
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ell = ellipse_axes(model)
        finite = np.isfinite(ell).all(axis=1)
        coll = EllipseCollection(
            widths=2 * ell[finite, 0],
            heights=2 * ell[finite, 1],
            angles=ell[finite, 2],
            units="xy",
            offsets=model.mu[finite],
            offset_transform=ax.transData,
            facecolors="none",
            edgecolors=_style(r["method"])["color"],
            linewidths=0.5,
        )
        ax.add_collection(coll)
        ax.plot(model.mu[:, 0], model.mu[:, 1], ".", color="yellow", markersize=1.5)
        ax.set_xlim(-0.5, image.shape[1] - 0.5)
        ax.set_ylim(image.shape[0] - 0.5, -0.5)
        ax.set_title(f"{r['method']}: {model.n_kernels} initial kernels (1-σ ellipses)")
        ax.set_axis_off()
        rec_ax = axes[2 + col]
        recon_path = runs_dir(out) / f"{r['run_id']}.png"
        if recon_path.is_file():
            from ..io.image import load_image

            rec_ax.imshow(
                load_image(recon_path, channels="rgb" if image.ndim == 3 else "gray"),
                cmap="gray",
                vmin=0,
                vmax=1,
                interpolation="nearest",
            )
        rec_ax.set_title(
            f"{r['method']}: after training, {r['final_kernels']} kernels, "
            f"{float(r['psnr_db']):.2f} dB"
        )
        rec_ax.set_axis_off()
    fig.suptitle(
        f"Kernel placement on {pair[0]['record']['image']}, budget {pair[0]['record']['budget']} "
        "(cf. paper Fig. 7)"
    )
    _save_figure(fig, path)


def _fmt(value: Any, digits: int) -> str:
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def write_report(
    out: Path, jobs: Sequence[Job], payloads: dict[str, dict[str, Any]], meta: dict[str, Any]
) -> list[Path]:
    """Write ``results.csv``, the figures and ``results.md``; returns the paths written.

    Parameters
    ----------
    out : Path
    jobs : sequence of Job
        The sweep (its order is the table's order).
    payloads : dict
        Stored runs by run id (:func:`load_records`).
    meta : dict
        ``methods``, ``budgets``, ``params``, ``workers``, ``threads``,
        ``elapsed_s``, ``skipped_files``, ``missing_images``, ``sources``,
        ``interrupted``, ``pending``, ``dask_scheduler``; optional: ``claims``
        (:func:`paper_claims` of the rows, computed when absent),
        ``report_only`` (True: the report is rewritten from stored runs; the
        execution settings come from ``sweep.json`` instead of ``meta``, which
        is then not rewritten), ``missing_runs`` (labels of the sweep's runs
        not stored).

    Also writes ``claims.json`` (the claims, :meth:`Claim.to_json`) and, unless
    ``report_only``, ``sweep.json`` (machine and execution settings).
    """
    written: list[Path] = []
    rows = rows_for(jobs, payloads)
    fileio.write_text(out / "results.csv", csv_text(rows))
    written.append(out / "results.csv")
    methods: list[str] = list(meta["methods"])
    budgets: list[int] = list(meta["budgets"])
    ok = [r for r in rows if r["status"] == "ok"]
    ok_payloads = [payloads[r["run_id"]] for r in ok]
    images = list(dict.fromkeys(r["image"] for r in ok))
    figures: list[tuple[str, str]] = []
    notes: list[str] = []
    if ok:
        specs = [
            (
                "fig5_psnr_vs_kernels.png",
                "PSNR against the number of kernels (cf. paper Fig. 5)",
                lambda p: _metric_figure(
                    ok,
                    images,
                    methods,
                    "psnr_db",
                    "PSNR (dB)",
                    "PSNR against kernels (cf. paper Fig. 5)",
                    p,
                ),
            ),
            (
                "fig5_ssim_vs_kernels.png",
                "SSIM against the number of kernels",
                lambda p: _metric_figure(
                    ok, images, methods, "ssim", "SSIM", "SSIM against kernels", p
                ),
            ),
            (
                "fig6_time_to_converge.png",
                "Time to converge per image and method (cf. paper Fig. 6)",
                lambda p: _time_figure(ok, images, methods, budgets, p),
            ),
            (
                "fig3_expert_psnr.png",
                "Expert-initialisation PSNR per iteration (cf. paper Fig. 3)",
                lambda p: _expert_figure(ok_payloads, images, methods, budgets, p),
            ),
            (
                "psnr_vs_time.png",
                "Whole-image PSNR against time",
                lambda p: _history_figure(ok_payloads, images, budgets, p),
            ),
        ]
        for name, caption, draw in specs:
            draw(out / name)
            figures.append((name, caption))
        pair = _placement_pair(ok_payloads, budgets)
        if pair is not None:
            source = next(
                (s for s in meta.get("sources", []) if s.name == pair[0]["record"]["image"]), None
            )
            models = [runs_dir(out) / f"{p['record']['run_id']}.init.npz" for p in pair]
            if any(not m.is_file() for m in models):
                notes.append(
                    "Kernel placement figure (cf. paper Fig. 7) left out: the initial models "
                    + ", ".join(f"`runs/{m.name}`" for m in models if not m.is_file())
                    + " are missing."
                )
            elif source is not None and source.image is not None:
                _placement_figure(out, pair, source.image, out / "fig7_kernel_placement.png")
                figures.append(
                    (
                        "fig7_kernel_placement.png",
                        "Kernel placements of both methods (cf. paper Fig. 7)",
                    )
                )
    written.extend(out / name for name, _ in figures)

    comparisons = []
    for image in images:
        for budget in budgets:
            edge = next(
                (
                    p
                    for p in ok_payloads
                    if p["record"]["image"] == image
                    and p["record"]["method"] == EDGE
                    and int(p["record"]["budget"]) == budget
                ),
                None,
            )
            grid = next(
                (
                    p
                    for p in ok_payloads
                    if p["record"]["image"] == image
                    and p["record"]["method"] == GRID
                    and int(p["record"]["budget"]) == budget
                ),
                None,
            )
            if edge is not None and grid is not None:
                comparisons.append(compare_runs(edge, grid))

    claims: list[Claim] = (
        meta["claims"] if meta.get("claims") is not None else paper_claims(rows, payloads)
    )
    fileio.write_text(
        out / "claims.json",
        json.dumps([c.to_json() for c in claims], indent=1, allow_nan=False) + "\n",
    )
    written.append(out / "claims.json")

    if meta.get("report_only"):
        execution = load_sweep(out)
    else:
        execution = {
            "machine": machine_info(),
            "workers": meta.get("workers"),
            "threads": meta.get("threads"),
            "dask_scheduler": meta.get("dask_scheduler"),
            "elapsed_s": round(float(meta["elapsed_s"]), 3),
        }
        save_sweep(out, execution)
    hosts = sorted({str(payloads[r["run_id"]].get("host") or "") for r in rows} - {""})
    fileio.write_text(
        out / "results.md",
        _markdown(rows, comparisons, claims, figures, notes, meta, execution, hosts, budgets),
    )
    written.append(out / "results.md")
    return written


def _placement_pair(
    ok_payloads: list[dict[str, Any]], budgets: Sequence[int]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    for budget in sorted(budgets):
        for payload in ok_payloads:
            r = payload["record"]
            if r["method"] != EDGE or int(r["budget"]) != budget:
                continue
            grid = next(
                (
                    p
                    for p in ok_payloads
                    if p["record"]["method"] == GRID
                    and p["record"]["image"] == r["image"]
                    and int(p["record"]["budget"]) == budget
                ),
                None,
            )
            if grid is not None:
                return payload, grid
    return None


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table; columns after the first two are right-aligned when they hold numbers."""

    def numeric(j: int) -> bool:
        return all(_is_number(r[j]) for r in rows) and bool(rows)

    align = ["---:" if j > 0 and numeric(j) else "---" for j in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "/") for c in r) + " |" for r in rows]
    return out


def _is_number(text: str) -> bool:
    try:
        float(str(text).split(" ")[0])
    except ValueError:
        return False
    return True


def _claims_markdown(claims: Sequence[Claim]) -> list[str]:
    """The section "The paper's claims": per claim the paper's words, the rule, the numbers, the "
    "verdict."""
    lines = [
        "## The paper's claims",
        "",
        "Each claim of the paper's section IV, tested on the runs above that finished ok (the "
        "rules and why they are read so: `docs/paper-readings.md`, section 12; the same numbers "
        "are in `claims.json`).",
        "",
    ]
    for claim in claims:
        lines += [
            f"### ({claim.key.split(':')[0]}) {claim.title}",
            "",
            f"- Paper: {claim.paper}",
            f"- Rule: {claim.rule}",
            "",
        ]
        for table in claim.tables:
            lines += [f"{table.caption}:", "", *_table(table.header, table.rows), ""]
        lines += [
            f"**Verdict: {claim.verdict}.** {claim.reason[0].upper() + claim.reason[1:]}.",
            "",
        ]
    return lines


def _markdown(
    rows: list[dict[str, Any]],
    comparisons: list[Comparison],
    claims: Sequence[Claim],
    figures: list[tuple[str, str]],
    notes: Sequence[str],
    meta: dict[str, Any],
    execution: dict[str, Any] | None,
    hosts: Sequence[str],
    budgets: Sequence[int],
) -> str:
    params: Params = meta["params"]
    report_only = bool(meta.get("report_only"))
    lines = ["# SMoE initialisation experiment", ""]
    missing_runs = list(meta.get("missing_runs") or [])
    if report_only and missing_runs:
        lines += [
            f"**Incomplete:** {len(missing_runs)} run(s) of this sweep are not stored: "
            f"{', '.join(missing_runs)}; run the command without --report-only to do them.",
            "",
        ]
    elif meta.get("interrupted") or meta.get("pending"):
        lines += [
            f"**Incomplete:** {meta.get('pending', 0)} run(s) have not finished; re-run the same "
            "command to resume.",
            "",
        ]
    lines += [
        "## Settings",
        "",
        f"- methods: {', '.join(meta['methods'])}; kernel budgets: "
        f"{', '.join(str(b) for b in budgets)}",
        f"- time budget per fit: {params.time_budget:g} s; step cap: {params.max_steps}; "
        f"parameter hash `{params.digest()}`",
    ]
    if report_only:
        lines.append(
            "- this report was rewritten from the stored runs (`smoe experiment --report-only`); "
            + (
                "execution as recorded in `sweep.json` by the last invocation that ran runs:"
                if execution
                else "how the runs were executed is not recorded (no `sweep.json`)"
            )
        )
    if execution:
        workers, threads, dask = (
            execution.get("workers"),
            execution.get("threads"),
            execution.get("dask_scheduler"),
        )
        elapsed = float(execution.get("elapsed_s") or 0.0)
        lines += [
            "- execution: "
            f"{'Dask scheduler ' + str(dask) if dask else str(workers) + ' local worker(s)'}"
            + (f", {threads} torch thread(s) per run" if threads else ""),
            f"- wall-clock time of {'that' if report_only else 'this'} invocation: {elapsed:.0f} "
            f"s ({clock(elapsed)})",
        ]
    lines += [
        f"- sum of run times: {sum(float(r['wall_s'] or 0) for r in rows):.0f} s",
        f"- hosts the runs ran on: {', '.join(hosts) if hosts else 'not recorded'}",
        f"- images: {', '.join(f'{s.name} ({s.path})' for s in meta.get('sources', []))}",
    ]
    changed = {k: v for k, v in params.to_dict().items() if v != Params().to_dict()[k]}
    if changed:
        lines.append(
            "- parameters changed from the defaults: "
            + ", ".join(f"`{k}={v}`" for k, v in changed.items())
        )
    if meta.get("missing_images"):
        lines.append(f"- paper images not found (not run): {', '.join(meta['missing_images'])}")
    lines += ["", "## Machine", ""]
    machine = execution.get("machine") if execution else None
    if isinstance(machine, dict):
        lines += [f"- {k}: {v}" for k, v in machine.items()]
    else:
        lines.append("- not recorded (see the hosts above)")
    lines += [
        "",
        "## Results",
        "",
        "| image | method | budget | initial kernels | final kernels | PSNR (dB) | SSIM | time "
        "to converge (s) | init (s) | fit (s) | steps | status |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        status = r["status"] if r["status"] == "ok" else f"failed: {r['error']}"
        lines.append(
            f"| {r['image']} | {r['method']} | {r['budget']} | {r['init_kernels']} | "
            f"{r['final_kernels']} | {_fmt(r['psnr_db'], 2)} | {_fmt(r['ssim'], 4)} | "
            f"{_fmt(r['converge_s'], 1)} | {_fmt(r['init_s'], 2)} | {_fmt(r['fit_s'], 1)} | "
            f"{r['steps']} | {status.replace('|', '/')} |"
        )
    lines += [
        "",
        "Time to converge: fit time until the whole-image PSNR first came within "
        f"{CONVERGE_TOL_DB:g} dB of its final value.",
        "",
    ]
    if comparisons:
        lines += [
            "## Edge against grid",
            "",
            '"Sooner": time from the start of the run (initialisation included) until the PSNR '
            f'first reached the grid\'s final PSNR minus {CONVERGE_TOL_DB:g} dB.',
            "",
            "| image | budget | edge PSNR | grid PSNR | gain (dB) | edge reaches grid's final "
            "PSNR at (s) | grid at (s) | edge sooner |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for c in comparisons:
            lines.append(
                f"| {c.image} | {c.budget} | {c.edge_psnr:.2f} | {c.grid_psnr:.2f} | "
                f"{c.edge_psnr - c.grid_psnr:+.2f} | "
                f"{'never' if c.edge_time_s is None else f'{c.edge_time_s:.1f}'} | "
                f"{c.grid_time_s:.1f} | {'yes' if c.edge_sooner else 'no'} |"
            )
        lines += [""]
        for budget in budgets:
            at = [c for c in comparisons if c.budget == budget]
            if at:
                lines.append(_budget_line(budget, at))
        lines += ["", "The paper's claims are tested in the next section.", ""]
    lines += _claims_markdown(claims)
    if figures:
        lines += ["## Figures", ""]
        for name, caption in figures:
            lines += [f"### {caption}", "", f"![{caption}]({name})", ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    if meta.get("skipped_files"):
        lines += (
            ["## Skipped files (not images)", ""] + [f"- {p}" for p in meta["skipped_files"]] + [""]
        )
    lines += [
        "Per-run data: `runs/<run_id>.json` (row, fit history, expert PSNR, notes), "
        "`runs/<run_id>.init.npz` / `.model.npz` (initial / final model), `runs/<run_id>.png` "
        "(reconstruction).",
        "",
    ]
    return "\n".join(lines)


def _budget_line(budget: int, at: Sequence[Comparison]) -> str:
    """One budget of "Edge against grid": the counts, and whether edge was better in PSNR on
    at least three quarters of the images and sooner on every one of them."""
    better = [c.image for c in at if c.edge_better]
    sooner = [c.image for c in at if c.edge_sooner]
    n = len(at)
    need = math.ceil(0.75 * n)
    both = len(better) >= need and len(sooner) == n
    return (
        f"- budget {budget}: edge's final PSNR higher than the grid's on {len(better)} of {n} "
        f"image(s){' (' + ', '.join(better) + ')' if better else ''}; edge reached the grid's "
        f"final PSNR sooner on {len(sooner)} of "
        f"{n}{' (' + ', '.join(sooner) + ')' if sooner else ''}. Edge higher on at least {need} of "
        f"{n} and sooner on all {n}: {'yes' if both else 'no'}."
    )
