"""Every parameter of smoe-gui in one table.

The table :data:`PARAM_SPECS` gives each parameter its type, default, allowed
range, unit, a one-line explanation and the place in the paper (Determann &
Fleig, "Edge-aligned initialization of kernels for SMoE") it comes from.  The
GUI builds its sliders and tooltips from it, the CLI its ``--set`` names and the
JSON file its keys: one table, three faces.

:class:`Params` is a frozen dataclass with one field per row of the table.  A
value outside its range raises :class:`ValueError` naming the parameter, the
value and the allowed range.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import registry

__all__ = [
    "METHODS", "PARAM_SPECS", "ParamSpec", "Params", "check_method", "param_users", "spec",
]

Value = int | float | bool | str

#: Initialisation methods, the paper's first: the edge-aligned kernels of
#: Determann & Fleig, the regular-grid baseline, S-SMoE (one kernel per DBSCAN
#: superpixel, Li et al., VCIP 2023) and AS-SMoE (per-segment fits with kernel
#: sparsification, Li et al., arXiv 2409.10101), then any method a plug-in
#: registers.  A live view of :func:`smoe_gui.core.registry.names`: the one list
#: every command, experiment and window selector offers.
METHODS: registry.MethodNames = registry.MethodNames()


def check_method(method: object) -> str:
    """``method`` if it is one of :data:`METHODS`.

    Raises
    ------
    ValueError
        One line naming the known methods.
    """
    return registry.get(method).name


@dataclass(frozen=True)
class ParamSpec:
    """One row of the parameter table.

    Attributes
    ----------
    name : str
        Field name in :class:`Params`, key in JSON, name for ``--set``.
    kind : type
        ``int``, ``float``, ``bool`` or ``str`` (a choice among ``choices``).
    default : int | float | bool | str
        Default value.
    low, high : float
        Inclusive range of allowed values (ignored for ``bool``).
    unit : str
        Unit of the value ("px", "1", "steps", "s", ...).
    label : str
        Short human label (with the paper's symbol).
    help : str
        One-line explanation (GUI tooltip, CLI help).
    ref : str
        Paper reference: equation or section.
    group : str
        "edges", "reduction", "placement", "experts", "training", "segments" or
        "general".
    log_scale : bool
        Whether a slider should move on a logarithmic scale.
    choices : tuple of str
        The allowed values of a ``str`` parameter (a GUI combo box, a CLI
        choice); empty for the other kinds.
    effect : str
        What the user sees change in the window when the value goes up (the
        first line of the tooltip and the Help guide's slider table).
    """

    name: str
    kind: type
    default: Value
    low: float
    high: float
    unit: str
    label: str
    help: str
    ref: str
    group: str
    log_scale: bool = False
    choices: tuple[str, ...] = ()
    effect: str = ""

    def range_text(self) -> str:
        """The allowed range as text, e.g. ``[0, 1]``."""
        if self.kind is bool:
            return "true or false"
        if self.kind is str:
            return "one of " + ", ".join(self.choices)
        fmt = (lambda v: str(int(v))) if self.kind is int else (lambda v: f"{v:g}")
        return f"[{fmt(self.low)}, {fmt(self.high)}]"

    def tooltip(self) -> str:
        """Tooltip text: the visible effect, then range with unit, paper
        reference, and the explanation."""
        unit = f" {self.unit}" if self.unit and self.unit != "1" else ""
        lead = f"{self.effect}\n" if self.effect else ""
        return (
            f"{lead}Range {self.range_text()}{unit}; default {self.default}. "
            f"Paper: {self.ref}\n{self.help}"
        )

    def coerce(self, value: Any) -> Value:
        """Convert ``value`` to this parameter's type and check its range.

        Raises
        ------
        ValueError
            Naming the parameter, the value and the allowed range.
        """
        bad = ValueError(
            f"parameter '{self.name}': {value!r} is not allowed; expected "
            f"{self.kind.__name__} in {self.range_text()}"
        )
        if self.kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
                return True
            if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
                return False
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise bad
        if self.kind is str:
            if isinstance(value, str) and value.strip().lower() in self.choices:
                return value.strip().lower()
            raise ValueError(
                f"parameter '{self.name}': {value!r} is not allowed; expected one of "
                f"{', '.join(self.choices)}"
            )
        if isinstance(value, bool):
            raise bad
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise bad from None
        if not isinstance(value, (int, float)):
            raise bad
        number = float(value)
        if not math.isfinite(number):
            raise bad
        if self.kind is int:
            if number != round(number):
                raise bad
            out: Value = int(round(number))
        else:
            out = number
        if not (self.low <= float(out) <= self.high):
            raise bad
        return out


def _p(
    name: str,
    kind: type,
    default: Value,
    low: float,
    high: float,
    unit: str,
    label: str,
    help: str,
    ref: str,
    group: str,
    log_scale: bool = False,
    choices: tuple[str, ...] = (),
) -> ParamSpec:
    return ParamSpec(name, kind, default, low, high, unit, label, help, ref, group, log_scale,
                     choices)


#: The parameter table.  Order is the order of the GUI panel and of the JSON file.
PARAM_SPECS: tuple[ParamSpec, ...] = (
    # --- 1. Canny edges -------------------------------------------------
    _p("canny_sigma", float, 1.5, 0.0, 10.0, "px", "Canny σ",
       "Standard deviation of the Gaussian blur before the gradient; 0 disables the blur.",
       "Sec. III-A (Canny edge detection)", "edges"),
    _p("canny_low", float, 0.1, 0.0, 1.0, "1", "Canny low threshold",
       "Hysteresis low threshold, as a fraction of the maximum gradient magnitude.",
       "Sec. III-A (Canny hysteresis)", "edges"),
    _p("canny_high", float, 0.2, 0.0, 1.0, "1", "Canny high threshold",
       "Hysteresis high threshold, as a fraction of the maximum gradient magnitude.",
       "Sec. III-A (Canny hysteresis)", "edges"),
    # --- 2-3. Segments and their reduction ---------------------------------
    _p("lam", float, 0.1, 0.0, 1.0, "1", "λ",
       "Weight of the other-direction distance in the importance score (1-λ weighs "
       "same-direction).",
       "Eq. (6)-(8), Sec. III-B", "reduction"),
    _p("max_pts", int, 500, 1, 100_000, "segments", "max_pts",
       "Largest number of segments kept after the reduction (each gives a pair of kernels).",
       "Sec. III-B (DBSCAN reduction)", "reduction", True),
    _p("salient_fraction", float, 0.2, 0.0, 1.0, "1", "salient fraction",
       "Fraction of max_pts kept as isolated salient segments, K = round(fraction·max_pts).",
       "Sec. III-B (salient features)", "reduction"),
    # --- 4. Placement ---------------------------------------------------------
    _p("delta_mu", float, 3.0, 0.25, 32.0, "px", "Δμ",
       "Distance between the two kernels of a pair, across the segment; also sets their width.",
       "Sec. III-C (kernel placement)", "placement"),
    _p("segment_steering", float, 1.0, 1.0, 16.0, "1", "segment steering",
       "Edge pairs: each kernel's width along its segment, in units of its width Δμ across it; "
       "1: isotropic Σ (the paper).",
       "Sec. V (future work: steering from the segments); extension", "placement"),
    _p("background_kernels", bool, True, 0, 1, "", "background kernels",
       "Add kernels in flat regions that no edge kernel reaches (a documented extension).",
       "Extension (docs/paper-readings.md)", "placement"),
    _p("background_spacing", float, 24.0, 4.0, 512.0, "px", "background spacing",
       "Grid spacing of background kernels, and the distance to the nearest kernel that triggers "
       "one.",
       "Extension (docs/paper-readings.md)", "placement"),
    # --- 5. Experts ------------------------------------------------------------
    _p("expert_eta", float, 0.1, 0.0, 2.0, "1", "η",
       "Step size of the iterative expert refinement.",
       "Eq. (10)-(12), Sec. III-D", "experts"),
    _p("expert_iters", int, 10, 0, 500, "iterations", "expert iterations",
       "Refinement iterations after sampling at the centres: the cap (expert_stop = mse) "
       "or the exact count (fixed).",
       "Eq. (12), Fig. 3", "experts"),
    _p("expert_stop", str, "mse", 0, 0, "", "refinement stop",
       "mse: stop when the whole-image MSE no longer falls and keep the best iterate "
       "(expert_iters is the cap); fixed: run expert_iters iterations, keep the last.",
       "Sec. III-D (fixed count or MSE convergence)", "experts", choices=("mse", "fixed")),
    _p("experts", str, "refine", 0, 0, "", "experts",
       "refine: sample at the centres and refine (the paper); lstsq: least-squares experts "
       "for the fixed gates (a sparse linear solve, per channel).",
       "Eq. (10)-(12); lstsq: extension (docs/paper-readings.md)", "experts",
       choices=("refine", "lstsq")),
    # --- 6. Training ------------------------------------------------------------
    _p("tile_size", int, 128, 16, 4096, "px", "tile size",
       "Side of the square tiles trained separately before merging.",
       "Sec. III-E (tiled training)", "training", True),
    _p("tile_steps", int, 40, 0, 100_000, "steps", "steps per tile",
       "Adam steps per tile, with the L2 penalty on the kernel weights.",
       "Sec. III-E", "training", True),
    _p("lr_mu", float, 0.2, 0.0, 10.0, "px/step", "learning rate μ",
       "Adam learning rate for the kernel centres.",
       "Sec. III-E (gradient descent)", "training", True),
    _p("lr_A", float, 0.02, 0.0, 1.0, "1/px/step", "learning rate A",
       "Adam learning rate for the steering matrices A.",
       "Sec. III-E (gradient descent)", "training", True),
    _p("lr_m", float, 0.03, 0.0, 1.0, "1/step", "learning rate m",
       "Adam learning rate for the experts.",
       "Sec. III-E (gradient descent)", "training", True),
    _p("lr_alpha", float, 0.1, 0.0, 1.0, "1/step", "learning rate log α",
       "Adam learning rate for the log kernel weights.",
       "Sec. III-E (gradient descent)", "training", True),
    _p("reg_weight", float, 1e-7, 0.0, 1.0, "1", "regularisation weight",
       "Weight of the penalty (Σ α_i)² on the kernel weights during tile training.",
       "Sec. III-E (L2 penalty)", "training", True),
    _p("prune_threshold", float, 1e-3, 0.0, 1.0, "1", "prune threshold",
       "Kernels whose weight α falls below this value are removed while training.",
       "Sec. III-E (pruning)", "training", True),
    _p("max_steps", int, 100_000, 1, 10_000_000, "steps", "fine-tuning steps",
       "Largest number of full-image fine-tuning steps.",
       "Sec. III-E (fine-tuning)", "training", True),
    _p("time_budget", float, 60.0, 0.01, 86_400.0, "s", "time budget",
       "Wall-clock budget of the whole fit (tiles, merge and fine-tuning).",
       "Sec. IV (time to converge)", "training", True),
    _p("tol_db", float, 0.01, 0.0, 10.0, "dB", "convergence tolerance",
       "Fine-tuning stops when the PSNR gains less than this over `patience` steps.",
       "Sec. III-E (until converged)", "training"),
    _p("patience", int, 1000, 1, 100_000, "steps", "patience",
       "Window of steps over which the PSNR gain is measured for convergence.",
       "Sec. III-E (until converged)", "training", True),
    _p("replace_every", int, 600, 0, 1_000_000, "steps", "re-placement interval",
       "Every this many fine-tuning steps (0: never), the kernels whose removal costs the "
       "least squared error are re-placed where the residual is largest (until 70 % of the "
       "budget).",
       "extension: contribution pruning and error-guided growth, as Image-GS "
       "(docs/paper-readings.md)", "training"),
    _p("replace_share", float, 0.05, 0.0, 0.5, "1", "re-placement share",
       "Share of the kernels re-placed each time (see the re-placement interval).",
       "extension: contribution pruning and error-guided growth, as Image-GS "
       "(docs/paper-readings.md)", "training"),
    # --- 7. Segment methods (S-SMoE, AS-SMoE) -------------------------------------
    _p("superpixel_threshold", float, 0.045, 0.001, 1.0, "1", "MDBSCAN E",
       "Gray-level threshold E of the DBSCAN superpixel growing (the public code's E = 20 on "
       "8-bit RGB).",
       "Shen et al., TIP 2016; S-SMoE [7] and AS-SMoE [6] (docs/paper-readings.md)", "segments"),
    _p("superpixel_min_size", int, 50, 1, 1_000_000, "px", "smallest superpixel",
       "Superpixels with fewer pixels are merged into their most similar neighbour.",
       "Shen et al., TIP 2016 (merging stage)", "segments", True),
    _p("superpixel_blur", float, 1.0, 0.0, 10.0, "px", "superpixel blur σ",
       "Standard deviation of the Gaussian blur before the superpixel segmentation; 0 disables it.",
       "AS-SMoE public code (imgaussfilt)", "segments"),
    _p("as_target_db", float, 30.0, 10.0, 80.0, "dB", "AS-SMoE target PSNR",
       "Without a kernel budget: a segment's local fit doubles its kernels while its PSNR stays "
       "below this.",
       "AS-SMoE [6] (per-segment target quality)", "segments"),
    _p("as_initial_kernels", int, 4, 1, 64, "kernels", "AS-SMoE initial kernels",
       "Without a kernel budget: kernels each segment's local fit starts with (a budget allocates "
       "them).",
       "AS-SMoE [6] (K_init)", "segments"),
    _p("as_doublings", int, 2, 0, 6, "rounds", "AS-SMoE doublings",
       "Without a kernel budget: largest number of times a segment's local fit doubles its "
       "kernels.",
       "AS-SMoE [6] (kernel cloning)", "segments"),
    _p("as_steps", int, 30, 1, 100_000, "steps", "AS-SMoE steps per round",
       "Adam steps of each local fit between two doublings (L0 sparsification included).",
       "AS-SMoE [6] (segment reconstruction)", "segments", True),
    # --- general ------------------------------------------------------------------
    _p("n_kernels", int, 0, 0, 1_000_000, "kernels", "kernel budget N",
       "Number of kernels to initialise: every method yields between 0.95·N and N (0: off, "
       "max_pts governs).",
       "Sec. IV, Figs. 5-6 (methods compared at equal kernel counts)", "general", True),
    _p("channels", str, "gray", 0, 0, "", "channels",
       "gray: model the BT.601 luma (the paper); rgb: one gate, three experts per kernel "
       "(colour). Edges and segments always use the luma.",
       "Sec. IV (gray); rgb: extension (docs/paper-readings.md)", "general",
       choices=("gray", "rgb")),
    _p("seed", int, 0, 0, 2**31 - 1, "", "seed",
       "Seed of every random choice (training is deterministic for a seed on the CPU).",
       "-", "general"),
)

#: What the user sees change when a value goes up (ParamSpec.effect).
_EFFECTS: dict[str, str] = {
    "canny_sigma": "Higher: fewer, smoother edges in view 1 (fine texture and noise drop out).",
    "canny_low": (
        "Higher: edge lines in view 1 break into shorter pieces (weak continuations "
        "dropped)."
    ),
    "canny_high": "Higher: fewer edges in view 1 (only the strongest contrasts start an edge).",
    "lam": (
        "Higher: view 3 keeps segments far from other-direction segments (corners, crossings) as "
        "salient."
    ),
    "max_pts": "Higher: more reduced segments in view 3 and twice as many kernel pairs in view 4.",
    "salient_fraction": (
        "Higher: more magenta (salient) segments in view 3, fewer cyan cluster "
        "means."
    ),
    "delta_mu": "Higher: the two kernels of each pair in view 4 move apart and grow wider.",
    "segment_steering": "Higher: the edge pairs' ellipses in view 4 stretch along their segments.",
    "background_kernels": (
        "On: violet background kernels fill flat regions in view 4; off: only edge "
        "pairs."
    ),
    "background_spacing": "Higher: fewer, wider-spaced violet background kernels in view 4.",
    "expert_eta": (
        "Higher: the expert curve (Fig. 3 plot) rises faster, or oscillates when too "
        "high."
    ),
    "expert_iters": (
        "Higher: more points on the expert curve (Fig. 3 plot), usually a higher initial "
        "PSNR."
    ),
    "tile_size": (
        "Higher: fewer, larger tiles trained one after the other (tile count in the status "
        "line)."
    ),
    "tile_steps": "Higher: a longer first part of the PSNR curve (before the 'merge' line).",
    "lr_mu": (
        "Higher: kernel centres in view 4 move faster while training (too high: the curve "
        "jumps)."
    ),
    "lr_A": "Higher: kernel ellipses in view 4 change shape faster while training.",
    "lr_m": "Higher: gray levels in view 5 adjust faster while training.",
    "lr_alpha": "Higher: kernel weights change faster, so kernels are pruned sooner.",
    "reg_weight": (
        "Higher: more kernels pruned during the tile phase (the kernel-count curve "
        "drops)."
    ),
    "prune_threshold": (
        "Higher: more kernels removed while training (the kernel-count curve "
        "drops)."
    ),
    "max_steps": "Higher: the fine-tuning part of the PSNR curve may run longer.",
    "time_budget": "Higher: the PSNR curve runs longer (paused time does not count).",
    "tol_db": "Higher: training stops sooner once the PSNR curve flattens.",
    "patience": "Higher: training waits longer on a flat PSNR curve before it stops.",
    "replace_every": (
        "Lower: more often, the least useful kernels in view 4 jump to where the error is "
        "largest (a 're-placed' line in the log)."
    ),
    "replace_share": "Higher: more kernels in view 4 move at each re-placement.",
    "seed": "Another seed: a slightly different training run (the stages do not change).",
    "expert_stop": (
        "mse: the expert curve (Fig. 3 plot) ends at its best point; fixed: it runs every "
        "iteration."
    ),
    "experts": (
        "lstsq: a higher initial PSNR in view 5 at once (Fig. 3 plot: one point); refine: the "
        "paper's curve."
    ),
    "channels": "rgb: view 5 and the exports in colour (one gate, three experts); gray: the luma.",
    "n_kernels": (
        "Set N: view 4 holds between 0.95·N and N kernels whatever the method (0: max_pts "
        "decides)."
    ),
    "superpixel_threshold": (
        "Higher (S-SMoE, AS-SMoE): fewer, larger superpixels outlined in view "
        "2."
    ),
    "superpixel_min_size": (
        "Higher (S-SMoE, AS-SMoE): small superpixels in view 2 merge into their "
        "neighbours."
    ),
    "superpixel_blur": (
        "Higher (S-SMoE, AS-SMoE): smoother superpixel outlines in view 2, less "
        "texture."
    ),
    "as_target_db": (
        "Higher (AS-SMoE): more kernels in busy superpixels in view 4, a slower "
        "initialisation."
    ),
    "as_initial_kernels": "Higher (AS-SMoE): more kernels per superpixel in view 4 from the start.",
    "as_doublings": (
        "Higher (AS-SMoE): busy superpixels may get up to 2^rounds times more kernels in view "
        "4."
    ),
    "as_steps": "Higher (AS-SMoE): better fitted local kernels in view 4, a slower initialisation.",
}
PARAM_SPECS = tuple(dataclasses.replace(s, effect=_EFFECTS.get(s.name, "")) for s in PARAM_SPECS)

_SPEC_BY_NAME: dict[str, ParamSpec] = {s.name: s for s in PARAM_SPECS}


def spec(name: str) -> ParamSpec:
    """The table row of parameter ``name``.

    Raises
    ------
    ValueError
        If there is no such parameter.
    """
    try:
        return _SPEC_BY_NAME[name]
    except KeyError:
        raise ValueError(
            f"unknown parameter '{name}'; known parameters: {', '.join(_SPEC_BY_NAME)}"
        ) from None


def param_users(name: str) -> tuple[str, ...] | None:
    """The methods that read parameter ``name``, in registry order, or None
    when it serves every method (its group is in no method's ``param_groups``:
    experts, training, general).

    A method reads a parameter of one of its ``param_groups`` when its
    ``reads`` lists it, or lists nothing (:class:`smoe_gui.core.registry.Method`).

    Raises
    ------
    ValueError
        If there is no such parameter.
    """
    group = spec(name).group
    methods = registry.all()
    listing = [m for m in methods if group in tuple(getattr(m, "param_groups", ()))]
    if not listing:
        return None
    return tuple(
        m.name
        for m in listing
        if not tuple(getattr(m, "reads", ())) or name in tuple(getattr(m, "reads", ()))
    )


@dataclass(frozen=True)
class Params:
    """All parameters, validated.  Field docs are in :data:`PARAM_SPECS`."""

    canny_sigma: float = 1.5
    canny_low: float = 0.1
    canny_high: float = 0.2
    lam: float = 0.1
    max_pts: int = 500
    salient_fraction: float = 0.2
    delta_mu: float = 3.0
    segment_steering: float = 1.0
    background_kernels: bool = True
    background_spacing: float = 24.0
    expert_eta: float = 0.1
    expert_iters: int = 10
    expert_stop: str = "mse"
    experts: str = "refine"
    tile_size: int = 128
    tile_steps: int = 40
    lr_mu: float = 0.2
    lr_A: float = 0.02
    lr_m: float = 0.03
    lr_alpha: float = 0.1
    reg_weight: float = 1e-7
    prune_threshold: float = 1e-3
    max_steps: int = 100_000
    time_budget: float = 60.0
    tol_db: float = 0.01
    patience: int = 1000
    replace_every: int = 600
    replace_share: float = 0.05
    superpixel_threshold: float = 0.045
    superpixel_min_size: int = 50
    superpixel_blur: float = 1.0
    as_target_db: float = 30.0
    as_initial_kernels: int = 4
    as_doublings: int = 2
    as_steps: int = 30
    n_kernels: int = 0
    channels: str = "gray"
    seed: int = 0

    def __post_init__(self) -> None:
        for s in PARAM_SPECS:
            object.__setattr__(self, s.name, s.coerce(getattr(self, s.name)))
        if self.canny_low > self.canny_high:
            raise ValueError(
                f"parameter 'canny_low': {self.canny_low:g} is not allowed; it must not "
                f"exceed canny_high ({self.canny_high:g})"
            )

    # -- construction -------------------------------------------------------------
    def replace(self, **changes: Any) -> Params:
        """A copy with ``changes`` applied (validated).

        Raises
        ------
        ValueError
            For an unknown name or a bad value.
        """
        for name in changes:
            spec(name)
        return dataclasses.replace(self, **changes)

    def with_assignments(self, assignments: Iterable[str]) -> Params:
        """Apply ``NAME=VALUE`` strings, as given to the CLI's ``--set``."""
        changes: dict[str, Any] = {}
        for text in assignments:
            name, sep, value = text.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"a parameter assignment must read NAME=VALUE, got {text!r}")
            changes[name.strip()] = spec(name.strip()).coerce(value)
        return self.replace(**changes)

    def to_dict(self) -> dict[str, Value]:
        """Plain dict in table order."""
        return {s.name: getattr(self, s.name) for s in PARAM_SPECS}

    def to_json(self) -> str:
        """JSON text (indented, table order), readable by :meth:`from_json`."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Params:
        """Params from a mapping; missing keys take their defaults.

        Raises
        ------
        ValueError
            For an unknown key or a bad value.
        """
        if not isinstance(data, Mapping):
            raise ValueError("parameters must be a JSON object of NAME: VALUE pairs")
        values: dict[str, Any] = {str(k): spec(str(k)).coerce(v) for k, v in data.items()}
        return cls(**values)

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike[str]) -> Params:
        """Params from JSON text or from the path of a JSON file.

        A :class:`str` whose first non-blank character is ``{`` is JSON text;
        any other string or path-like is a file path.

        Raises
        ------
        ValueError
            For a missing or unreadable file, malformed JSON, an unknown key or a
            bad value.
        """
        from .limits import MAX_PARAMS_BYTES, parse_json, read_bounded_text

        source = "parameters"
        if isinstance(text_or_path, str) and text_or_path.lstrip().startswith("{"):
            text = text_or_path
        else:
            source = str(Path(text_or_path))
            text = read_bounded_text(text_or_path, "a parameter file", MAX_PARAMS_BYTES)
        data = parse_json(text, source)
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None

    def digest(self) -> str:
        """A short stable hash of the values (for result tables)."""
        import hashlib

        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]


def _check_table() -> None:
    fields = [f.name for f in dataclasses.fields(Params)]
    names = [s.name for s in PARAM_SPECS]
    assert fields == names, (fields, names)
    for f in dataclasses.fields(Params):
        assert f.default == _SPEC_BY_NAME[f.name].default, f.name


_check_table()
