"""The paper's section IV experiments as one sweep: every (image, method, kernel budget).

Qt-free.  :func:`run_experiment` plans the jobs, runs them (in this process, in
local worker processes or on a Dask cluster), saves every finished run at once
and writes the report (``results.csv``, ``results.md`` and the figures).  The
``smoe experiment`` command is a thin layer over it.

Definitions (see ``docs/experiments.md``):

kernel budget
    The largest number of kernels of the *initial* model.  For the edge method
    ``max_pts`` is chosen so that ``2·M + n_background <= budget`` (``M`` the
    reduced segments): first ``max_pts = budget // 2``, then, while the model is
    too big, ``max_pts = min(max_pts - ceil(excess / 2), (budget - n_background) // 2)``.
    The grid baseline gets exactly the kernel count the edge initialisation
    produced on the same image and budget, so both start with equal kernels.
time to converge
    The fit's elapsed time (s, from the start of the fit) at which the
    whole-image PSNR first came within :data:`CONVERGE_TOL_DB` of its final
    value.  The tile phase reports per-tile PSNR, so the whole-image history
    starts with the initial model's PSNR at time 0 and continues from the merge.

Files under ``out``: ``runs/<run_id>.json`` (one per finished run: the CSV row,
the PSNR history, the expert-initialisation PSNR per iteration),
``runs/<run_id>.init.npz`` / ``.model.npz`` (initial and final model),
``runs/<run_id>.png`` (the reconstruction), ``results.csv``, ``results.md`` and
``fig*.png``.  A run is finished once its JSON exists; a re-run with the same
``out`` skips finished runs whose key (image content hash, method, budget,
parameter hash) matches.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import multiprocessing
import os
import platform
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from . import fileio
from .events import FitEvent
from .model import SmoeModel
from .params import Params

__all__ = [
    "COLUMNS",
    "CONVERGE_TOL_DB",
    "DEFAULT_BUDGETS",
    "IMAGE_SUFFIXES",
    "METHODS",
    "PAPER_IMAGES",
    "TIMING_COLUMNS",
    "BudgetPlan",
    "ExperimentSummary",
    "ImageSource",
    "Job",
    "Progress",
    "RunOutput",
    "collect_images",
    "default_images",
    "first_time_reaching",
    "load_records",
    "parse_budgets",
    "parse_methods",
    "plan_edge_budget",
    "plan_jobs",
    "run_experiment",
    "run_job",
    "time_to_converge",
    "write_report",
]

#: Initialisation methods compared.
METHODS = ("edge", "grid")
#: Kernel budgets of the default sweep (the paper's Fig. 5 range).
DEFAULT_BUDGETS = (500, 1000, 2000)
#: The paper's four test images (section IV), looked up by file stem.
PAPER_IMAGES = ("peppers", "barbara", "parrots", "flowers")
#: File name suffixes taken as images when a folder is scanned.
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".pgm", ".ppm", ".pnm"}
)
#: Tolerance (dB) of "time to converge" and of "reaches the grid's final PSNR".
CONVERGE_TOL_DB = 0.1
#: Columns of ``results.csv`` in order.
COLUMNS = (
    "image", "method", "budget", "init_kernels", "final_kernels", "psnr_db", "ssim",
    "converge_s", "init_s", "fit_s", "wall_s", "steps", "time_budget_s", "max_pts",
    "background_spacing", "params_hash", "image_sha", "status", "error", "run_id",
)
#: Columns that hold wall-clock measurements (differ between identical runs).
TIMING_COLUMNS = ("converge_s", "init_s", "fit_s", "wall_s")
#: Largest number of PSNR history points stored per run.
HISTORY_POINTS = 1500
#: Largest share of a kernel budget that a full grid of background kernels may take.
BACKGROUND_SHARE = 0.25
#: Most initialisations the kernel-budget search of one (image, budget) makes
#: once a fitting ``max_pts`` is found.
PLAN_TRIES = 8
#: Seconds to wait for a Dask scheduler to answer.
DASK_CONNECT_TIMEOUT_S = 15.0
#: Snapshot interval passed to ``fit``: the experiment only needs the final model.
_NO_SNAPSHOTS_S = 1e9


# --------------------------------------------------------------------------------------
# Input parsing
# --------------------------------------------------------------------------------------
def parse_budgets(text: str) -> tuple[int, ...]:
    """Kernel budgets from ``"500,1000,2000"``: sorted, without repeats.

    Raises
    ------
    ValueError
        For an empty list, an entry that is not a whole number, or a budget
        below 2 kernels (one pair).
    """
    items = [t.strip() for t in str(text).split(",")]
    if not any(items):
        raise ValueError("--budgets: give kernel budgets as whole numbers, e.g. 500,1000,2000")
    budgets: set[int] = set()
    for item in items:
        if not re.fullmatch(r"\+?\d+", item):
            raise ValueError(
                f"--budgets: {item!r} is not a whole number of kernels (expected e.g. 500,1000,2000)"
            )
        value = int(item)
        if value < 2:
            raise ValueError(f"--budgets: {value} kernels is too few; a budget must be at least 2")
        budgets.add(value)
    return tuple(sorted(budgets))


def parse_methods(text: str) -> tuple[str, ...]:
    """Methods from ``"edge,grid"`` in the given order, without repeats.

    Raises
    ------
    ValueError
        For an empty list or an unknown method.
    """
    methods: list[str] = []
    for item in (t.strip().lower() for t in str(text).split(",")):
        if item not in METHODS:
            shown = item or "(empty)"
            raise ValueError(f"--methods: unknown method {shown!r}; known methods: {', '.join(METHODS)}")
        if item not in methods:
            methods.append(item)
    return tuple(methods)


def default_image_folders() -> tuple[Path, Path]:
    """``(paper folder, bundled samples folder)``.

    The paper's images live in the repository's sibling ``../shared/images``
    (they may not be redistributed); the bundled samples hold the two Kodak ones.
    """
    import smoe_gui

    package = Path(smoe_gui.__file__).resolve()
    return package.parents[2] / "shared" / "images", package.parents[1] / "resources" / "samples"


def _find_stem(folder: Path, stem: str) -> Path | None:
    if not folder.is_dir():
        return None
    for suffix in sorted(IMAGE_SUFFIXES):
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def default_images() -> tuple[list[Path], list[str]]:
    """The paper's four images, and the names of those not found.

    Each is looked up first in the paper folder, then in the bundled samples
    (see :func:`default_image_folders`).
    """
    paper, samples = default_image_folders()
    found: list[Path] = []
    missing: list[str] = []
    for stem in PAPER_IMAGES:
        path = _find_stem(paper, stem) or _find_stem(samples, stem)
        if path is None:
            missing.append(stem)
        else:
            found.append(path)
    return found, missing


def collect_images(inputs: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[Path]]:
    """Image files from files and folders, and the non-image files skipped.

    A folder is scanned (not recursively, sorted by name) for files whose
    suffix is in :data:`IMAGE_SUFFIXES`; other files are skipped and returned.
    A file named explicitly is taken as an image whatever its suffix (a file
    that does not decode fails as a run, with its error).

    Raises
    ------
    ValueError
        For a path that does not exist.
    """
    images: list[Path] = []
    skipped: list[Path] = []
    seen: set[Path] = set()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if not child.is_file() or child.name.startswith("."):
                    continue
                if child.suffix.lower() in IMAGE_SUFFIXES:
                    if child.resolve() not in seen:
                        seen.add(child.resolve())
                        images.append(child)
                else:
                    skipped.append(child)
        elif path.is_file():
            if path.resolve() not in seen:
                seen.add(path.resolve())
                images.append(path)
        else:
            raise ValueError(f"{path}: no such file or folder")
    return images, skipped


# --------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ImageSource:
    """One image of the sweep.

    Attributes
    ----------
    name : str
        Display name (file stem, made unique).
    path : Path
    sha : str
        First 12 hex digits of the SHA-256 of the file's bytes (resume key).
    image : (H, W) float32 or None
        The loaded image; None when loading failed.
    error : str or None
        Why loading failed.
    """

    name: str
    path: Path
    sha: str
    image: NDArray[np.float32] | None
    error: str | None = None


def _unique_names(paths: Sequence[Path]) -> list[str]:
    stems = [p.stem for p in paths]
    names = []
    for p in paths:
        name = p.stem if stems.count(p.stem) == 1 else f"{p.parent.name}_{p.stem}"
        names.append(name)
    out: list[str] = []
    for name in names:
        candidate, n = name, 2
        while candidate in out:
            candidate, n = f"{name}_{n}", n + 1
        out.append(candidate)
    return out


def load_sources(paths: Sequence[Path], max_size: int | None = None) -> list[ImageSource]:
    """Load every image; a file that fails is kept with its error."""
    from .image import load_image

    sources = []
    for path, name in zip(paths, _unique_names(paths), strict=True):
        try:
            sha = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        except OSError as exc:
            sources.append(ImageSource(name, path, "-", None, f"{path}: cannot read ({exc.strerror or exc})"))
            continue
        try:
            image = load_image(path, max_size=max_size)
        except ValueError as exc:
            sources.append(ImageSource(name, path, sha, None, str(exc)))
            continue
        sources.append(ImageSource(name, path, sha, image))
    return sources


@dataclass(frozen=True)
class BudgetPlan:
    """How the edge method meets a kernel budget on one image.

    Attributes
    ----------
    budget : int
        Kernel budget asked for.
    max_pts : int
        ``max_pts`` that meets it.
    n_kernels : int
        Kernel count of the edge initialisation with that ``max_pts``.
    n_background : int
        Background kernels among them.
    tries : int
        Initialisations the search took.
    background_spacing : float
        Background-kernel spacing used (px), see :func:`background_spacing_for`.
    """

    budget: int
    max_pts: int
    n_kernels: int
    n_background: int
    tries: int
    background_spacing: float


def plan_edge_budget(
    image: NDArray[np.float32], params: Params, budget: int, max_tries: int = PLAN_TRIES
) -> BudgetPlan:
    """Choose ``max_pts`` so that the edge initialisation has at most ``budget`` kernels.

    The kernel count is ``2·M + n_background`` (``M <= max_pts`` reduced
    segments).  The search starts at ``max_pts = budget // 2``; while the model
    is too big it lowers ``max_pts`` by half the excess (at least 1) and to at
    most ``(budget - n_background) // 2``.  If the first ``max_pts`` fits with
    room to spare (the reduction may return fewer than ``max_pts`` segments),
    it raises ``max_pts`` by half the room until one does not fit.  Then it
    bisects between the largest that fits and the smallest that does not (the
    count moves in steps: the reduction's radius merges tied distances at
    once).  At most ``max_tries`` initialisations once a fitting ``max_pts`` is
    known; the fitting ``max_pts`` with the most kernels wins (ties: the
    smallest).  The expert refinement is skipped during
    the search (it does not change the count).

    Raises
    ------
    ValueError
        When even ``max_pts = 1`` exceeds the budget (the background kernels
        alone fill it).
    """
    from .pipeline import initialize

    spacing = background_spacing_for(image.shape, params, budget)
    search = params.replace(expert_iters=0, background_spacing=spacing)
    counts: dict[int, tuple[int, int]] = {}

    def count(max_pts: int) -> tuple[int, int]:
        if max_pts not in counts:
            init = initialize(image, search.replace(max_pts=max_pts), method="edge")
            counts[max_pts] = (init.model.n_kernels, init.n_background)
        return counts[max_pts]

    max_pts = max(1, budget // 2)
    too_big: int | None = None
    while True:
        n, n_background = count(max_pts)
        if n <= budget:
            break
        too_big = max_pts
        lower = min(max_pts - max(1, math.ceil((n - budget) / 2)), (budget - n_background) // 2)
        if max_pts <= 1 or lower < 1:
            raise ValueError(
                f"a budget of {budget} kernels is too small for this image: the edge "
                f"initialisation needs {n} with max_pts={max_pts} ({n_background} "
                f"background kernels); raise the budget or background_spacing"
            )
        max_pts = lower
    fits = max_pts
    while too_big is None and len(counts) < max_tries and counts[fits][0] < budget:
        # the reduction may give fewer than max_pts segments: probe upwards
        up = fits + max(1, (budget - counts[fits][0]) // 2)
        if count(up)[0] <= budget:
            fits = up
        else:
            too_big = up
    while too_big is not None and too_big - fits > 1 and len(counts) < max_tries:
        middle = (fits + too_big) // 2
        if count(middle)[0] <= budget:
            fits = middle
        else:
            too_big = middle
    best = max((mp for mp, (n, _) in counts.items() if n <= budget), key=lambda mp: (counts[mp][0], -mp))
    n, n_background = counts[best]
    return BudgetPlan(budget, best, n, n_background, len(counts), spacing)


def background_spacing_for(shape: tuple[int, ...], params: Params, budget: int) -> float:
    """Background-kernel spacing (px) for a kernel budget on an image of ``shape``.

    The parameter's spacing, raised where needed so that a full grid of
    background kernels would hold at most :data:`BACKGROUND_SHARE` of the
    budget: ``max(background_spacing, sqrt(H·W / (share·budget)))``, capped at
    the parameter's upper limit.  Without it the background kernels of a small
    budget on a large image would leave almost nothing to the edge pairs.
    """
    from .params import spec

    height, width = int(shape[0]), int(shape[1])
    needed = math.sqrt(height * width / (BACKGROUND_SHARE * budget))
    limit = spec("background_spacing").high
    return float(min(limit, max(params.background_spacing, math.ceil(needed * 10) / 10)))


@dataclass(frozen=True, eq=False)
class Job:
    """One (image, method, budget) run, self-contained so that it can be shipped
    to another process or a Dask worker.

    Attributes
    ----------
    run_id : str
        File-name-safe identifier, ``<image>-<method>-<budget>-<params_hash>``.
    image_name, image_sha : str
    method : str
        ``"edge"`` or ``"grid"``.
    budget : int
        Kernel budget.
    params : Params
        The run's parameters (the sweep's, with ``max_pts`` set by the plan).
    params_hash : str
        Digest of the sweep's parameters (resume key).
    target_kernels : int
        Initial kernel count to produce (the edge plan's count).
    image : (H, W) float32
    threads : int
        ``torch.set_num_threads`` for the run (0: leave as is).
    error : str or None
        Set when the job cannot run (e.g. the budget plan failed): the run is
        recorded as failed with it.
    """

    run_id: str
    image_name: str
    image_sha: str
    method: str
    budget: int
    params: Params
    params_hash: str
    target_kernels: int
    image: NDArray[np.float32] | None
    threads: int = 0
    error: str | None = None

    @property
    def key(self) -> tuple[str, str, int, str]:
        """Resume key: image content hash, method, budget, parameter hash."""
        return (self.image_sha, self.method, self.budget, self.params_hash)

    @property
    def label(self) -> str:
        """Short human label."""
        return f"{self.image_name} {self.method} {self.budget}"

    def base_record(self) -> dict[str, Any]:
        """A CSV row with the job's identity filled in and no results."""
        row: dict[str, Any] = dict.fromkeys(COLUMNS, "")
        row.update(
            image=self.image_name, method=self.method, budget=self.budget,
            time_budget_s=self.params.time_budget, max_pts=self.params.max_pts,
            background_spacing=self.params.background_spacing,
            params_hash=self.params_hash, image_sha=self.image_sha, run_id=self.run_id,
            status="failed", error="",
        )
        return row


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", text).strip("_.") or "image"


def make_run_id(image_name: str, method: str, budget: int, params_hash: str) -> str:
    """File-name-safe run identifier."""
    return f"{_safe(image_name)}-{method}-{budget}-{params_hash}"


def plan_jobs(
    sources: Sequence[ImageSource],
    methods: Sequence[str],
    budgets: Sequence[int],
    params: Params,
    threads: int = 0,
    skip: Callable[[tuple[str, str, int, str]], bool] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[Job]:
    """Every (image, budget, method) job, with the edge budget planned.

    ``skip(key)`` true marks a finished run: its budget is not planned again
    unless another method of the same (image, budget) still has to run.
    ``log`` receives a line per image whose budgets are planned.
    """
    digest = params.digest()
    jobs: list[Job] = []
    for src in sources:
        if log is not None and src.image is not None and any(
            skip is None or not skip((src.sha, m, b, digest)) for m in methods for b in budgets
        ):
            log(f"planning the kernel budgets of {src.name} ...")
        for budget in budgets:
            keys = {m: (src.sha, m, budget, digest) for m in methods}
            todo = [m for m in methods if skip is None or not skip(keys[m])]
            plan: BudgetPlan | None = None
            error = src.error
            if todo and error is None and src.image is not None:
                try:
                    plan = plan_edge_budget(src.image, params, budget)
                except ValueError as exc:
                    error = str(exc)
            for method in methods:
                run_params = params
                target = budget
                if plan is not None:
                    # the grid baseline places as many kernels as the edge method
                    # gives for the same parameters, so both get the planned max_pts
                    target = plan.n_kernels
                    run_params = params.replace(
                        max_pts=plan.max_pts, background_spacing=plan.background_spacing
                    )
                jobs.append(
                    Job(
                        run_id=make_run_id(src.name, method, budget, digest),
                        image_name=src.name, image_sha=src.sha, method=method, budget=budget,
                        params=run_params, params_hash=digest, target_kernels=target,
                        image=src.image, threads=threads, error=error,
                    )
                )
    return jobs


# --------------------------------------------------------------------------------------
# Running one job
# --------------------------------------------------------------------------------------
@dataclass(eq=False)
class RunOutput:
    """Everything one run produced.

    Attributes
    ----------
    record : dict
        The CSV row (keys :data:`COLUMNS`).
    history : dict
        ``t`` (s since the fit started), ``psnr`` (dB, whole image), ``step``:
        lists of equal length; starts with the initial model at ``t = 0``.
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
    history: dict[str, list[float]] = field(default_factory=lambda: {"t": [], "psnr": [], "step": []})
    expert_psnr: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    init_model: SmoeModel | None = None
    final_model: SmoeModel | None = None
    reconstruction: NDArray[np.uint8] | None = None
    host: str = ""


def first_time_reaching(times: Sequence[float], psnrs: Sequence[float], target: float) -> float | None:
    """First time at which ``psnr >= target``, or None if never."""
    for t, p in zip(times, psnrs, strict=True):
        if p >= target:
            return float(t)
    return None


def time_to_converge(
    times: Sequence[float], psnrs: Sequence[float], final_psnr: float, tol_db: float = CONVERGE_TOL_DB
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


def _thin(history: dict[str, list[float]], points: int = HISTORY_POINTS) -> dict[str, list[float]]:
    n = len(history["t"])
    if n <= points:
        return history
    index = np.unique(np.round(np.linspace(0, n - 1, points)).astype(int))
    return {k: [v[i] for i in index] for k, v in history.items()}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _interrupted(exc: BaseException) -> bool:
    """Whether a Ctrl-C hides in the exception's chain (compiled code such as
    numba's turns a KeyboardInterrupt into a SystemError caused by it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _set_threads(threads: int) -> None:
    if threads > 0:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _initialize(job: Job) -> Any:
    """The job's initialisation: the planned ``max_pts``; the grid baseline places
    as many kernels as the edge method gives with it (see ``initialize``)."""
    from .pipeline import initialize

    assert job.image is not None
    init = initialize(job.image, job.params, method=job.method)
    n = init.model.n_kernels
    if n != job.target_kernels:
        raise RuntimeError(
            f"the {job.method} initialisation made {n} kernels, the plan expected {job.target_kernels}"
        )
    return init


def run_job(job: Job, on_event: Callable[[FitEvent], None] | None = None) -> RunOutput:
    """Run one job: initialise, fit, evaluate.  Never raises for a failing run
    (the output's record says ``status = failed`` with the error), except
    :class:`KeyboardInterrupt`.

    Parameters
    ----------
    job : Job
    on_event : callable, optional
        Called with every fit event (progress display in the same process).
    """
    start = time.perf_counter()
    out = RunOutput(record=job.base_record(), host=platform.node())
    try:
        if job.error is not None:
            raise ValueError(job.error)
        if job.image is None:
            raise ValueError("no image")
        _set_threads(job.threads)
        from .metrics import psnr, ssim
        from .rendering import render
        from .training import fit

        t0 = time.perf_counter()
        init = _initialize(job)
        init_s = time.perf_counter() - t0
        out.init_model = init.model
        out.expert_psnr = [float(p) for p in init.expert_psnr]
        out.notes.extend(init.notes)
        out.record.update(init_kernels=init.model.n_kernels, init_s=round(init_s, 4))

        init_psnr = out.expert_psnr[-1] if out.expert_psnr else psnr(render(init.model), job.image)
        hist: dict[str, list[float]] = {"t": [0.0], "psnr": [float(init_psnr)], "step": [0]}
        final: FitEvent | None = None
        for event in fit(job.image, job.params, init=init, method=job.method,
                         snapshot_interval_s=_NO_SNAPSHOTS_S):
            if event.phase != "tiles" and math.isfinite(event.psnr):
                hist["t"].append(float(event.elapsed_s))
                hist["psnr"].append(float(event.psnr))
                hist["step"].append(int(event.step))
            if event.message and event.message not in out.notes and len(out.notes) < 50:
                out.notes.append(event.message)
            if on_event is not None:
                on_event(event)
            if event.final:
                final = event
        if final is None or final.model is None:
            raise RuntimeError("the fit ended without a final model")
        model = final.model

        recon = render(model)
        final_psnr = psnr(recon, job.image)
        final_ssim = ssim(recon, job.image)
        out.final_model = model
        out.reconstruction = np.round(np.clip(recon, 0.0, 1.0) * 255.0).astype(np.uint8)
        out.history = _thin(hist)
        out.record.update(
            final_kernels=model.n_kernels,
            psnr_db=round(final_psnr, 4),
            ssim=round(final_ssim, 5),
            converge_s=round(time_to_converge(hist["t"], hist["psnr"], final_psnr), 3),
            fit_s=round(float(final.elapsed_s), 3),
            steps=int(final.step),
            status="ok",
        )
    except Exception as exc:  # a failing run is a result, not the end of the sweep
        if _interrupted(exc):
            raise KeyboardInterrupt from exc
        out.record.update(status="failed", error=_one_line(exc))
    out.record["wall_s"] = round(time.perf_counter() - start, 3)
    return out


def _init_pool_worker(threads: int) -> None:
    """Process-pool initialiser: the parent handles Ctrl-C; set torch threads."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_threads(threads)


# --------------------------------------------------------------------------------------
# Storing results
# --------------------------------------------------------------------------------------
def _runs_dir(out: Path) -> Path:
    return out / "runs"


def save_run(out: Path, output: RunOutput) -> None:
    """Write one run's files; the JSON last (its presence marks the run finished)."""
    from .modelio import save_model

    runs = _runs_dir(out)
    runs.mkdir(parents=True, exist_ok=True)
    run_id = output.record["run_id"]
    if output.init_model is not None:
        save_model(output.init_model, runs / f"{run_id}.init.npz")
    if output.final_model is not None:
        save_model(output.final_model, runs / f"{run_id}.model.npz")
    if output.reconstruction is not None:
        fileio.write_png(runs / f"{run_id}.png", output.reconstruction)
    payload = {
        "record": output.record,
        "history": output.history,
        "expert_psnr": output.expert_psnr,
        "notes": output.notes,
        "host": output.host,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    fileio.write_text(runs / f"{run_id}.json", json.dumps(payload, indent=1) + "\n")


def load_records(out: Path) -> dict[str, dict[str, Any]]:
    """Every stored run under ``out/runs`` by run id (unreadable files are ignored)."""
    runs = _runs_dir(out)
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


def _record_key(record: dict[str, Any]) -> tuple[str, str, int, str]:
    return (str(record["image_sha"]), str(record["method"]), int(record["budget"]), str(record["params_hash"]))


def finished_keys(payloads: Iterable[dict[str, Any]]) -> set[tuple[str, str, int, str]]:
    """Keys of the runs that finished with status ``ok``."""
    keys = set()
    for payload in payloads:
        record = payload.get("record", {})
        try:
            if record.get("status") == "ok":
                keys.add(_record_key(record))
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


def _rows_for(jobs: Sequence[Job], payloads: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for job in jobs:
        payload = payloads.get(job.run_id)
        if payload is not None and _record_key(payload["record"]) == job.key:
            rows.append(payload["record"])
    return rows


# --------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------
def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Progress of a sweep: a bar with ETA on a terminal, plain lines otherwise.

    Parameters
    ----------
    stream : text stream
        Where to write (default ``sys.stderr``).
    live : bool, optional
        Redraw one line in place; default: whether ``stream`` is a terminal.
    """

    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(live) if live is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.total = 0
        self.done = 0
        self.workers = 1
        self.expected_s = 60.0
        self.started = time.monotonic()
        self._durations: list[float] = []
        self._current = ""
        self._current_since = 0.0
        self._current_fit: tuple[float, float] | None = None
        self._last_draw = 0.0

    def start(self, total: int, workers: int, expected_s: float) -> None:
        """A sweep of ``total`` runs to do, ``expected_s`` seconds each."""
        self.total, self.workers, self.expected_s = total, max(1, workers), expected_s
        self.started = time.monotonic()
        if not self.live:
            self._print(f"{total} run(s) to do on {self.workers} worker(s)")

    def job_started(self, label: str) -> None:
        """A run started in this process."""
        self._current, self._current_since, self._current_fit = label, time.monotonic(), None
        self._draw(force=True)

    def event(self, event: FitEvent) -> None:
        """A fit event of the run in this process."""
        self._current_fit = (event.elapsed_s, event.psnr)
        self._draw()

    def job_finished(self, record: dict[str, Any]) -> None:
        """A run finished (ok or failed)."""
        self.done += 1
        if record.get("wall_s") not in ("", None):
            self._durations.append(float(record["wall_s"]))
        self._current, self._current_fit = "", None
        if record.get("status") == "ok":
            text = (
                f"{record['image']} {record['method']} {record['budget']}: "
                f"{float(record['psnr_db']):.2f} dB, SSIM {float(record['ssim']):.4f}, "
                f"{record['final_kernels']} kernels, {float(record['wall_s']):.1f} s"
            )
        else:
            text = f"{record['image']} {record['method']} {record['budget']}: FAILED ({record.get('error', '')})"
        self._print(f"[{self.done}/{self.total}] {text}")
        self._draw(force=True)

    def eta_s(self) -> float:
        """Seconds left, estimated from the finished runs (or the time budget)."""
        per_job = float(np.mean(self._durations)) if self._durations else self.expected_s
        remaining = self.total - self.done
        left = remaining * per_job / self.workers
        if self._current:
            left -= min(per_job, time.monotonic() - self._current_since) / self.workers
        return max(0.0, left)

    def _draw(self, force: bool = False) -> None:
        if not self.live:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.25:
            return
        self._last_draw = now
        width = 24
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(round(frac * width)) + "-" * (width - int(round(frac * width)))
        line = (
            f"[{bar}] {self.done}/{self.total} runs  elapsed {_clock(now - self.started)}"
            f"  ETA {_clock(self.eta_s())}"
        )
        if self._current:
            line += f"  | {self._current}"
            if self._current_fit is not None:
                line += f" {self._current_fit[0]:.0f}s {self._current_fit[1]:.2f} dB"
        columns = 0
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            pass
        columns = columns if columns >= 40 else 120
        self.stream.write("\r\x1b[2K" + line[: max(20, columns - 1)])
        self.stream.flush()

    def _print(self, text: str) -> None:
        if self.live:
            self.stream.write("\r\x1b[2K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the live line."""
        if self.live:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


# --------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------
def _failed_output(job: Job, exc: BaseException) -> RunOutput:
    out = RunOutput(record=job.base_record())
    out.record.update(status="failed", error=_one_line(exc))
    return out


def _run_serial(jobs: Sequence[Job], on_done: Callable[[RunOutput], None], progress: Progress) -> None:
    for job in jobs:
        progress.job_started(job.label)
        on_done(run_job(job, on_event=progress.event))


def _run_processes(
    jobs: Sequence[Job], workers: int, threads: int, on_done: Callable[[RunOutput], None]
) -> None:
    context = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_pool_worker, initargs=(threads,)
    )
    futures: dict[Future[RunOutput], Job] = {}
    try:
        futures = {executor.submit(run_job, job): job for job in jobs}
        pending: set[Future[RunOutput]] = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    output = future.result()
                except Exception as exc:  # a crashed worker process
                    output = _failed_output(futures[future], exc)
                on_done(output)
    except BaseException:
        for future in futures:
            future.cancel()
        processes = list(getattr(executor, "_processes", {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)
        raise
    executor.shutdown(wait=True)


def _run_dask(jobs: Sequence[Job], scheduler: Any, on_done: Callable[[RunOutput], None]) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ValueError(
            "--dask-scheduler needs Dask distributed: pip install 'smoe-gui[cluster]'"
        ) from None
    try:
        client = Client(scheduler, timeout=f"{DASK_CONNECT_TIMEOUT_S}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: {_one_line(exc)}") from None
    try:
        futures = client.map(run_job, list(jobs), pure=False, key=[f"smoe-{j.run_id}" for j in jobs])
        by_key = {f.key: job for f, job in zip(futures, jobs, strict=True)}
        try:
            for future in as_completed(futures, loop=client.loop):
                try:
                    output = future.result()
                except Exception as exc:  # a lost worker
                    output = _failed_output(by_key[future.key], exc)
                on_done(output)
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        client.close()


# --------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------
@dataclass
class ExperimentSummary:
    """What a call of :func:`run_experiment` did.

    Attributes
    ----------
    out : Path
    total : int
        Runs in the sweep.
    resumed : int
        Runs skipped because they had finished before.
    ran : int
        Runs finished in this call (ok or failed).
    failed : list of str
        ``"label: error"`` of every failed run of the sweep.
    skipped_files : list of Path
        Non-image files met in the folders.
    missing_images : list of str
        Paper images not found (default image set only).
    pending : int
        Runs of the sweep not finished (after Ctrl-C).
    interrupted : bool
        Ctrl-C ended the call.
    elapsed_s : float
        Wall-clock seconds of this call.
    files : list of Path
        Report files written.
    """

    out: Path
    total: int = 0
    resumed: int = 0
    ran: int = 0
    failed: list[str] = field(default_factory=list)
    skipped_files: list[Path] = field(default_factory=list)
    missing_images: list[str] = field(default_factory=list)
    pending: int = 0
    interrupted: bool = False
    elapsed_s: float = 0.0
    files: list[Path] = field(default_factory=list)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run_experiment(
    inputs: Sequence[str | os.PathLike[str]] | None,
    out: str | os.PathLike[str],
    *,
    methods: Sequence[str] = METHODS,
    budgets: Sequence[int] = DEFAULT_BUDGETS,
    params: Params | None = None,
    workers: int = 1,
    dask_scheduler: Any = None,
    threads: int | None = None,
    max_size: int | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> ExperimentSummary:
    """Run the sweep, resuming from ``out``, and write the report.

    Parameters
    ----------
    inputs : sequence of paths or None
        Image files and folders; None or empty: the paper's four images.
    out : path
        Output folder (created).
    methods, budgets : sequences
        Methods (``"edge"``, ``"grid"``) and kernel budgets.
    params : Params, optional
        Parameters of every run (``time_budget`` is each fit's budget).
    workers : int
        1: run in this process; more: that many local processes (spawn).
    dask_scheduler : str or object, optional
        Address of a Dask scheduler (or anything ``distributed.Client``
        accepts, e.g. a ``LocalCluster``): run the jobs there instead.
    threads : int, optional
        Torch threads per run; default: all cores in this process, cores //
        workers in local processes, 1 on Dask (one run per Dask worker thread).
    max_size : int, optional
        Downscale images whose longer side exceeds it.
    progress : Progress, optional
    log : callable, optional
        Receives one-line notes (missing images, ...); default: ``progress``'s stream.

    Returns
    -------
    ExperimentSummary
        ``interrupted`` is True after Ctrl-C; finished runs are saved either way.

    Raises
    ------
    ValueError
        For bad arguments, no images, an unreachable scheduler.
    """
    started = time.monotonic()
    params = params if params is not None else Params()
    methods = tuple(methods)
    budgets = tuple(budgets)
    if not methods:
        raise ValueError("no methods to run")
    for method in methods:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; known methods: {', '.join(METHODS)}")
    if not budgets or any(int(b) < 2 for b in budgets):
        raise ValueError("kernel budgets must be whole numbers of at least 2")
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    progress = progress if progress is not None else Progress()
    say = log if log is not None else progress._print
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: exists and is not a folder")

    summary = ExperimentSummary(out=out_dir)
    if inputs:
        paths, summary.skipped_files = collect_images(inputs)
        if not paths:
            raise ValueError("no image files found in " + ", ".join(str(p) for p in inputs))
    else:
        paths, summary.missing_images = default_images()
        if summary.missing_images:
            paper, samples = default_image_folders()
            say(
                f"paper images not found: {', '.join(summary.missing_images)} (looked in {paper} "
                f"and {samples}); running {', '.join(p.stem for p in paths) or 'nothing'}"
            )
        if not paths:
            raise ValueError("none of the paper's images were found; give images or folders")
    out_dir.mkdir(parents=True, exist_ok=True)

    cores = _cpu_count()
    if threads is None:
        if dask_scheduler is not None:
            threads = 1
        elif workers > 1:
            threads = max(1, cores // workers)
        else:
            threads = 0
    sources = load_sources(paths, max_size=max_size)
    payloads = load_records(out_dir)
    done_keys = finished_keys(payloads.values())
    jobs = plan_jobs(
        sources, methods, budgets, params, threads=threads, skip=done_keys.__contains__, log=say
    )
    todo = [job for job in jobs if job.key not in done_keys]
    summary.total = len(jobs)
    summary.resumed = len(jobs) - len(todo)
    if summary.resumed:
        say(f"resuming: {summary.resumed} of {len(jobs)} run(s) already finished in {out_dir}")

    def on_done(output: RunOutput) -> None:
        save_run(out_dir, output)
        payloads[output.record["run_id"]] = {"record": output.record}
        fileio.write_text(out_dir / "results.csv", csv_text(_rows_for(jobs, payloads)))
        summary.ran += 1
        progress.job_finished(output.record)

    fileio.write_text(out_dir / "results.csv", csv_text(_rows_for(jobs, payloads)))
    progress.start(len(todo), workers, params.time_budget + 2.0)
    try:
        # runs that cannot start (unreadable image, impossible budget) are recorded at once
        runnable = []
        for job in todo:
            if job.error is not None:
                on_done(run_job(job))
            else:
                runnable.append(job)
        if runnable:
            if dask_scheduler is not None:
                _run_dask(runnable, dask_scheduler, on_done)
            elif workers > 1:
                _run_processes(runnable, workers, threads, on_done)
            else:
                _set_threads(threads)
                _run_serial(runnable, on_done, progress)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        progress.close()

    payloads = load_records(out_dir)
    rows = _rows_for(jobs, payloads)
    summary.failed = [f"{r['image']} {r['method']} {r['budget']}: {r['error']}" for r in rows if r["status"] != "ok"]
    summary.pending = len(jobs) - len(rows)
    summary.elapsed_s = time.monotonic() - started
    meta = {
        "methods": list(methods),
        "budgets": [int(b) for b in budgets],
        "params": params,
        "workers": workers,
        "dask_scheduler": None if dask_scheduler is None else str(getattr(dask_scheduler, "scheduler_address", dask_scheduler)),
        "threads": threads,
        "elapsed_s": summary.elapsed_s,
        "skipped_files": [str(p) for p in summary.skipped_files],
        "missing_images": summary.missing_images,
        "sources": sources,
        "interrupted": summary.interrupted,
        "pending": summary.pending,
    }
    try:
        summary.files = write_report(out_dir, jobs, payloads, meta)
    except KeyboardInterrupt:
        summary.interrupted = True
    return summary


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------
def machine_info() -> dict[str, str]:
    """Platform, CPU, core count and library versions of this machine."""
    import numpy

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": str(_cpu_count()),
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
    from .. import __version__

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


def compare_runs(edge: dict[str, Any], grid: dict[str, Any], tol_db: float = CONVERGE_TOL_DB) -> Comparison:
    """Compare two stored runs (payloads with ``record`` and ``history``)."""
    er, gr = edge["record"], grid["record"]
    target = float(gr["psnr_db"]) - tol_db

    def reach(payload: dict[str, Any]) -> float | None:
        hist = payload.get("history", {})
        t = first_time_reaching(hist.get("t", []), hist.get("psnr", []), target)
        return None if t is None else t + float(payload["record"]["init_s"])

    grid_time = reach(grid)
    if grid_time is None:
        grid_time = float(gr["init_s"]) + float(gr["converge_s"])
    return Comparison(str(er["image"]), int(er["budget"]), float(er["psnr_db"]), float(gr["psnr_db"]), reach(edge), grid_time)


def _figure(n_panels: int, panel_w: float = 4.2, panel_h: float = 3.2, cols: int | None = None) -> tuple[Any, list[Any]]:
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


_STYLE = {"edge": {"color": "tab:red", "marker": "o"}, "grid": {"color": "tab:blue", "marker": "s"}}


def _metric_figure(ok: list[dict[str, Any]], images: list[str], methods: Sequence[str], column: str, ylabel: str, title: str, path: Path) -> None:
    fig, axes = _figure(len(images))
    for ax, image in zip(axes, images, strict=True):
        for method in methods:
            pts = sorted(
                (int(r["final_kernels"]), float(r[column]), int(r["budget"]))
                for r in ok if r["image"] == image and r["method"] == method
            )
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=method, **_STYLE[method])
        ax.set_title(image)
        ax.set_xlabel("kernels (final)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    _save_figure(fig, path)


def _time_figure(ok: list[dict[str, Any]], images: list[str], methods: Sequence[str], budgets: Sequence[int], path: Path) -> None:
    fig, axes = _figure(len(budgets), panel_w=max(4.2, 1.3 * len(images) + 1.5))
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
            color = _STYLE[method]["color"]
            ax.bar(pos, conv, width, bottom=init, color=color, label=f"{method}: fit to convergence")
            ax.bar(pos, init, width, color=color, alpha=0.45, hatch="//", label=f"{method}: initialisation")
        ax.set_xticks(x, images, rotation=20)
        ax.set_ylabel("time (s)")
        ax.set_title(f"budget {budget} kernels")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"Time to converge (PSNR within {CONVERGE_TOL_DB:g} dB of final; cf. paper Fig. 6)")
    _save_figure(fig, path)


def _expert_figure(ok_payloads: list[dict[str, Any]], images: list[str], methods: Sequence[str], budgets: Sequence[int], path: Path) -> None:
    fig, axes = _figure(len(images))
    styles = ["-", "--", ":", "-."]
    for ax, image in zip(axes, images, strict=True):
        for payload in ok_payloads:
            r = payload["record"]
            if r["image"] != image or not payload.get("expert_psnr"):
                continue
            b = int(r["budget"])
            style = styles[list(budgets).index(b) % len(styles)] if b in budgets else "-"
            values = payload["expert_psnr"]
            ax.plot(range(len(values)), values, style, color=_STYLE[r["method"]]["color"], label=f"{r['method']} {b}")
        ax.set_title(image)
        ax.set_xlabel("refinement iteration (0: sampled)")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("Expert initialisation: PSNR per refinement iteration (cf. paper Fig. 3)")
    _save_figure(fig, path)


def _history_figure(ok_payloads: list[dict[str, Any]], images: list[str], budgets: Sequence[int], path: Path) -> None:
    fig, axes = _figure(len(images))
    styles = ["-", "--", ":", "-."]
    for ax, image in zip(axes, images, strict=True):
        for payload in ok_payloads:
            r = payload["record"]
            if r["image"] != image:
                continue
            b = int(r["budget"])
            style = styles[list(budgets).index(b) % len(styles)] if b in budgets else "-"
            t = np.asarray(payload["history"]["t"], dtype=float) + float(r["init_s"])
            p = np.asarray(payload["history"]["psnr"], dtype=float)
            color = _STYLE[r["method"]]["color"]
            # the initial model (hollow marker), then the whole-image PSNR from the merge
            # on; the tile phase in between reports per-tile PSNR only and is left blank
            ax.plot(t[:1], p[:1], _STYLE[r["method"]]["marker"], color=color, fillstyle="none")
            ax.plot(t[1:], p[1:], style, color=color, label=f"{r['method']} {b}")
        ax.set_title(image)
        ax.set_xlabel("time since start of run (s, initialisation included)")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("Whole-image PSNR during training (marker: initial model; the tile phase is not shown)")
    _save_figure(fig, path)


def _placement_figure(out: Path, pair: tuple[dict[str, Any], dict[str, Any]], image: NDArray[np.float32], path: Path) -> None:
    from matplotlib.collections import EllipseCollection

    from .model import ellipse_axes
    from .modelio import load_model

    fig, axes = _figure(4, panel_w=5.0, panel_h=5.0 * image.shape[0] / image.shape[1] + 0.5, cols=2)
    for col, payload in enumerate(pair):
        r = payload["record"]
        model = load_model(_runs_dir(out) / f"{r['run_id']}.init.npz")
        ax = axes[col]
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ell = ellipse_axes(model)
        finite = np.isfinite(ell).all(axis=1)
        coll = EllipseCollection(
            widths=2 * ell[finite, 0], heights=2 * ell[finite, 1], angles=ell[finite, 2], units="xy",
            offsets=model.mu[finite], offset_transform=ax.transData, facecolors="none",
            edgecolors=_STYLE[r["method"]]["color"], linewidths=0.5,
        )
        ax.add_collection(coll)
        ax.plot(model.mu[:, 0], model.mu[:, 1], ".", color="yellow", markersize=1.5)
        ax.set_xlim(-0.5, image.shape[1] - 0.5)
        ax.set_ylim(image.shape[0] - 0.5, -0.5)
        ax.set_title(f"{r['method']}: {model.n_kernels} initial kernels (1-σ ellipses)")
        ax.set_axis_off()
        rec_ax = axes[2 + col]
        recon_path = _runs_dir(out) / f"{r['run_id']}.png"
        if recon_path.is_file():
            from .image import load_image

            rec_ax.imshow(load_image(recon_path), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        rec_ax.set_title(f"{r['method']}: after training, {r['final_kernels']} kernels, {float(r['psnr_db']):.2f} dB")
        rec_ax.set_axis_off()
    fig.suptitle(f"Kernel placement on {pair[0]['record']['image']}, budget {pair[0]['record']['budget']} (cf. paper Fig. 7)")
    _save_figure(fig, path)


def _fmt(value: Any, digits: int) -> str:
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def write_report(out: Path, jobs: Sequence[Job], payloads: dict[str, dict[str, Any]], meta: dict[str, Any]) -> list[Path]:
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
        ``interrupted``, ``pending``, ``dask_scheduler``.
    """
    written: list[Path] = []
    rows = _rows_for(jobs, payloads)
    fileio.write_text(out / "results.csv", csv_text(rows))
    written.append(out / "results.csv")
    methods: list[str] = list(meta["methods"])
    budgets: list[int] = list(meta["budgets"])
    ok = [r for r in rows if r["status"] == "ok"]
    ok_payloads = [payloads[r["run_id"]] for r in ok]
    images = list(dict.fromkeys(r["image"] for r in ok))
    figures: list[tuple[str, str]] = []
    if ok:
        specs = [
            ("fig5_psnr_vs_kernels.png", "PSNR against the number of kernels (cf. paper Fig. 5)",
             lambda p: _metric_figure(ok, images, methods, "psnr_db", "PSNR (dB)", "PSNR against kernels (cf. paper Fig. 5)", p)),
            ("fig5_ssim_vs_kernels.png", "SSIM against the number of kernels",
             lambda p: _metric_figure(ok, images, methods, "ssim", "SSIM", "SSIM against kernels", p)),
            ("fig6_time_to_converge.png", "Time to converge per image and method (cf. paper Fig. 6)",
             lambda p: _time_figure(ok, images, methods, budgets, p)),
            ("fig3_expert_psnr.png", "Expert-initialisation PSNR per iteration (cf. paper Fig. 3)",
             lambda p: _expert_figure(ok_payloads, images, methods, budgets, p)),
            ("psnr_vs_time.png", "Whole-image PSNR against time",
             lambda p: _history_figure(ok_payloads, images, budgets, p)),
        ]
        for name, caption, draw in specs:
            draw(out / name)
            figures.append((name, caption))
        pair = _placement_pair(ok_payloads, budgets)
        if pair is not None:
            source = next((s for s in meta.get("sources", []) if s.name == pair[0]["record"]["image"]), None)
            if source is not None and source.image is not None:
                _placement_figure(out, pair, source.image, out / "fig7_kernel_placement.png")
                figures.append(("fig7_kernel_placement.png", "Kernel placements of both methods (cf. paper Fig. 7)"))
    written.extend(out / name for name, _ in figures)

    comparisons = []
    for image in images:
        for budget in budgets:
            edge = next((p for p in ok_payloads if p["record"]["image"] == image and p["record"]["method"] == "edge" and int(p["record"]["budget"]) == budget), None)
            grid = next((p for p in ok_payloads if p["record"]["image"] == image and p["record"]["method"] == "grid" and int(p["record"]["budget"]) == budget), None)
            if edge is not None and grid is not None:
                comparisons.append(compare_runs(edge, grid))

    fileio.write_text(out / "results.md", _markdown(rows, comparisons, figures, meta, budgets))
    written.append(out / "results.md")
    return written


def _placement_pair(ok_payloads: list[dict[str, Any]], budgets: Sequence[int]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    for budget in sorted(budgets):
        for payload in ok_payloads:
            r = payload["record"]
            if r["method"] != "edge" or int(r["budget"]) != budget:
                continue
            grid = next((p for p in ok_payloads if p["record"]["method"] == "grid" and p["record"]["image"] == r["image"] and int(p["record"]["budget"]) == budget), None)
            if grid is not None:
                return payload, grid
    return None


def _markdown(rows: list[dict[str, Any]], comparisons: list[Comparison], figures: list[tuple[str, str]], meta: dict[str, Any], budgets: Sequence[int]) -> str:
    params: Params = meta["params"]
    info = machine_info()
    lines = ["# SMoE initialisation experiment", ""]
    if meta.get("interrupted") or meta.get("pending"):
        lines += [f"**Incomplete:** {meta.get('pending', 0)} run(s) have not finished; re-run the same command to resume.", ""]
    lines += [
        "## Settings", "",
        f"- methods: {', '.join(meta['methods'])}; kernel budgets: {', '.join(str(b) for b in budgets)}",
        f"- time budget per fit: {params.time_budget:g} s; step cap: {params.max_steps}; parameter hash `{params.digest()}`",
        f"- execution: {'Dask scheduler ' + str(meta['dask_scheduler']) if meta.get('dask_scheduler') else str(meta['workers']) + ' local worker(s)'}"
        + (f", {meta['threads']} torch thread(s) per run" if meta.get("threads") else ""),
        f"- wall-clock time of this invocation: {meta['elapsed_s']:.0f} s ({_clock(meta['elapsed_s'])})",
        f"- sum of run times: {sum(float(r['wall_s'] or 0) for r in rows):.0f} s",
        f"- images: {', '.join(f'{s.name} ({s.path})' for s in meta.get('sources', []))}",
    ]
    changed = {k: v for k, v in params.to_dict().items() if v != Params().to_dict()[k]}
    if changed:
        lines.append("- parameters changed from the defaults: " + ", ".join(f"`{k}={v}`" for k, v in changed.items()))
    if meta.get("missing_images"):
        lines.append(f"- paper images not found (not run): {', '.join(meta['missing_images'])}")
    lines += ["", "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += ["", "## Results", "",
              "| image | method | budget | initial kernels | final kernels | PSNR (dB) | SSIM | time to converge (s) | init (s) | fit (s) | steps | status |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        status = r["status"] if r["status"] == "ok" else f"failed: {r['error']}"
        lines.append(
            f"| {r['image']} | {r['method']} | {r['budget']} | {r['init_kernels']} | {r['final_kernels']} | "
            f"{_fmt(r['psnr_db'], 2)} | {_fmt(r['ssim'], 4)} | {_fmt(r['converge_s'], 1)} | {_fmt(r['init_s'], 2)} | "
            f"{_fmt(r['fit_s'], 1)} | {r['steps']} | {status.replace('|', '/')} |"
        )
    lines += ["", f"Time to converge: fit time until the whole-image PSNR first came within {CONVERGE_TOL_DB:g} dB of its final value.", ""]
    if comparisons:
        lines += ["## Edge against grid", "",
                  f"\"Sooner\": time from the start of the run (initialisation included) until the PSNR first reached the grid's final PSNR minus {CONVERGE_TOL_DB:g} dB.", "",
                  "| image | budget | edge PSNR | grid PSNR | gain (dB) | edge reaches grid's final PSNR at (s) | grid at (s) | edge sooner |",
                  "|---|---:|---:|---:|---:|---:|---:|---|"]
        for c in comparisons:
            lines.append(
                f"| {c.image} | {c.budget} | {c.edge_psnr:.2f} | {c.grid_psnr:.2f} | {c.edge_psnr - c.grid_psnr:+.2f} | "
                f"{'never' if c.edge_time_s is None else f'{c.edge_time_s:.1f}'} | {c.grid_time_s:.1f} | {'yes' if c.edge_sooner else 'no'} |"
            )
        lines += [""]
        for budget in budgets:
            at = [c for c in comparisons if c.budget == budget]
            if not at:
                continue
            better = [c.image for c in at if c.edge_better]
            sooner = [c.image for c in at if c.edge_sooner]
            n = len(at)
            claim = len(better) >= math.ceil(0.75 * n) and len(sooner) == n
            lines.append(
                f"- budget {budget}: edge beats grid in PSNR on {len(better)} of {n} image(s)"
                f"{' (' + ', '.join(better) + ')' if better else ''}; reaches the grid's final PSNR sooner on "
                f"{len(sooner)} of {n}{' (' + ', '.join(sooner) + ')' if sooner else ''}. "
                f"Paper's claim (edge better on at least 3 of 4, and sooner): {'holds' if claim else 'does not hold'}."
            )
        lines.append("")
    if figures:
        lines += ["## Figures", ""]
        for name, caption in figures:
            lines += [f"### {caption}", "", f"![{caption}]({name})", ""]
    if meta.get("skipped_files"):
        lines += ["## Skipped files (not images)", ""] + [f"- {p}" for p in meta["skipped_files"]] + [""]
    lines += ["Per-run data: `runs/<run_id>.json` (row, PSNR history, expert PSNR, notes), "
              "`runs/<run_id>.init.npz` / `.model.npz` (initial / final model), `runs/<run_id>.png` (reconstruction).", ""]
    return "\n".join(lines)
