"""The paper's section IV experiments as one sweep: every (image, method, kernel budget).

Qt-free.  :func:`run_experiment` plans the jobs, runs them (in this process, in
local worker processes or on a Dask cluster), saves every finished run at once
and writes the report (``results.csv``, ``results.md`` and the figures).  The
``smoe experiment`` command is a thin layer over it.  One module per role:

``plan``
    images, jobs and their kernel budgets (:mod:`smoe_gui.core.methods.budget` plans
    each budget).
``run``
    running one job and the executors; :func:`run_experiment`; progress goes
    to a :class:`SweepObserver`.
``store``
    the runs on disk (one file set per finished run, resumable) and
    ``results.csv``.
``claims``
    the paper's claims tested on a sweep's runs (:func:`paper_claims`).
``report``
    the matplotlib figures, ``results.md`` and ``claims.json``.

Definitions and file layout: ``docs/experiments.md``.
"""

from __future__ import annotations

from .claims import Claim, paper_claims
from .curves import CONVERGE_TOL_DB, first_time_reaching, time_to_converge
from .plan import (
    DEFAULT_BUDGETS,
    PAPER_IMAGES,
    ImageSource,
    Job,
    collect_images,
    default_image_folders,
    default_images,
    load_sources,
    make_run_id,
    parse_budgets,
    parse_methods,
    plan_jobs,
)
from .report import Comparison, compare_runs, machine_info, write_report
from .run import (
    DASK_CONNECT_TIMEOUT_S,
    ExperimentSummary,
    SweepObserver,
    run_experiment,
    run_job,
)
from .store import (
    COLUMNS,
    TIMING_COLUMNS,
    RunOutput,
    csv_text,
    finished_keys,
    load_records,
    save_run,
)

__all__ = [
    "COLUMNS",
    "CONVERGE_TOL_DB",
    "DASK_CONNECT_TIMEOUT_S",
    "DEFAULT_BUDGETS",
    "PAPER_IMAGES",
    "TIMING_COLUMNS",
    "Claim",
    "Comparison",
    "ExperimentSummary",
    "ImageSource",
    "Job",
    "RunOutput",
    "SweepObserver",
    "collect_images",
    "compare_runs",
    "csv_text",
    "default_image_folders",
    "default_images",
    "finished_keys",
    "first_time_reaching",
    "load_records",
    "load_sources",
    "machine_info",
    "make_run_id",
    "paper_claims",
    "parse_budgets",
    "parse_methods",
    "plan_jobs",
    "run_experiment",
    "run_job",
    "save_run",
    "time_to_converge",
    "write_report",
]
