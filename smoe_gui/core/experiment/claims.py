"""The paper's claims about its section IV, tested on a sweep's stored runs.

Qt-free and plotting-free: :func:`paper_claims` takes the sweep's CSV rows and
stored runs and returns one :class:`Claim` per claim, with the paper's words,
the exact rule, the numbers and a verdict.  ``results.md`` shows them in its
section "The paper's claims" and ``claims.json`` stores them.  The rules, and
why they are read so, are in ``docs/paper-readings.md`` (section 12).

The claims (Determann & Fleig, section IV, Figs. 5 and 6):

(a) the edge-aligned initialisation beats the grid "for the most part";
(b) S-SMoE and AS-SMoE are "slightly better" than edge in PSNR and SSIM (one
    claim per method here, so that each can be tested alone);
(c) edge converges fastest, except on peppers, where S-SMoE is faster.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..methods.edge import NAME as EDGE_NAME
from ..methods.grid import NAME as GRID_NAME
from ..methods.segment.as_smoe import NAME as AS_SMOE_NAME
from ..methods.segment.s_smoe import NAME as S_SMOE_NAME
from ..metrics import PSNR_PLOT_MAX_DB
from ..params import METHODS, check_method
from .curves import CONVERGE_TOL_DB, first_time_reaching, whole_image_curve
from .store import stored_history

__all__ = [
    "AS_SMOE",
    "DOES_NOT_HOLD",
    "EDGE",
    "GRID",
    "HOLDS",
    "NOT_TESTABLE",
    "PEPPERS",
    "S_SMOE",
    "SLIGHT_DB",
    "Claim",
    "ClaimTable",
    "paper_claims",
]

#: Verdicts.
HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
NOT_TESTABLE = "not testable"
#: Largest mean PSNR gain (dB) over edge that is still "slightly better" (claim b).
SLIGHT_DB = 1.0
#: The image on which the paper finds S-SMoE faster than edge (claim c).
PEPPERS = "peppers"
#: The methods the claims name (the paper's, each named by its own module).
EDGE = check_method(EDGE_NAME)
GRID = check_method(GRID_NAME)
S_SMOE = check_method(S_SMOE_NAME)
AS_SMOE = check_method(AS_SMOE_NAME)


@dataclass(frozen=True)
class ClaimTable:
    """A table of a claim's numbers (already formatted), with a caption."""

    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, tested.

    Attributes
    ----------
    key : str
        ``"a"``, ``"b:s-smoe"``, ``"b:as-smoe"`` or ``"c"``.
    title : str
        Short statement (``"edge beats grid"``).
    paper : str
        What the paper says (its words in quotes).
    rule : str
        The exact rule the verdict follows.
    verdict : str
        :data:`HOLDS`, :data:`DOES_NOT_HOLD` or :data:`NOT_TESTABLE`.
    reason : str
        One line: the deciding numbers, or what is missing.
    tables : tuple of ClaimTable
        The numbers, formatted for ``results.md``.
    numbers : dict
        The same numbers, JSON-ready (times in s, PSNR in dB; a time never
        reached is None).
    """

    key: str
    title: str
    paper: str
    rule: str
    verdict: str
    reason: str
    tables: tuple[ClaimTable, ...] = ()
    numbers: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """``"(a) edge beats grid: holds; <reason>"``: one line for a terminal."""
        return f"({self.key.split(':')[0]}) {self.title}: {self.verdict}; {self.reason}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)


# --------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------
Key = tuple[str, int, str]  # image, budget, method


def _index(
    rows: Sequence[Mapping[str, Any]],
) -> tuple[dict[Key, Mapping[str, Any]], list[str], list[int]]:
    """The ok rows by (image, budget, method); images in order of appearance, budgets sorted."""
    index: dict[Key, Mapping[str, Any]] = {}
    images: list[str] = []
    budgets: set[int] = set()
    for row in rows:
        if row.get("status") != "ok":
            continue
        image, budget = str(row["image"]), int(row["budget"])
        index[(image, budget, str(row["method"]))] = row
        if image not in images:
            images.append(image)
        budgets.add(budget)
    return index, images, sorted(budgets)


def _psnr(row: Mapping[str, Any]) -> float:
    """Final PSNR (dB); an exact reconstruction's ``inf`` counts as :data:`PSNR_PLOT_MAX_DB`."""
    return min(float(row["psnr_db"]), PSNR_PLOT_MAX_DB)


