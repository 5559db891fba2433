"""Fuzz benchmark: many more cases than ``tests/test_fuzz.py``, on fresh random draws.

Runs ``--cases`` cases of the test's strategy (every parameter over its whole
range, constant / noise / edge images, tiny, thin, 1-pixel wide) through
``initialize()`` and ``fit()``, plus ``--big`` cases on larger images (up to
64x64, and 8x2000 / 2000x8 strips).  Prints the number of cases, their
outcomes, the time taken, and each distinct failure (exception type, message,
where it was raised, and the input) once.  Exits 1 when a case failed.

    .venv/bin/python benchmarks/bench_fuzz.py [--cases 200] [--big 10] [--seed N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _testmodule import load_test_module  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--big", type=int, default=10, help="cases on larger images")
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the draws (default: random)"
    )
    args = parser.parse_args(argv)

    from hypothesis import strategies as st

    fuzz = load_test_module("fuzz", "test_fuzz.py")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")

    @st.composite
    def big_case(draw: st.DrawFn) -> tuple[Any, Any, str]:
        case, params, method = draw(fuzz.case_strategy())
        h, w = draw(st.sampled_from([(64, 64), (48, 64), (8, 2000), (2000, 8)]))
        image = fuzz.ImageCase(case.kind, h, w, case.level, case.seed)
        tile = int(min(max(h, w), max(16, params.tile_size)))
        return (
            image,
            params.replace(tile_size=tile, expert_iters=min(params.expert_iters, 50)),
            method,
        )

    outcomes: Counter[str] = Counter()
    failures: dict[tuple[str, str, str], str] = {}
    started = time.perf_counter()
    plans = [("small", fuzz.case_strategy(), args.cases), ("big", big_case(), args.big)]
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hypothesis_seed

    def make_runner(label: str, strategy: Any, count: int, run_seed: int) -> Any:
        @hypothesis_seed(run_seed)
        @settings(
            max_examples=count,
            deadline=None,
            database=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
        )
        @given(drawn=strategy)
        def one(drawn: tuple[Any, Any, str]) -> None:
            case, params, method = drawn
            try:
                outcomes[fuzz.run_case(case.make(), params, method)] += 1
            except Exception as exc:  # noqa: BLE001  (every failure is reported, none stops the run)
                outcomes["FAILED"] += 1
                where = traceback.extract_tb(exc.__traceback__)[-1]
                key = (
                    type(exc).__name__,
                    str(exc).splitlines()[0][:120] if str(exc) else "",
                    f"{Path(where.filename).name}:{where.lineno}",
                )
                if key not in failures:
                    changed = {
                        k: v for k, v in params.to_dict().items() if v != fuzz.Params().to_dict()[k]
                    }
                    failures[key] = (
                        f"{label} case {case}, method {method}, params changed: {changed}\n"
                        + "".join(traceback.format_exception(exc)[-6:])
                    )

        return one

    for index, (label, strategy, count) in enumerate(plans):
        if count > 0:
            make_runner(label, strategy, count, seed + index)()

    total = sum(outcomes.values())
    elapsed = time.perf_counter() - started
    print(
        f"fuzz benchmark (seed {seed}): {total} cases in {elapsed:.0f} s "
        f"({elapsed / max(1, total):.2f} s per case; noisy on a shared machine)"
    )
    for name, n in sorted(outcomes.items()):
        print(f"  {name}: {n}")
    for (kind, message, where), detail in failures.items():
        print(f"FAILURE {kind} at {where}: {message}\n  {detail}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
