"""The pace of a training's live frames (smoe_gui.ui.control.pacing), and the
training worker's coalesced ``posted`` signal."""

from __future__ import annotations

import math

import pytest

from smoe_gui.ui.control.pacing import (
    FRAME_MAX_S,
    FRAME_MIN_S,
    LIVE_CPU_SHARE,
    OVERLAY_CPU_SHARE,
    LiveFrames,
)


def test_one_frame_in_flight_and_the_pace_follows_the_cost() -> None:
    frames = LiveFrames(0.3)
    assert frames.due(0.0)
    frames.submitted(1, 0.0, overlay=False)
    assert not frames.due(0.15)  # in flight: the next waits, whatever the time
    # a cheap frame: the shortest interval
    assert frames.done(1, 0.001, overlay=False)
    assert frames.interval_s == FRAME_MIN_S
    assert not frames.due(0.05) and frames.due(FRAME_MIN_S)
    # dear frames: further apart, never beyond FRAME_MAX_S
    frames.submitted(2, 1.0, overlay=False)
    for rid in range(3, 30):
        frames.done(rid - 1, 0.5, overlay=False)
        frames.submitted(rid, 1.0, overlay=False)
    assert frames.interval_s == FRAME_MAX_S
    middle = LiveFrames(0.3)
    middle.submitted(1, 0.0, overlay=False)
    middle.done(1, 0.012, overlay=False)
    assert middle.interval_s == pytest.approx(0.012 / LIVE_CPU_SHARE)
    assert FRAME_MIN_S < middle.interval_s < FRAME_MAX_S


def test_a_frame_in_flight_holds_the_next_until_it_ends_or_is_superseded() -> None:
    frames = LiveFrames(0.3)
    frames.submitted(1, 0.0, overlay=False)
    assert not frames.due(1.0) and not frames.due(600.0)  # slow, not lost: it reports its end
    frames.superseded()
    assert frames.due(0.5)
    assert not frames.done(1, 0.01, overlay=False)  # not the frame in flight any more


def test_the_overlay_is_spaced_by_its_extra_cost() -> None:
    frames = LiveFrames(0.3)
    assert frames.overlay_due(0.0)
    frames.submitted(1, 0.0, overlay=True)
    assert not frames.overlay_due(0.2) and frames.overlay_due(0.3)
    frames.done(1, 0.005, overlay=True)
    assert frames.overlay_s == 0.3  # cheap: the floor
    frames.submitted(2, 0.3, overlay=False)
    frames.done(2, 0.005, overlay=False)
    frames.submitted(3, 0.4, overlay=True)
    frames.done(3, 0.105, overlay=True)  # the overlay frames' mean is now 0.0345 s
    extra = (0.7 * 0.005 + 0.3 * 0.105) - 0.005
    assert frames.overlay_s == pytest.approx(extra / OVERLAY_CPU_SHARE)
    assert not frames.overlay_due(0.4 + 0.3)
    # a cost that is not a number changes nothing but frees the slot
    frames.submitted(4, 2.0, overlay=False)
    assert frames.done(4, math.nan, overlay=False) and frames.due(2.0 + FRAME_MAX_S)


def test_the_worker_emits_posted_once_until_the_gui_drains() -> None:
    import numpy as np

    from smoe_gui.ui.workers import TrainWorker

    worker = TrainWorker(np.zeros((4, 4), np.float32), [])
    seen: list[int] = []
    worker.posted.connect(lambda: seen.append(1))  # direct: same thread
    for i in range(5):
        worker._post("progress", i)
    assert worker.signals_emitted == 1 and len(seen) == 1
    assert [m[1] for m in worker.drain()] == [0, 1, 2, 3, 4]
    worker._post("snapshot", 5)
    assert worker.signals_emitted == 2 and len(seen) == 2
    assert worker.drain() == [("snapshot", 5)]
    assert worker.drain() == []


def test_a_mode_change_puts_the_overlay_on_the_next_frame() -> None:
    frames = LiveFrames(0.3)
    frames.submitted(1, 0.0, overlay=True)
    assert not frames.overlay_due(0.1)
    frames.overlay_now()
    assert frames.overlay_due(0.1)