def _methods_run(index: Mapping[Key, Any]) -> list[str]:
    present = {key[2] for key in index}
    return [m for m in METHODS if m in present] + sorted(present - set(METHODS))


def _missing(index: Mapping[Key, Any], needed: Sequence[str]) -> list[str]:
    present = {key[2] for key in index}
    return [m for m in needed if m not in present]


def _not_testable(key: str, title: str, paper: str, rule: str, reason: str) -> Claim:
    return Claim(key, title, paper, rule, NOT_TESTABLE, reason)


def _signed(value: float, digits: int) -> str:
    """``+0.12`` / ``-0.12``; a value that rounds to zero is ``+0.00``, never ``-0.00``."""
    rounded = round(value, digits)
    return f"{rounded if rounded != 0 else 0.0:+.{digits}f}"


# --------------------------------------------------------------------------------------
# (a), (b): final quality against a reference method
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Quality:
    """``method`` against ``reference`` over the pairs where both ran ok."""

    pairs: list[tuple[str, int, float, float]]  # image, budget, PSNR gain (dB), SSIM gain

    @property
    def n(self) -> int:
        return len(self.pairs)

    @staticmethod
    def _gain(pair: tuple[str, int, float, float], column: int) -> float:
        """Column 2: the PSNR gain (dB); 3: the SSIM gain."""
        return pair[2] if column == 2 else pair[3]

    def wins(
        self, column: int, pairs: Sequence[tuple[str, int, float, float]] | None = None
    ) -> int:
        return sum(1 for p in (self.pairs if pairs is None else pairs) if self._gain(p, column) > 0)

    def mean(
        self, column: int, pairs: Sequence[tuple[str, int, float, float]] | None = None
    ) -> float:
        chosen = self.pairs if pairs is None else pairs
        return statistics.fmean(self._gain(p, column) for p in chosen) if chosen else math.nan

    def table(self, method: str, reference: str, images: Sequence[str]) -> ClaimTable:
        rows = []
        for image in [*images, None]:
            chosen = [p for p in self.pairs if image is None or p[0] == image]
            if not chosen:
                continue
            rows.append(
                (
                    "all" if image is None else image,
                    str(len(chosen)),
                    str(self.wins(2, chosen)),
                    str(self.wins(3, chosen)),
                    _signed(self.mean(2, chosen), 2),
                    _signed(self.mean(3, chosen), 4),
                )
            )
        return ClaimTable(
            f"{method} against {reference}: (image, budget) pairs won and mean gains ({method} "
            f"minus {reference})",
            (
                "image",
                "pairs",
                f"{method} PSNR higher",
                f"{method} SSIM higher",
                "mean PSNR gain (dB)",
                "mean SSIM gain",
            ),
            tuple(rows),
        )

    def numbers(self, images: Sequence[str]) -> dict[str, Any]:
        per_image = {}
        for image in images:
            chosen = [p for p in self.pairs if p[0] == image]
            if chosen:
                per_image[image] = {
                    "pairs": len(chosen),
                    "psnr_wins": self.wins(2, chosen),
                    "ssim_wins": self.wins(3, chosen),
                    "mean_psnr_gain_db": round(self.mean(2, chosen), 4),
                    "mean_ssim_gain": round(self.mean(3, chosen), 5),
                }
        return {
            "pairs": self.n,
            "psnr_wins": self.wins(2),
            "ssim_wins": self.wins(3),
            "mean_psnr_gain_db": round(self.mean(2), 4),
            "mean_ssim_gain": round(self.mean(3), 5),
            "per_image": per_image,
            "per_pair": [
                {"image": i, "budget": b, "psnr_gain_db": round(dp, 4), "ssim_gain": round(ds, 5)}
                for i, b, dp, ds in self.pairs
            ],
        }


