"""The paper's claims tested on a sweep (`paper_claims`): every verdict both ways,
on hand-made runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from smoe_gui.core.experiment import CONVERGE_TOL_DB, paper_claims
from smoe_gui.core.experiment.claims import DOES_NOT_HOLD, HOLDS, NOT_TESTABLE, SLIGHT_DB, Claim
from smoe_gui.core.train.runs import FitHistory

Curve = Sequence[tuple[float, float]]  # (seconds since the fit started, whole-image PSNR dB)


def _run(
    image: str,
    method: str,
    budget: int,
    psnr: float,
    ssim: float,
    *,
    init_s: float = 0.0,
    converge_s: float = 10.0,
    curve: Curve | None = None,
    status: str = "ok",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A stored run as `store.save_run` writes it: the CSV row and the JSON payload."""
    run_id = f"{image}-{method}-{budget}-hash"
    row = {
        "image": image,
        "method": method,
        "budget": budget,
        "psnr_db": psnr,
        "ssim": ssim,
        "init_s": init_s,
        "converge_s": converge_s,
        "status": status,
        "run_id": run_id,
    }
    history = FitHistory()
    for step, (t, p) in enumerate(curve if curve is not None else [(20.0, psnr)], start=1):
        history.add_row(step, t, "fine", p, budget)
    payload = {
        "format": 2,
        "record": row,
        "history": history.records(),
        "initial_psnr_db": psnr - 8.0,
    }
    return row, payload


def _sweep(runs: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Claim]:
    rows = [r for r, _ in runs]
    payloads = {r["run_id"]: p for r, p in runs}
    claims = paper_claims(rows, payloads)
    assert [c.key for c in claims] == ["a", "b:s-smoe", "b:as-smoe", "c"]
    json.dumps([c.to_json() for c in claims], allow_nan=False)  # claims.json is always writable
    return {c.key: c for c in claims}


