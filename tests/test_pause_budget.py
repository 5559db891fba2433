"""Pausing a fit: the time paused does not count against the time budget."""

from __future__ import annotations

import threading
import time

import numpy as np

from smoe_gui.core.events import StopToken
from smoe_gui.core.params import Params
from smoe_gui.core.train.training import fit


def _image() -> np.ndarray:
    yy, xx = np.mgrid[0:48, 0:48].astype(np.float32)
    img = 0.2 + 0.5 * (xx > 24) + 0.1 * yy / 48
    return np.clip(img, 0, 1).astype(np.float32)


def test_token_counts_paused_seconds() -> None:
    token = StopToken()
    assert token.paused_s() == 0.0 and not token.paused
    token.pause()
    time.sleep(0.2)
    assert token.paused and token.paused_s() >= 0.19
    token.resume()
    spent = token.paused_s()
    time.sleep(0.1)
    assert token.paused_s() == spent  # no longer counting
    token.pause()
    stopper = threading.Timer(0.1, token.stop)
    stopper.start()
    t0 = time.perf_counter()
    token.wait_while_paused()  # a stop ends the pause
    assert token.stopped and time.perf_counter() - t0 < 5


def test_pause_longer_than_the_budget_does_not_end_the_run() -> None:
    params = Params(max_pts=10, expert_iters=3, tile_size=48, tile_steps=100_000, time_budget=2.0,
                    patience=10_000, tol_db=0.0)
    # compile first: compiling is not training
    for _ in fit(_image(), params.replace(time_budget=0.3)):
        pass
    token = StopToken()
    events = fit(_image(), params, stop=token, snapshot_interval_s=10.0)
    first = next(events)
    token.pause()
    resumer = threading.Timer(2.5, token.resume)  # a pause longer than the whole budget
    resumer.start()
    t0 = time.perf_counter()
    rest = list(events)
    wall = time.perf_counter() - t0
    resumer.join()
    final = rest[-1]
    assert final.final
    assert wall >= 2.5  # it waited for the resume
    after = [e for e in rest if not e.final and e.step > first.step]
    assert len(after) >= 3, "the run went on training after the pause"
    assert final.elapsed_s < wall - 2.0  # elapsed_s leaves the pause out
