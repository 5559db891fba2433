"""Planning a sweep: the images, the (image, method, kernel budget) jobs and their budgets.

Qt-free.  Each job's parameters come from the one kernel-budget planner,
:func:`smoe_gui.core.methods.budget.plan_budget`; the grid baseline gets the edge
method's plan, so both start with the same number of kernels.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..io.image import IMAGE_SUFFIXES
from ..methods.budget import KernelPlan, plan_budget
from ..params import METHODS, Params
from .store import COLUMNS, record_key

__all__ = [
    "DEFAULT_BUDGETS",
    "PAPER_IMAGES",
    "ImageSource",
    "Job",
    "collect_images",
    "default_image_folders",
    "default_images",
    "load_sources",
    "make_run_id",
    "parse_budgets",
    "parse_methods",
    "plan_jobs",
    "rows_for",
]

#: Kernel budgets of the default sweep (the paper's Fig. 5 range).
DEFAULT_BUDGETS = (500, 1000, 2000)
#: The paper's four test images (section IV), looked up by file stem.
PAPER_IMAGES = ("peppers", "barbara", "parrots", "flowers")


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
        raise ValueError("no kernel budgets given (expected whole numbers, e.g. 500,1000,2000)")
    budgets: set[int] = set()
    for item in items:
        if not re.fullmatch(r"\+?\d+", item):
            raise ValueError(
                f"kernel budget {item!r} is not a positive whole number of kernels (expected e.g. "
                "500,1000,2000)"
            )
        value = int(item)
        if value < 2:
            raise ValueError(f"a kernel budget of {value} is too few; a budget must be at least 2")
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
            raise ValueError(f"unknown method {shown!r}; known methods: {', '.join(METHODS)}")
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
    for suffix in IMAGE_SUFFIXES:
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


def collect_images(
    inputs: Iterable[str | os.PathLike[str]],
    outputs: Path | None = None,
) -> tuple[list[Path], list[Path]]:
    """Image files from files and folders, and the non-image files skipped.

    A folder is scanned (not recursively, sorted by name) for regular files
    whose suffix is in :data:`IMAGE_SUFFIXES`; other files are skipped and
    returned.  A file named explicitly is taken as an image whatever its suffix
    (a file that does not decode fails as a run, with its error).

    Parameters
    ----------
    inputs : paths
    outputs : Path, optional
        The sweep's output folder: what the sweep wrote there (its ``runs``
        folder, the report files listed by
        :func:`~smoe_gui.core.experiment.store.record_outputs`) is never taken
        as an input, also when ``outputs`` is one of the input folders.

    Raises
    ------
    ValueError
        For a path that does not exist, that is a FIFO, device or socket, or that
        is one of the sweep's outputs.
    """
    from ..limits import file_kind
    from .store import recorded_outputs, runs_dir

    out_root = outputs.resolve() if outputs is not None and outputs.is_dir() else None
    produced: set[Path] = set()
    if out_root is not None:
        produced = {out_root / name for name in recorded_outputs(out_root)}

    def is_output(path: Path) -> bool:
        if out_root is None:
            return False
        resolved = path.resolve()
        return resolved in produced or resolved.is_relative_to(runs_dir(out_root))

    images: list[Path] = []
    skipped: list[Path] = []
    seen: set[Path] = set()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if not child.is_file() or child.name.startswith(".") or is_output(child):
                    continue
                if child.suffix.lower() in IMAGE_SUFFIXES:
                    if child.resolve() not in seen:
                        seen.add(child.resolve())
                        images.append(child)
                else:
                    skipped.append(child)
        elif path.is_file():
            if is_output(path):
                raise ValueError(
                    f"{path}: written by this sweep into its output folder, not an input"
                )
            if path.resolve() not in seen:
                seen.add(path.resolve())
                images.append(path)
        elif path.exists():
            raise ValueError(f"{path}: is {file_kind(path.stat().st_mode)}, not an image file")
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


def load_sources(
    paths: Sequence[Path],
    max_size: int | None = None,
    on_message: Callable[[str], None] | None = None,
    channels: str = "gray",
) -> list[ImageSource]:
    """Load every image (gray, or RGB for ``channels="rgb"``, the parameter of that
    name); a file that fails is kept with its error.

    ``on_message`` receives the loader's one-line messages (a data range mapped to
    [0, 1], a downscale); see :func:`smoe_gui.core.io.image.load_image`.
    """
    from ..io.image import load_image

    sources = []
    for path, name in zip(paths, _unique_names(paths), strict=True):
        try:
            sha = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        except OSError as exc:
            sources.append(
                ImageSource(name, path, "-", None, f"{path}: cannot read ({exc.strerror or exc})")
            )
            continue
        try:
            image = load_image(path, max_size=max_size, channels=channels, on_message=on_message)
        except ValueError as exc:
            sources.append(ImageSource(name, path, sha, None, str(exc)))
            continue
        sources.append(ImageSource(name, path, sha, image))
    return sources


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
        One of :data:`METHODS`.
    budget : int
        Kernel budget.
    params : Params
        The run's parameters (the sweep's, with ``max_pts`` and
        ``background_spacing`` set by the kernel-budget plan).
    params_hash : str
        Digest of the sweep's parameters (resume key).
    target_kernels : int
        Initial kernel count the plan found (checked when the job runs).
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
            image=self.image_name,
            method=self.method,
            budget=self.budget,
            time_budget_s=self.params.time_budget,
            max_pts=self.params.max_pts,
            background_spacing=self.params.background_spacing,
            params_hash=self.params_hash,
            image_sha=self.image_sha,
            run_id=self.run_id,
            status="failed",
            error="",
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
    """Every (image, budget, method) job, each with its kernel budget planned.

    Each method's parameters come from :func:`smoe_gui.core.methods.budget.plan_budget`
    (the grid baseline's plan is the edge plan: both start with the same number
    of kernels).  ``skip(key)`` true marks a finished run: its budget is not
    planned again.  ``log`` receives a line per image whose budgets are planned.
    A plan that fails (a budget too small for the image) or an image that did
    not load gives jobs with ``error`` set: they are recorded as failed runs.
    """
    digest = params.digest()
    jobs: list[Job] = []
    for src in sources:
        if (
            log is not None
            and src.image is not None
            and any(
                skip is None or not skip((src.sha, m, b, digest)) for m in methods for b in budgets
            )
        ):
            log(f"planning the kernel budgets of {src.name} ...")
        for budget in budgets:
            for method in methods:
                todo = skip is None or not skip((src.sha, method, budget, digest))
                plan: KernelPlan | None = None
                error = src.error
                if todo and error is None and src.image is not None:
                    try:
                        plan = plan_budget(src.image, params, method, budget)
                    except ValueError as exc:
                        error = str(exc)
                jobs.append(
                    Job(
                        run_id=make_run_id(src.name, method, budget, digest),
                        image_name=src.name,
                        image_sha=src.sha,
                        method=method,
                        budget=budget,
                        params=params if plan is None else plan.params,
                        params_hash=digest,
                        target_kernels=budget if plan is None else plan.n_kernels,
                        image=src.image,
                        threads=threads,
                        error=error,
                    )
                )
    return jobs


def rows_for(jobs: Sequence[Job], payloads: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored rows of ``jobs`` in the sweep's order (runs not finished are left out)."""
    rows = []
    for job in jobs:
        payload = payloads.get(job.run_id)
        if payload is not None and record_key(payload["record"]) == job.key:
            rows.append(payload["record"])
    return rows