def _quality(
    index: Mapping[Key, Mapping[str, Any]],
    images: Sequence[str],
    budgets: Sequence[int],
    method: str,
    reference: str,
) -> _Quality:
    pairs = []
    for image in images:
        for budget in budgets:
            mine, theirs = index.get((image, budget, method)), index.get((image, budget, reference))
            if mine is not None and theirs is not None:
                pairs.append(
                    (
                        image,
                        budget,
                        _psnr(mine) - _psnr(theirs),
                        float(mine["ssim"]) - float(theirs["ssim"]),
                    )
                )
    return _Quality(pairs)


def _majority(wins: int, n: int) -> bool:
    return 2 * wins > n


def _claim_a(
    index: Mapping[Key, Mapping[str, Any]], images: Sequence[str], budgets: Sequence[int]
) -> Claim:
    title = "edge beats grid"
    paper = (
        'Edge-aligned initialisation beats the grid "for the most part" (Fig. 5: PSNR and SSIM '
        'against kernels).'
    )
    rule = (
        "A pair is an (image, budget) at which both edge and grid ran ok. Edge wins a pair in a "
        "metric when its final value is strictly higher than the grid's. Holds when edge wins "
        "more than half of the pairs in PSNR and more than half in SSIM."
    )
    missing = _missing(index, (EDGE, GRID))
    if missing:
        return _not_testable(
            "a", title, paper, rule, f"method missing: {', '.join(missing)} (no run ok)"
        )
    q = _quality(index, images, budgets, EDGE, GRID)
    if q.n == 0:
        return _not_testable(
            "a", title, paper, rule, "no (image, budget) at which both edge and grid ran ok"
        )
    psnr_ok, ssim_ok = _majority(q.wins(2), q.n), _majority(q.wins(3), q.n)
    need = q.n // 2 + 1
    reason = (
        f"edge's PSNR higher on {q.wins(2)} of {q.n} pairs, SSIM on {q.wins(3)} of {q.n}, a "
        f"majority being {need}; mean gain {_signed(q.mean(2), 2)} dB PSNR, "
        f"{_signed(q.mean(3), 4)} SSIM"
    )
    return Claim(
        "a",
        title,
        paper,
        rule,
        HOLDS if psnr_ok and ssim_ok else DOES_NOT_HOLD,
        reason,
        (q.table(EDGE, GRID, images),),
        q.numbers(images),
    )


_LABEL = {S_SMOE: "S-SMoE", AS_SMOE: "AS-SMoE"}


def _claim_b(
    index: Mapping[Key, Mapping[str, Any]],
    images: Sequence[str],
    budgets: Sequence[int],
    method: str,
) -> Claim:
    name = _LABEL.get(method, method)
    key, title = f"b:{method}", f"{name} slightly better than edge"
    paper = 'S-SMoE and AS-SMoE are "slightly better" than edge in PSNR and SSIM (Fig. 5).'
    rule = (
        f"A pair is an (image, budget) at which both {method} and edge ran ok. Holds when "
        f"{method}'s final PSNR is strictly higher than edge's on more than half of the pairs, "
        f"its SSIM likewise, and its mean PSNR gain over edge is above 0 and at most "
        f'{SLIGHT_DB:g} dB ("slightly"; a larger mean gain: better, not slightly).'
    )
    missing = _missing(index, (method, EDGE))
    if missing:
        return _not_testable(
            key, title, paper, rule, f"method missing: {', '.join(missing)} (no run ok)"
        )
    q = _quality(index, images, budgets, method, EDGE)
    if q.n == 0:
        return _not_testable(
            key, title, paper, rule, f"no (image, budget) at which both {method} and edge ran ok"
        )
    gain = q.mean(2)
    better = _majority(q.wins(2), q.n) and _majority(q.wins(3), q.n) and gain > 0
    counts = (
        f"{method}'s PSNR higher on {q.wins(2)} of {q.n} pairs, SSIM on {q.wins(3)} of {q.n}; "
        f"mean gain {_signed(gain, 2)} dB PSNR, {_signed(q.mean(3), 4)} SSIM"
    )
    if not better:
        verdict, reason = DOES_NOT_HOLD, f"not better: {counts}"
    elif gain > SLIGHT_DB:
        verdict, reason = (
            DOES_NOT_HOLD,
            f"better, but not slightly (mean PSNR gain above {SLIGHT_DB:g} dB): {counts}",
        )
    else:
        verdict, reason = HOLDS, counts
    return Claim(
        key,
        title,
        paper,
        rule,
        verdict,
        reason,
        (q.table(method, EDGE, images),),
        q.numbers(images),
    )