def _quality(
    gains: dict[str, Sequence[tuple[float, float]]],
    images: Sequence[str] = ("peppers", "parrots"),
    budgets: Sequence[int] = (500, 1000),
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Edge at 30 dB / SSIM 0.8 on every (image, budget); each other method at edge plus the
    given (PSNR dB, SSIM) gains, one per pair in order."""
    runs = []
    pairs = [(i, b) for i in images for b in budgets]
    for k, (image, budget) in enumerate(pairs):
        runs.append(_run(image, "edge", budget, 30.0, 0.8))
        for method, per_pair in gains.items():
            dp, ds = per_pair[k]
            runs.append(_run(image, method, budget, 30.0 + dp, 0.8 + ds))
    return runs


# --------------------------------------------------------------------------------------
# (a) edge beats grid "for the most part"
# --------------------------------------------------------------------------------------
def test_a_holds_when_edge_wins_most_pairs_in_psnr_and_ssim() -> None:
    # grid minus edge: edge higher on 3 of 4 pairs in both metrics
    claim = _sweep(_quality({"grid": [(-1.0, -0.01), (-0.5, -0.02), (0.3, 0.01), (-0.2, -0.001)]}))[
        "a"
    ]
    assert claim.verdict == HOLDS
    assert (
        claim.numbers["pairs"] == 4
        and claim.numbers["psnr_wins"] == 3
        and claim.numbers["ssim_wins"] == 3
    )
    assert claim.numbers["mean_psnr_gain_db"] == pytest.approx((1.0 + 0.5 - 0.3 + 0.2) / 4)
    assert (
        claim.numbers["per_image"]["peppers"]["psnr_wins"],
        claim.numbers["per_image"]["parrots"]["psnr_wins"],
    ) == (2, 1)
    assert "3 of 4 pairs" in claim.reason
    (table,) = claim.tables
    assert table.rows[-1][:4] == ("all", "4", "3", "3")


def test_a_does_not_hold_on_half_the_pairs_ties_or_ssim_alone() -> None:
    # PSNR: 2 of 4 (a half is no majority), one tie counts as no win
    claim = _sweep(_quality({"grid": [(-1.0, -0.01), (-0.5, -0.02), (0.3, -0.01), (0.0, -0.01)]}))[
        "a"
    ]
    assert claim.verdict == DOES_NOT_HOLD and claim.numbers["psnr_wins"] == 2
    # PSNR won on 3 of 4, SSIM on 1 of 4: the rule needs both
    claim = _sweep(_quality({"grid": [(-1.0, -0.01), (-0.5, 0.02), (-0.3, 0.01), (0.2, 0.001)]}))[
        "a"
    ]
    assert claim.verdict == DOES_NOT_HOLD
    assert (claim.numbers["psnr_wins"], claim.numbers["ssim_wins"]) == (3, 1)


def test_a_is_not_testable_without_grid_runs_that_finished() -> None:
    runs = _quality({"s-smoe": [(0.5, 0.01)] * 4})
    assert _sweep(runs)["a"].verdict == NOT_TESTABLE and "grid" in _sweep(runs)["a"].reason
    failed = [_run("peppers", "grid", 500, 0.0, 0.0, status="failed")]
    claim = _sweep(runs + failed)["a"]
    assert claim.verdict == NOT_TESTABLE and "method missing: grid" in claim.reason


# --------------------------------------------------------------------------------------
# (b) S-SMoE and AS-SMoE "slightly better" than edge
# --------------------------------------------------------------------------------------
def test_b_holds_for_a_slight_gain_and_not_for_a_large_one() -> None:
    claims = _sweep(
        _quality(
            {
                "s-smoe": [(0.4, 0.01), (0.6, 0.02), (0.2, 0.005), (-0.1, 0.001)],
                "as-smoe": [(2.5, 0.05), (1.8, 0.03), (1.2, 0.02), (0.9, 0.01)],
            }
        )
    )
    slight, large = claims["b:s-smoe"], claims["b:as-smoe"]
    assert slight.verdict == HOLDS and 0 < slight.numbers["mean_psnr_gain_db"] <= SLIGHT_DB
    assert large.verdict == DOES_NOT_HOLD and large.numbers["mean_psnr_gain_db"] > SLIGHT_DB
    assert "not slightly" in large.reason and large.numbers["psnr_wins"] == 4


def test_b_does_not_hold_when_not_better_in_ssim_or_psnr() -> None:
    claims = _sweep(
        _quality(
            {
                "s-smoe": [
                    (0.4, -0.01),
                    (0.6, -0.02),
                    (0.2, 0.005),
                    (0.1, -0.001),
                ],  # PSNR yes, SSIM 1 of 4
                "as-smoe": [
                    (-0.4, 0.01),
                    (-0.6, 0.02),
                    (0.2, 0.005),
                    (-0.1, 0.001),
                ],  # SSIM yes, PSNR 1 of 4
            }
        )
    )
    for key in ("b:s-smoe", "b:as-smoe"):
        assert claims[key].verdict == DOES_NOT_HOLD and claims[key].reason.startswith("not better")


def test_b_is_not_testable_per_missing_method() -> None:
    claims = _sweep(_quality({"s-smoe": [(0.4, 0.01)] * 4}))
    assert claims["b:s-smoe"].verdict == HOLDS
    assert claims["b:as-smoe"].verdict == NOT_TESTABLE and "as-smoe" in claims["b:as-smoe"].reason
    assert not claims["b:as-smoe"].tables


# --------------------------------------------------------------------------------------
# (c) edge converges fastest, except on peppers, where S-SMoE is faster
# --------------------------------------------------------------------------------------
def _timed(
    spec: dict[str, dict[str, tuple[float, float, Curve]]], budget: int = 500
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``spec[image][method] = (final PSNR, init_s, curve)``; converge_s from the curve."""
    runs = []
    for image, methods in spec.items():
        for method, (psnr, init_s, curve) in methods.items():
            converge = next(t for t, p in curve if p >= psnr - CONVERGE_TOL_DB)
            runs.append(
                _run(
                    image,
                    method,
                    budget,
                    psnr,
                    0.8,
                    init_s=init_s,
                    converge_s=converge,
                    curve=curve,
                )
            )
    return runs


def test_c_holds_when_edge_is_fastest_except_s_smoe_on_peppers() -> None:
    runs = _timed(
        {
            "parrots": {
                "edge": (30.0, 0.1, [(5.0, 29.0), (8.0, 30.0)]),
                "s-smoe": (30.5, 0.2, [(5.0, 28.0), (12.0, 30.0), (20.0, 30.5)]),
            },
            "peppers": {
                "edge": (31.0, 0.1, [(5.0, 29.0), (15.0, 31.0)]),
                "s-smoe": (31.0, 0.2, [(5.0, 30.0), (6.0, 31.0)]),
            },
        }
    )
    claim = _sweep(runs)["c"]
    assert claim.verdict == HOLDS, claim.reason
    per_image = claim.numbers["per_image"]
    assert (per_image["parrots"]["fastest"], per_image["peppers"]["fastest"]) == ("edge", "s-smoe")
    # common target on parrots: min final (30.0) - 0.1 dB: edge at 0.1 + 8 s, s-smoe at 0.2 + 12 s
    assert per_image["parrots"]["mean_common_s"] == {
        "edge": pytest.approx(8.1),
        "s-smoe": pytest.approx(12.2),
    }
    assert per_image["peppers"]["mean_own_s"]["edge"] == pytest.approx(15.1)
    assert claim.numbers["methods"] == ["edge", "s-smoe"]
    pair_table, image_table = claim.tables
    assert pair_table.header == ("image", "budget", "target (dB)", "edge", "s-smoe", "fastest")
    assert pair_table.rows[0][3:] == (
        "8.1 (8.1)",
        "12.2 (20.2)",
        "edge",
    )  # own final: 30.5 dB at 20 s
    assert image_table.rows[1][0] == "peppers" and image_table.rows[1][-3:] == (
        "s-smoe",
        "s-smoe",
        "s-smoe",
    )


def test_c_judges_by_the_common_target_not_by_each_run_s_own_final_psnr() -> None:
    # grid stalls early at a low PSNR: it "converges" to its own final value first (2 s), but
    # reaches the common target (its own 25 dB - 0.1) later than edge does
    runs = _timed(
        {
            "parrots": {
                "edge": (30.0, 0.0, [(1.0, 26.0), (9.0, 30.0)]),
                "grid": (25.0, 0.0, [(2.0, 25.0)]),
                "s-smoe": (29.0, 0.0, [(3.0, 26.0), (9.5, 29.0)]),
            },
        }
    )
    claim = _sweep(runs)["c"]
    parrots = claim.numbers["per_image"]["parrots"]
    assert parrots["fastest_own"] == "grid" and parrots["fastest"] == "edge"
    assert claim.verdict == HOLDS
    assert "peppers not in the sweep" in claim.reason  # the exception is not tested


def test_c_does_not_hold_when_s_smoe_is_fastest_everywhere_or_edge_on_peppers() -> None:
    fast_s = {
        "edge": (30.0, 0.1, [(5.0, 29.0), (15.0, 30.0)]),
        "s-smoe": (30.0, 0.2, [(4.0, 30.0)]),
    }
    fast_edge = {"edge": (30.0, 0.1, [(3.0, 30.0)]), "s-smoe": (30.0, 0.2, [(4.0, 30.0)])}
    claim = _sweep(_timed({"parrots": fast_s, "peppers": fast_s}))["c"]
    assert claim.verdict == DOES_NOT_HOLD and "parrots s-smoe" in claim.reason
    claim = _sweep(_timed({"parrots": fast_edge, "peppers": fast_edge}))["c"]
    assert claim.verdict == DOES_NOT_HOLD and "peppers edge" in claim.reason


def test_c_a_target_never_reached_loses_and_is_shown_as_never() -> None:
    # the final PSNR is above the history's best (e.g. the exact evaluation of the best model):
    # as-smoe's curve never reaches the common target
    runs = _timed(
        {
            "parrots": {"edge": (30.0, 0.0, [(5.0, 30.0)]), "s-smoe": (30.0, 0.0, [(6.0, 30.0)])},
        }
    )
    row, payload = _run("parrots", "as-smoe", 500, 30.0, 0.8, converge_s=1.0, curve=[(1.0, 29.0)])
    claim = _sweep([*runs, (row, payload)])["c"]
    parrots = claim.numbers["per_image"]["parrots"]
    assert parrots["mean_common_s"]["as-smoe"] is None and parrots["fastest"] == "edge"
    assert parrots["fastest_own"] == "as-smoe"
    assert claim.tables[0].rows[0][-2] == "never (1.0)"


def test_c_is_not_testable_without_s_smoe_and_skips_incomplete_pairs() -> None:
    runs = _timed(
        {"parrots": {"edge": (30.0, 0.0, [(5.0, 30.0)]), "grid": (29.0, 0.0, [(6.0, 29.0)])}}
    )
    claim = _sweep(runs)["c"]
    assert claim.verdict == NOT_TESTABLE and "s-smoe" in claim.reason
    # s-smoe ran on peppers only: parrots has no complete pair and is left out
    runs += _timed(
        {
            "peppers": {
                "edge": (30.0, 0.0, [(5.0, 30.0)]),
                "grid": (30.0, 0.0, [(6.0, 30.0)]),
                "s-smoe": (30.0, 0.0, [(2.0, 30.0)]),
            }
        }
    )
    claim = _sweep(runs)["c"]
    assert list(claim.numbers["per_image"]) == ["peppers"] and claim.verdict == HOLDS


def test_an_exact_reconstruction_counts_at_the_plot_ceiling() -> None:
    runs = _quality({"grid": [(-1.0, -0.01)] * 4})
    runs[0][0]["psnr_db"] = "inf"  # edge exact on the first pair
    claim = _sweep(runs)["a"]
    assert claim.verdict == HOLDS
    assert claim.numbers["per_pair"][0]["psnr_gain_db"] == pytest.approx(100.0 - 29.0)


def test_a_gain_that_rounds_to_zero_is_shown_without_a_minus() -> None:
    claim = _sweep(_quality({"grid": [(-1.0, -0.01), (1.002, 0.01), (-1.0, -0.01), (1.0, 0.01)]}))[
        "a"
    ]
    assert claim.numbers["mean_psnr_gain_db"] == pytest.approx(-0.0005)
    assert claim.tables[0].rows[-1][4] == "+0.00"


def test_line_names_the_claim_and_its_verdict() -> None:
    claim = _sweep(_quality({"grid": [(-1.0, -0.01)] * 4}))["a"]
    assert claim.line().startswith("(a) edge beats grid: holds; edge's PSNR higher on 4 of 4 pairs")
