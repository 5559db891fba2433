"""AS-SMoE that a user can wait for (issue 22): progress ``(done, total)`` of the
local fits and a cancel that stops them within 1 s, through the core's hooks
(smoe_gui.core.work, smoe_gui.core.methods.segment)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from smoe_gui.core.methods.pipeline import initialize
from smoe_gui.core.params import Params
from smoe_gui.core.work import Cancelled, WorkHooks, current_hooks, reporting


def patches(n: int = 160, cells: int = 10, seed: int = 3) -> np.ndarray:
    """A mosaic of flat cells with soft shading: ``cells²`` superpixels or so."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0.1, 0.9, (cells, cells))
    img = np.kron(level, np.ones((n // cells, n // cells)))
    yy, xx = np.mgrid[0:n, 0:n] / n
    return np.clip(img + 0.05 * np.sin(7 * xx + 3 * yy), 0, 1).astype(np.float32)


PARAMS = Params(n_kernels=0, as_steps=8)


def test_hooks_are_per_context_and_default_to_none() -> None:
    assert current_hooks() == WorkHooks()
    seen: list[tuple[int, int]] = []
    with reporting(progress=lambda d, t: seen.append((d, t)), cancel=lambda: False) as hooks:
        assert current_hooks() is hooks
        hooks.report(1, 2)
        hooks.check()  # not cancelled: no error
    assert seen == [(1, 2)] and current_hooks() == WorkHooks()
    with reporting(cancel=lambda: True), pytest.raises(Cancelled):
        current_hooks().check()


def test_progress_counts_every_local_fit_and_warns_without_a_budget() -> None:
    calls: list[tuple[int, int]] = []
    notes: list[str] = []
    with reporting(progress=lambda d, t: calls.append((d, t)), note=notes.append):
        init = initialize(patches(128, 8), PARAMS, method="as-smoe")
    assert init.model.n_kernels > 0
    total = calls[0][1]
    assert calls[0] == (0, total) and total > 8
    assert calls[-1] == (total, total)
    done = [d for d, _ in calls]
    assert done == sorted(done) and all(t == total for _, t in calls)
    assert len(calls) > 2  # one report per chunk of fits, not only start and end
    # ~64 segments x 4 kernels x 2 doublings: over WARN_KERNELS, so a warning first
    assert notes and "without a kernel budget" in notes[0]


def test_no_warning_with_a_budget() -> None:
    notes: list[str] = []
    with reporting(note=notes.append):
        initialize(patches(96, 6), PARAMS.replace(n_kernels=60), method="as-smoe")
    assert notes == []


def test_cancel_stops_the_local_fits_within_a_second() -> None:
    stop = threading.Event()
    asked: list[float] = []

    def progress(done: int, total: int) -> None:
        if done > 0 and not stop.is_set():  # the first chunk has ended: cancel now
            asked.append(time.perf_counter())
            stop.set()

    outcome: list[BaseException] = []

    def work() -> None:
        try:
            with reporting(progress=progress, cancel=stop.is_set):
                initialize(patches(), PARAMS, method="as-smoe")
        except BaseException as exc:  # noqa: BLE001 (the test looks at it)
            outcome.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(120.0)
    ended = time.perf_counter()
    assert not thread.is_alive()
    assert asked, "no chunk ended"
    assert outcome and isinstance(outcome[0], Cancelled)
    assert ended - asked[0] < 1.0


def test_a_chunk_polls_the_cancel_before_every_step() -> None:
    calls = 0

    def cancel() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    image = patches(64, 4)
    with reporting(cancel=cancel), pytest.raises(Cancelled):
        initialize(image, PARAMS, method="as-smoe")
    # polled by the initialisation, then by the chunks' steps; stopped at the 4th poll
    assert calls >= 4


def test_the_runner_reports_each_chunk_in_the_calling_thread() -> None:
    # a cancel that is never true changes nothing: the same kernels as without hooks
    image = patches(64, 4)
    plain = initialize(image, PARAMS, method="as-smoe").model
    threads: set[int] = set()
    with reporting(progress=lambda d, t: threads.add(threading.get_ident()),
                   cancel=lambda: False):
        hooked = initialize(image, PARAMS, method="as-smoe").model
    assert threads == {threading.get_ident()}
    assert np.array_equal(plain.mu, hooked.mu) and np.array_equal(plain.m, hooked.m)


def test_the_runner_does_not_import_dask_outside_a_dask_task() -> None:
    # importing distributed takes 0.3-3 s holding the GIL: a cancel waited as long
    import subprocess
    import sys

    code = ("import sys\n"
            "from smoe_gui.core.methods.segment.local_fit import LocalFitRunner\n"
            "with LocalFitRunner(1) as runner:\n"
            "    print(runner.kind, 'distributed' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.split() == ["threads", "False"]