# --------------------------------------------------------------------------------------
# (c): time to converge
# --------------------------------------------------------------------------------------
def _reach_s(payload: Mapping[str, Any] | None, target: float) -> float | None:
    """Seconds from the start of the run (initialisation included) until the
    whole-image PSNR first reached ``target``; None if never (or no history)."""
    if payload is None:
        return None
    try:
        history, initial = stored_history(dict(payload))
    except ValueError:
        return None
    times, psnrs = whole_image_curve(history, initial)
    t = first_time_reaching(times, psnrs, target)
    return None if t is None else t + float(payload["record"]["init_s"])


def _seconds(value: float | None) -> str:
    return "never" if value is None or not math.isfinite(value) else f"{value:.1f}"


def _json_s(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 3)


def _fastest(times: Mapping[str, float | None], methods: Sequence[str]) -> str:
    """The method with the least time (never: infinite; ties: the first in ``methods``)."""

    def key(method: str) -> float:
        value = times[method]
        return math.inf if value is None else float(value)

    return min(methods, key=key)


def _mean_s(values: Sequence[float | None]) -> float:
    return (
        math.inf
        if any(v is None for v in values)
        else statistics.fmean(float(v) for v in values if v is not None)
    )


def _claim_c(
    index: Mapping[Key, Mapping[str, Any]],
    images: Sequence[str],
    budgets: Sequence[int],
    payloads: Mapping[str, Mapping[str, Any]],
    tol_db: float,
) -> Claim:
    title = "edge converges fastest, except S-SMoE on peppers"
    paper = (
        "Edge converges fastest, except on peppers, where S-SMoE is faster (Fig. 6: time to "
        "converge)."
    )
    rule = (
        "The methods compared are those that ran; a pair is an (image, budget) at which every one "
        "of them ran ok. Per pair the common target is the lowest final PSNR among the methods "
        f"minus {tol_db:g} dB; a method's time is the seconds from the start of its run "
        "(initialisation included) until its whole-image PSNR first reached the target. Per "
        "image, the fastest method has the least mean time over the image's pairs (a target never "
        f"reached counts as infinite). Holds when the fastest is s-smoe on {PEPPERS} and edge on "
        f"every other image. Also shown, not judged: the time to come within {tol_db:g} dB of the "
        "run's own final PSNR (init_s + converge_s)."
    )
    missing = _missing(index, (EDGE, S_SMOE))
    if missing:
        return _not_testable(
            "c", title, paper, rule, f"method missing: {', '.join(missing)} (no run ok)"
        )
    methods = _methods_run(index)
    per_pair: list[dict[str, Any]] = []
    pair_rows = []
    for image in images:
        for budget in budgets:
            rows = {m: index.get((image, budget, m)) for m in methods}
            if any(r is None for r in rows.values()):
                continue
            ok = {m: r for m, r in rows.items() if r is not None}
            target = min(_psnr(r) for r in ok.values()) - tol_db
            common = {m: _reach_s(payloads.get(str(r["run_id"])), target) for m, r in ok.items()}
            own = {m: float(r["init_s"]) + float(r["converge_s"]) for m, r in ok.items()}
            fastest = _fastest(common, methods)
            per_pair.append(
                {
                    "image": image,
                    "budget": budget,
                    "target_db": round(target, 4),
                    "common_s": common,
                    "own_s": own,
                    "fastest": fastest,
                }
            )
            pair_rows.append(
                (
                    image,
                    str(budget),
                    f"{target:.2f}",
                    *(f"{_seconds(common[m])} ({own[m]:.1f})" for m in methods),
                    fastest,
                )
            )
    if not per_pair:
        return _not_testable(
            "c",
            title,
            paper,
            rule,
            f"no (image, budget) at which every method ({', '.join(methods)}) ran ok",
        )
    per_image: dict[str, dict[str, Any]] = {}
    image_rows = []
    for image in images:
        mine = [p for p in per_pair if p["image"] == image]
        if not mine:
            continue
        mean_common = {m: _mean_s([p["common_s"][m] for p in mine]) for m in methods}
        mean_own = {m: _mean_s([p["own_s"][m] for p in mine]) for m in methods}
        expected = S_SMOE if image == PEPPERS else EDGE
        fastest = _fastest(mean_common, methods)
        fastest_own = _fastest(mean_own, methods)
        per_image[image] = {
            "pairs": len(mine),
            "mean_common_s": {m: _json_s(v) for m, v in mean_common.items()},
            "mean_own_s": {m: _json_s(v) for m, v in mean_own.items()},
            "fastest": fastest,
            "fastest_own": fastest_own,
            "paper": expected,
        }
        image_rows.append(
            (
                image,
                str(len(mine)),
                *(f"{_seconds(mean_common[m])} ({_seconds(mean_own[m])})" for m in methods),
                fastest,
                fastest_own,
                expected,
            )
        )
    for p in per_pair:
        p["common_s"] = {m: _json_s(v) for m, v in p["common_s"].items()}
        p["own_s"] = {m: _json_s(v) for m, v in p["own_s"].items()}
    wrong = [image for image, v in per_image.items() if v["fastest"] != v["paper"]]
    reason = (
        "fastest to the common target: "
        + ", ".join(f"{image} {v['fastest']}" for image, v in per_image.items())
        + f"; the paper: s-smoe on {PEPPERS}, edge elsewhere; compared: {', '.join(methods)}"
    )
    if PEPPERS not in per_image:
        reason += f"; {PEPPERS} not in the sweep: the exception is not tested"
    cell = "s to the common target (s to own final PSNR)"
    tables = (
        ClaimTable(
            f"Per (image, budget): {cell}",
            ("image", "budget", "target (dB)", *methods, "fastest"),
            tuple(pair_rows),
        ),
        ClaimTable(
            f"Per image, mean over budgets: {cell}",
            ("image", "pairs", *methods, "fastest (common target)", "fastest (own final)", "paper"),
            tuple(image_rows),
        ),
    )
    numbers = {
        "methods": list(methods),
        "tol_db": tol_db,
        "per_image": per_image,
        "per_pair": per_pair,
    }
    return Claim(
        "c", title, paper, rule, DOES_NOT_HOLD if wrong else HOLDS, reason, tables, numbers
    )


