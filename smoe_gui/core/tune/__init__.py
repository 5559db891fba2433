"""Tuning on the trained model: sweeps and searches over the parameters.

Each trial is a full fit (initialise, train, evaluate) through the one run path,
:func:`smoe_gui.core.train.runs.run_fit`; a study lives in Optuna's SQLite
storage in its output folder and resumes after any stop.  See ``docs/tuning.md``.

* :mod:`.space` -- parameter ranges (``NAME=LOW:HIGH[:STEPS]``), grids, distributions;
* :mod:`.trial` -- one trial (:func:`run_trial`) and the median pruning rule;
* :mod:`.study` -- the study file, the trial loop and its executors (:func:`run_tune`);
* :mod:`.outputs` -- ``trials.csv``, ``params.json``, ``best.json``, the figures;
* :mod:`.child` -- a whole study in a spawned child process, read by messages
  (:class:`StudyProcess`, the window's Tune panel).
"""

from __future__ import annotations

from .child import StudyProcess
from .space import ParamRange, default_range, grid_points, parse_range
from .study import (
    OBJECTIVES,
    SAMPLERS,
    STUDY_FILE,
    TuneConfig,
    TuneObserver,
    TuneSummary,
    check_study_file,
    close_study,
    load_trials,
    open_study,
    run_tune,
)
from .trial import TrialJob, TrialOutput, run_trial

__all__ = [
    "OBJECTIVES",
    "SAMPLERS",
    "STUDY_FILE",
    "ParamRange",
    "StudyProcess",
    "TrialJob",
    "TrialOutput",
    "TuneConfig",
    "TuneObserver",
    "TuneSummary",
    "check_study_file",
    "close_study",
    "default_range",
    "grid_points",
    "load_trials",
    "open_study",
    "parse_range",
    "run_tune",
    "run_trial",
]
