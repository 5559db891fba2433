"""The search space of a tuning study: parameter ranges, grids, Optuna distributions.

A range reads ``NAME=LOW:HIGH`` or ``NAME=LOW:HIGH:STEPS`` (the command line's
``--param``).  ``NAME`` is a numeric row of the parameter table
(:data:`smoe_gui.core.params.PARAM_SPECS`); ``LOW`` and ``HIGH`` lie in the
table's range, ``LOW <= HIGH``; ``STEPS`` (2 or more) is the number of grid
points, evenly spaced (on a log scale for the table's log-scale parameters).
Qt-free; errors are one-line :class:`ValueError` s worded without flags.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..params import ParamSpec, spec

__all__ = [
    "DEFAULT_GRID_STEPS",
    "GRID_SAMPLER",
    "MAX_GRID_PARAMS",
    "MAX_GRID_TRIALS",
    "ParamRange",
    "default_range",
    "distributions",
    "grid_points",
    "parse_range",
]

#: The grid sampler's name (every point of 1-2 parameters; a sampler, not the grid method).
GRID_SAMPLER = "grid"
#: Grid points of a parameter whose range gives no ``STEPS``.
DEFAULT_GRID_STEPS = 5
#: A grid sweeps one or two parameters (a curve or a heat map).
MAX_GRID_PARAMS = 2
#: Most trials a grid may hold (a bigger one is a search's job).
MAX_GRID_TRIALS = 400

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class ParamRange:
    """One tuned parameter.

    Attributes
    ----------
    name : str
        Its row of the parameter table.
    low, high : float
        Inclusive bounds, within the table's range, ``low <= high`` (unit: the table's).
    steps : int or None
        Grid points (None: :data:`DEFAULT_GRID_STEPS` in a grid; ignored by a search).
    """

    name: str
    low: float
    high: float
    steps: int | None = None

    @property
    def spec(self) -> ParamSpec:
        """The parameter's row of the table."""
        return spec(self.name)

    @property
    def is_int(self) -> bool:
        """Whether the parameter takes whole numbers."""
        return self.spec.kind is int

    @property
    def log(self) -> bool:
        """Whether values spread on a log scale (the table's ``log_scale`` and ``low > 0``)."""
        return bool(self.spec.log_scale) and self.low > 0

    def text(self) -> str:
        """``NAME=LOW:HIGH[:STEPS]``, readable by :func:`parse_range`."""
        steps = "" if self.steps is None else f":{self.steps}"
        return f"{self.name}={self.low:g}:{self.high:g}{steps}"

    def points(self) -> list[float | int]:
        """The grid values, ascending, without repeats (whole numbers for an int parameter)."""
        n = self.steps if self.steps is not None else DEFAULT_GRID_STEPS
        if self.low == self.high:
            n = 1
        if self.log:
            a, b = math.log(self.low), math.log(self.high)
            raw = [math.exp(a + (b - a) * i / (n - 1)) for i in range(n)] if n > 1 else [self.low]
        else:
            raw = [self.low + (self.high - self.low) * i / (n - 1) for i in range(n)] if n > 1 \
                else [self.low]
        raw[-1] = self.high if n > 1 else raw[-1]
        values: list[float | int] = []
        for v in raw:
            value: float | int = int(round(v)) if self.is_int else float(f"{v:.6g}")
            if value not in values:
                values.append(value)
        return values


def _number(text: str, what: str, name: str) -> float:
    if not _NUMBER.match(text.strip()):
        raise ValueError(f"parameter '{name}': {what} {text!r} is not a number")
    return float(text)