# --------------------------------------------------------------------------------------
def paper_claims(
    rows: Sequence[Mapping[str, Any]],
    payloads: Mapping[str, Mapping[str, Any]],
    tol_db: float = CONVERGE_TOL_DB,
) -> list[Claim]:
    """Test the paper's claims (a), (b) for S-SMoE, (b) for AS-SMoE and (c) on a sweep.

    Parameters
    ----------
    rows : sequence of dict
        The sweep's rows (``results.csv`` columns; only ``status == "ok"``
        rows count): ``image``, ``method``, ``budget``, ``psnr_db`` (dB; ``inf``
        counts as :data:`~smoe_gui.core.metrics.PSNR_PLOT_MAX_DB`), ``ssim``,
        ``init_s``, ``converge_s`` (s), ``run_id``.
    payloads : dict
        Stored runs by run id (:func:`~smoe_gui.core.experiment.store.load_records`):
        their fit histories give the times to the common target of claim (c).
    tol_db : float
        Tolerance (dB) of the convergence times.

    Returns
    -------
    list of Claim
        Keys ``a``, ``b:s-smoe``, ``b:as-smoe``, ``c`` in that order; a claim
        whose methods did not run is :data:`NOT_TESTABLE`.
    """
    index, images, budgets = _index(rows)
    return [
        _claim_a(index, images, budgets),
        _claim_b(index, images, budgets, S_SMOE),
        _claim_b(index, images, budgets, AS_SMOE),
        _claim_c(index, images, budgets, payloads, tol_db),
    ]