def parse_range(text: str) -> ParamRange:
    """A :class:`ParamRange` from ``NAME=LOW:HIGH[:STEPS]``, checked against the table.

    Raises
    ------
    ValueError
        One line: the text does not read so, an unknown parameter, a parameter
        that is not numeric, a non-numeric bound, ``LOW > HIGH``, a bound outside
        the table's range, a non-whole bound of a whole-number parameter, or
        ``STEPS`` below 2 or not a whole number.
    """
    name, sep, rest = str(text).partition("=")
    name = name.strip()
    parts = rest.split(":")
    if not sep or not name or len(parts) not in (2, 3):
        raise ValueError(f"a parameter range must read NAME=LOW:HIGH or NAME=LOW:HIGH:STEPS, "
                         f"got {text!r}")
    row = spec(name)
    if row.kind not in (int, float):
        raise ValueError(f"parameter '{name}' is {row.range_text()}, not a number; "
                         "set it with --set instead of tuning it")
    low = _number(parts[0], "low bound", name)
    high = _number(parts[1], "high bound", name)
    if low > high:
        raise ValueError(f"parameter '{name}': low bound {low:g} is above high bound {high:g}")
    for bound in (low, high):
        if not (row.low <= bound <= row.high):
            raise ValueError(f"parameter '{name}': {bound:g} is outside its range "
                             f"{row.range_text()}")
        if row.kind is int and bound != round(bound):
            raise ValueError(f"parameter '{name}': {bound:g} is not a whole number")
    steps: int | None = None
    if len(parts) == 3:
        if not re.fullmatch(r"\s*\d+\s*", parts[2]) or int(parts[2]) < 2:
            raise ValueError(f"parameter '{name}': steps {parts[2]!r} must be a whole number of "
                             "at least 2")
        steps = int(parts[2])
    return ParamRange(name, low, high, steps)


def default_range(name: str) -> ParamRange:
    """The range a window offers first for parameter ``name``: the table's range,
    narrowed to ``[default/4, default*4]`` for a log-scale parameter (its table
    range spans orders of magnitude no fit budget explores).

    Raises
    ------
    ValueError
        For an unknown or non-numeric parameter.
    """
    row = spec(name)
    if row.kind not in (int, float):
        raise ValueError(f"parameter '{name}' is {row.range_text()}, not a number")
    low, high = row.low, row.high
    default = float(row.default)  # type: ignore[arg-type]
    if row.log_scale and default > 0:
        low, high = max(low, default / 4.0), min(high, default * 4.0)
    if row.kind is int:
        low, high = float(math.ceil(low)), float(math.floor(high))
    return ParamRange(name, low, high)


def check_ranges(ranges: Sequence[ParamRange]) -> None:
    """Reject an empty list or a parameter named twice.

    Raises
    ------
    ValueError
    """
    if not ranges:
        raise ValueError("no parameter to tune (give at least one NAME=LOW:HIGH)")
    names = [r.name for r in ranges]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"parameter '{name}' is given twice")


def grid_points(
    ranges: Sequence[ParamRange], max_trials: int = MAX_GRID_TRIALS,
) -> list[dict[str, Any]]:
    """Every point of the grid over ``ranges``, the first parameter slowest.

    Raises
    ------
    ValueError
        For more than :data:`MAX_GRID_PARAMS` parameters or more than ``max_trials`` points.
    """
    check_ranges(ranges)
    if len(ranges) > MAX_GRID_PARAMS:
        raise ValueError(f"a grid sweeps 1 or 2 parameters, got {len(ranges)}; "
                         "use the tpe sampler for more")
    axes = [r.points() for r in ranges]
    count = math.prod(len(a) for a in axes)
    if count > max_trials:
        raise ValueError(f"the grid has {count} points, more than the {max_trials} trials allowed "
                         f"(a grid holds at most {MAX_GRID_TRIALS}); give fewer steps")
    return [dict(zip([r.name for r in ranges], combo, strict=True))
            for combo in itertools.product(*axes)]


def distributions(ranges: Sequence[ParamRange]) -> dict[str, Any]:
    """Optuna distributions of the ranges (int or float, log where :attr:`ParamRange.log`)."""
    import optuna

    out: dict[str, Any] = {}
    for r in ranges:
        if r.is_int:
            out[r.name] = optuna.distributions.IntDistribution(int(r.low), int(r.high), log=r.log)
        else:
            out[r.name] = optuna.distributions.FloatDistribution(r.low, r.high, log=r.log)
    return out
