"""The window's session controller, without a window (fakes for the view,
the job queues and the trainer)."""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smoe_gui.core.model import SmoeModel
from smoe_gui.core.params import Params
from smoe_gui.core.train.runs import FitHistory
from smoe_gui.ui.control.jobs import ProgressBatch, compute_snapshot, compute_stages
from smoe_gui.ui.control.session import Session, TrainRun

FAST = Params(max_pts=12, expert_iters=3, tile_size=32)


def make_image(h: int = 40, w: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 0.2 + 0.3 * xx / w
    img[(xx - 20) ** 2 + (yy - 20) ** 2 < 10**2] = 0.9
    return img.astype(np.float32)


class FakeView:
    """Records what the session asks it to draw."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        if name == "preview_pixels":
            return lambda: None
        return lambda *args: self.calls.append((name, args))

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def last(self, name: str) -> tuple[Any, ...]:
        return next(args for n, args in reversed(self.calls) if n == name)


class FakeQueue:
    """Keeps submitted jobs; ``run(job_id)`` runs one now."""

    def __init__(self) -> None:
        self.jobs: dict[int, tuple[Any, tuple[Any, ...]]] = {}

    def submit(self, job_id: int, fn: Any, *args: Any) -> None:
        self.jobs[job_id] = (fn, args)

    def run(self, job_id: int) -> Any:
        fn, args = self.jobs.pop(job_id)
        return fn(*args)


class FakeTrainer:
    def __init__(self, image: np.ndarray, runs: list[TrainRun]) -> None:
        self.image, self.runs = image, runs
        self.running, self.paused, self.stopped = True, False, False
        self.outbox: list[tuple[Any, ...]] = []

    def is_running(self) -> bool:
        return self.running

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def stop(self) -> None:
        self.stopped = True

    def stop_and_wait(self) -> bool:
        self.stopped, self.running = True, False
        return True

    def wait(self) -> bool:
        return True

    def drain(self) -> list[tuple[Any, ...]]:
        out, self.outbox = self.outbox, []
        return out


@pytest.fixture()
def parts() -> tuple[Session, FakeView, FakeQueue, FakeQueue, FakeQueue, list[FakeTrainer]]:
    view, stages, render, inspect = FakeView(), FakeQueue(), FakeQueue(), FakeQueue()
    trainers: list[FakeTrainer] = []

    def start(image: np.ndarray, runs: list[TrainRun]) -> FakeTrainer:
        trainers.append(FakeTrainer(image, runs))
        return trainers[-1]

    session = Session(view, stages, render, inspect, start, FAST, "edge", clock=lambda: 0.0)
    return session, view, stages, render, inspect, trainers


def test_session_imports_no_qt() -> None:
    import subprocess

    code = ("import sys, smoe_gui.ui.control.session; "
            "print(any(m.startswith(('PySide6', 'PyQt', 'pyqtgraph')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"


def test_stale_stage_results_are_dropped(parts) -> None:
    session, view, stages, *_ = parts
    first = session.set_image(make_image(), Path("x.png"))
    assert view.names() == ["show_image"]
    second = session.recompute()
    assert second > first and session.latest_request == second
    old = compute_stages(make_image(), FAST, "edge")
    assert not session.stage_done(first, old)
    assert session.dropped_results == 1 and "show_stages" not in view.names()
    result = stages.run(second)
    assert session.stage_done(second, result)
    assert session.stage_result is result and session.shown_model is result.snapshot.model
    assert view.last("show_stages")[0] == second
    assert session.matching_init(FAST, "edge") is result.init
    assert session.matching_init(FAST, "grid") is None
    assert session.model_to_save() is result.snapshot.model


def test_busy_listeners_hear_each_stage_request_and_its_end(parts) -> None:
    session, _view, stages, *_ = parts
    heard: list[bool] = []
    session.busy_listeners.append(heard.append)
    first = session.set_image(make_image())
    second = session.recompute()
    assert heard == [True, True]
    assert not session.stage_done(first, stages.run(first))  # an older request: still busy
    assert heard == [True, True]
    assert session.stage_done(second, stages.run(second))
    assert heard == [True, True, False]
    third = session.recompute()
    assert not session.stage_failed(second, "old")
    assert session.stage_failed(third, "boom") and heard == [True, True, False, True, False]
    fourth = session.recompute()
    assert not session.stage_done(fourth, None)  # a cancelled newest request ends it too
    assert heard[-2:] == [True, False]


def test_params_that_change_stages_drop_the_trained_model(parts) -> None:
    session, _view, stages, _r, _i, _t = parts
    rid = session.set_image(make_image())
    session.stage_done(rid, stages.run(rid))
    assert session.set_params(FAST.replace(lr_mu=0.01), "edge", affects_stages=False) is False
    assert session.params.lr_mu == 0.01
    assert session.set_params(FAST.replace(max_pts=8), "edge") is True
    session.closing = True
    assert session.recompute() > rid


def test_training_messages_reach_the_view_and_restart_after_stop(parts) -> None:
    session, view, stages, render, _inspect, trainers = parts
    image = make_image()
    rid = session.set_image(image)
    result = stages.run(rid)
    session.stage_done(rid, result)
    assert session.start_training()
    trainer = trainers[0]
    assert [r.label for r in trainer.runs] == ["train"] and trainer.runs[0].init is result.init
    assert session.is_training() and not session.start_training()  # one at a time
    session.toggle_pause()
    assert trainer.paused and view.last("show_training_state") == ("paused",)
    session.toggle_pause()
    assert not trainer.paused

    model: SmoeModel = result.snapshot.model
    history = FitHistory()
    history.add_row(1, 0.1, "tiles", 20.0, 30, 0)
    history.add_row(2, 0.2, "tiles", 21.5, 30, 0)
    batch = ProgressBatch("train", history, ["lr halved"], 2)
    done = types.SimpleNamespace(model=model, reconstruction=result.snapshot.reconstruction)
    trainer.outbox += [("run_started", "train"), ("progress", batch), ("snapshot", "train", model),
                       ("run_finished", "train", done)]
    session.drain_training()
    label, text, shown = view.last("show_progress")
    assert label == "train" and shown is batch and "step 2" in text and "21.50 dB" in text
    assert "tile 1/2" in text
    final_rid = max(render.jobs)
    assert len(render.jobs) == 2  # the live preview and the final model
    assert session.final_model("train") is model

    # a parameter change during training: stop, then start again with the new parameters
    new = FAST.replace(delta_mu=5.0)
    assert session.conflicts_with_training(new, "edge")
    assert not session.conflicts_with_training(FAST, "edge")
    session.restart_training_with(new, "edge")
    assert trainer.stopped
    trainer.running = False
    session.training_thread_finished(trainer)
    assert "done — train: 21.50 dB, 30 kernels, 2 steps" in view.last("training_ended")[0]
    assert len(trainers) == 2 and trainers[1].runs[0].params == new
    assert session.train_params == (new, "edge")

    # the final model's render is drawn with its overlay; an older one is dropped
    snap = render.run(final_rid)
    assert session.snapshot_done(final_rid, snap)
    assert view.last("show_snapshot")[2] is True
    assert not session.snapshot_done(final_rid - 1, snap)


def test_compare_runs_edge_then_grid_and_failure_is_reported(parts) -> None:
    session, view, _stages, _r, _i, trainers = parts
    with pytest.raises(ValueError, match="image"):
        session.start_training()
    session.set_image(make_image())
    assert session.start_training(compare=True)
    assert [(r.label, r.method) for r in trainers[0].runs] == [("edge", "edge"), ("grid", "grid")]
    first, second = trainers[0].runs
    assert first.params.n_kernels == 0 and first.params == session.params
    trainers[0].outbox.append(("failed", "no kernels left"))
    session.drain_training()
    assert view.last("show_error") == ("Training failed", "no kernels left")
    session.stop_training_and_wait()
    assert not session.is_training() and session.trainer is None
    assert "training_ended" in view.names()


def test_loaded_model_must_fit_and_kernels_are_inspected(parts) -> None:
    session, view, stages, render, inspect, _t = parts
    image = make_image()
    rid = session.set_image(image)
    session.stage_done(rid, stages.run(rid))
    model = session.stage_result.snapshot.model
    other = model.replace(height=20, width=24)
    with pytest.raises(ValueError, match="24×20"):
        session.check_model_fits(other, "m.npz")
    render_rid = session.show_model(model)
    session.snapshot_done(render_rid, compute_snapshot(image, model))
    assert session.model_to_save() is model

    x, y = model.mu[0]
    found = session.kernel_near(float(x), float(y), 2.0)
    assert found is not None and found[0] == 0 and found[1].index == 0
    gate_rid = session.select_kernel(0)
    assert session.gate_done(gate_rid, inspect.run(gate_rid))
    (shown,) = view.last("show_inspection")
    assert shown.index == 0 and shown.weight_map.shape == image.shape
    assert session.select_kernel(None) == -1 and view.last("show_inspection") == (None,)
    assert view.last("show_captions")[1] == f"loaded model · K={model.n_kernels}"


def test_compare_gives_the_partner_the_first_methods_kernel_count(parts) -> None:
    """A Compare without a kernel budget compares at equal budgets: the partner
    plans for as many kernels as the drawn initialisation of the first method has."""
    session, _view, stages, _r, _i, trainers = parts
    rid = session.set_image(make_image())
    session.stage_done(rid, stages.run(rid))
    count = session.stage_result.init.n_kernels
    assert count > 0
    assert session.start_training(compare=True)
    first, second = trainers[0].runs
    assert first.init is session.stage_result.init
    assert second.params.n_kernels == count
    assert second.params.replace(n_kernels=0) == session.params
    session.stop_training_and_wait()

    # with a budget, both plan for it
    session.set_params(session.params.replace(n_kernels=40), session.method)
    assert session.start_training(compare=True)
    runs = trainers[-1].runs
    assert [r.params.n_kernels for r in runs] == [40, 40]
    session.stop_training_and_wait()


def test_live_frames_without_the_overlay_skip_its_geometry() -> None:
    """While training, only a frame that will draw the kernel overlay (at most
    every OVERLAY_INTERVAL_S) is rendered with the kernel mode's gate shares."""
    from smoe_gui.ui.control.pacing import FRAME_MIN_S, LiveFrames
    from smoe_gui.ui.control.session import OVERLAY_INTERVAL_S

    view, stages, render, inspect = FakeView(), FakeQueue(), FakeQueue(), FakeQueue()
    trainers: list[FakeTrainer] = []
    now = [0.0]

    def start(image: np.ndarray, runs: list[TrainRun]) -> FakeTrainer:
        trainers.append(FakeTrainer(image, runs))
        return trainers[-1]

    session = Session(view, stages, render, inspect, start, FAST, "edge", clock=lambda: now[0])
    session.live_frames = LiveFrames(OVERLAY_INTERVAL_S, math.inf, math.inf)  # pace: no cost
    session.kernel_mode = "ellipses"
    rid = session.set_image(make_image())
    result = stages.run(rid)
    session.stage_done(rid, result)
    assert session.start_training()
    model = result.snapshot.model

    def frame() -> tuple[int, str]:
        trainers[0].outbox.append(("snapshot", "train", model))
        session.drain_training()
        rid = max(render.jobs)
        mode = render.jobs[rid][1][-2]  # compute_snapshot's kernel_mode
        assert session.snapshot_done(rid, render.run(rid))
        return rid, mode

    first, mode = frame()
    assert mode == "ellipses" and view.last("show_snapshot")[2] is True  # with the overlay
    now[0] += FRAME_MIN_S  # the next live frame, before the overlay is due again
    _, mode = frame()
    assert mode == "centres" and view.last("show_snapshot")[2] is False
    assert view.last("show_snapshot")[1].kernels.shares is None  # no gate shares computed
    now[0] += OVERLAY_INTERVAL_S
    _, mode = frame()
    assert mode == "ellipses" and view.last("show_snapshot")[2] is True


def test_live_frames_one_in_flight_the_newest_waiting() -> None:
    """A snapshot that arrives while a live frame renders waits (a newer one
    replaces it) and is rendered once that frame is drawn and the pace allows."""
    from smoe_gui.ui.control.pacing import FRAME_MIN_S, LiveFrames
    from smoe_gui.ui.control.session import OVERLAY_INTERVAL_S

    view, stages, render, inspect = FakeView(), FakeQueue(), FakeQueue(), FakeQueue()
    trainers: list[FakeTrainer] = []
    now = [0.0]

    def start(image: np.ndarray, runs: list[TrainRun]) -> FakeTrainer:
        trainers.append(FakeTrainer(image, runs))
        return trainers[-1]

    session = Session(view, stages, render, inspect, start, FAST, "edge", clock=lambda: now[0])
    rid = session.set_image(make_image())
    result = stages.run(rid)
    session.stage_done(rid, result)
    assert session.start_training()
    session.live_frames = LiveFrames(OVERLAY_INTERVAL_S, math.inf, math.inf)  # pace: no cost
    model = result.snapshot.model
    newer = SmoeModel(model.mu, model.A, model.m, model.log_alpha, model.height, model.width)
    newest = SmoeModel(model.mu, model.A, model.m, model.log_alpha, model.height, model.width)

    def snapshot(m: SmoeModel) -> None:
        trainers[0].outbox.append(("snapshot", "train", m))
        session.drain_training()

    snapshot(model)
    assert len(render.jobs) == 1
    first = max(render.jobs)
    now[0] += 0.5
    snapshot(newer)
    snapshot(newest)  # both wait: the first frame is still rendering
    assert list(render.jobs) == [first]
    assert session.snapshot_done(first, render.run(first))
    assert len(render.jobs) == 1  # the newest, submitted at once (it is due)
    second = max(render.jobs)
    assert render.jobs[second][1][3] is newest  # compute_snapshot's model
    assert session.snapshot_done(second, render.run(second))
    snapshot(model)
    assert not render.jobs  # drawn FRAME_MIN_S ago at the earliest: it waits
    now[0] += 1.5 * FRAME_MIN_S
    snapshot(newer)
    assert len(render.jobs) == 1 and render.jobs[max(render.jobs)][1][3] is newer
    session.stop_training_and_wait()


def test_live_frames_render_in_their_own_queue() -> None:
    """A training's live frames go to ``frame_jobs`` (the window's low-priority
    thread); the run's final model goes to ``render_jobs``, and a live frame
    still in flight then is dropped."""
    from smoe_gui.core.train.runs import run_fit

    now = [0.0]
    session, view, render, frames, trainer, model = _training(now)
    trainer.outbox.append(("snapshot", "train", model))
    session.drain_training()
    assert len(frames.jobs) == 1 and not render.jobs
    frame = max(frames.jobs)
    drawn = session.snapshot_done(frame, frames.run(frame))
    assert drawn and view.last("show_snapshot")[0] == frame
    now[0] += 1.0
    trainer.outbox.append(("snapshot", "train", model))
    session.drain_training()
    late = max(frames.jobs)  # in flight when the run ends
    fit = run_fit(make_image(), FAST.replace(time_budget=0.5, max_steps=3), "edge",
                  init=model)
    trainer.outbox.append(("run_finished", "train", fit))
    session.drain_training()
    assert len(render.jobs) == 1 and len(frames.jobs) == 1  # the final model: the render queue
    final = max(render.jobs)
    assert session.snapshot_done(final, render.run(final))
    assert not session.snapshot_done(late, frames.run(late))  # stale: never drawn over it
    assert view.last("show_snapshot")[0] == final
    session.stop_training_and_wait()


def test_warm_ups_run_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows made one after another each start a warm-up, and warm-ups outlive
    their windows: only one runs the warm-up fit, the others wait for it."""
    import threading
    import time

    from smoe_gui.core.train import runs
    from smoe_gui.ui.control import jobs

    monkeypatch.setattr(jobs, "_warmed", False)
    running: list[int] = []
    overlap: list[int] = []

    def slow_fit(*_a: Any, **_k: Any) -> None:
        running.append(1)
        overlap.append(len(running))
        time.sleep(0.3)
        running.pop()

    monkeypatch.setattr(runs, "run_fit", slow_fit)
    monkeypatch.setattr("smoe_gui.core.train.video.prepare_export", lambda: None)
    threads = [threading.Thread(target=jobs.warm_up_training) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10.0)
    assert overlap == [1]  # one fit, never two at once
    assert jobs.training_warmed()


def _training(now: list[float]) -> tuple[Session, FakeView, FakeQueue, FakeQueue, FakeTrainer, Any]:
    """A session training (fake trainer) with live frames paced at no cost;
    returns it, its view, render and frame queues, the trainer and the initial model."""
    from smoe_gui.ui.control.pacing import LiveFrames
    from smoe_gui.ui.control.session import OVERLAY_INTERVAL_S

    view, stages, render, inspect, frames = (FakeView(), FakeQueue(), FakeQueue(), FakeQueue(),
                                             FakeQueue())
    trainers: list[FakeTrainer] = []

    def start(image: np.ndarray, runs: list[TrainRun]) -> FakeTrainer:
        trainers.append(FakeTrainer(image, runs))
        return trainers[-1]

    session = Session(view, stages, render, inspect, start, FAST, "edge", clock=lambda: now[0],
                      frame_jobs=frames)
    rid = session.set_image(make_image())
    result = stages.run(rid)
    session.stage_done(rid, result)
    render.jobs.clear()
    assert session.start_training()
    session.live_frames = LiveFrames(OVERLAY_INTERVAL_S, math.inf, math.inf)
    return session, view, render, frames, trainers[0], result.snapshot.model


def _frame(session: Session, trainer: FakeTrainer, frames: FakeQueue, model: Any) -> int | None:
    """Post a snapshot of ``model``; the id of the frame job it started, if any."""
    before = set(frames.jobs)
    trainer.outbox.append(("snapshot", "train", model))
    session.drain_training()
    new = set(frames.jobs) - before
    return max(new) if new else None


def test_a_kernel_mode_change_while_paused_is_drawn_at_once() -> None:
    """A paused training sends no frames: the mode change renders its newest
    model (a snapshot waiting for the pace included) in the new mode now."""
    now = [0.0]
    session, view, render, frames, trainer, model = _training(now)
    first = _frame(session, trainer, frames, model)
    assert first is not None
    newer = model.replace()
    assert _frame(session, trainer, frames, newer) is None  # waits: one frame in flight
    assert session.snapshot_done(first, frames.run(first))
    session.toggle_pause()
    assert session.is_paused()
    rid = session.set_kernel_mode("territories")
    assert rid >= 0 and rid in render.jobs
    _fn, args = render.jobs[rid]
    assert args[1] is newer and args[7] == "territories"
    assert session.snapshot_done(rid, render.run(rid))
    _rid, snap, overlay = view.last("show_snapshot")
    assert overlay and snap.kernels.territories is not None
    session.stop_training_and_wait()


def test_a_kernel_mode_change_while_training_puts_the_overlay_on_the_next_frame() -> None:
    now = [0.0]
    session, view, render, frames, trainer, model = _training(now)
    first = _frame(session, trainer, frames, model)
    assert first is not None and frames.jobs[first][1][9] == "ellipses"  # the first: overlay
    session.snapshot_done(first, frames.run(first))
    now[0] += 0.12  # a frame is due, the overlay (every 0.3 s) is not
    plain = _frame(session, trainer, frames, model)
    assert plain is not None and frames.jobs[plain][1][9] == "centres"
    session.snapshot_done(plain, frames.run(plain))
    now[0] += 0.12  # nor now, but for the mode change
    assert session.set_kernel_mode("territories") == -1 and not render.jobs
    marked = _frame(session, trainer, frames, model)
    assert marked is not None and frames.jobs[marked][1][9] == "territories"
    assert session.snapshot_done(marked, frames.run(marked))
    assert view.last("show_snapshot")[2]  # drawn with the overlay
    session.stop_training_and_wait()


def test_a_slow_live_frame_is_drawn_late_and_never_replaced() -> None:
    """However long a frame takes (a loaded machine, its thread below the
    training's priority), it holds the next one back and is drawn when it ends:
    replacing it would cancel it for one as slow, and no frame would ever show."""
    now = [0.0]
    session, view, render, frames, trainer, model = _training(now)
    slow = _frame(session, trainer, frames, model)
    assert slow is not None
    for _ in range(5):
        now[0] += 10.0
        assert _frame(session, trainer, frames, model) is None
    assert session.snapshot_done(slow, frames.run(slow))
    assert view.last("show_snapshot")[0] == slow
    assert len(frames.jobs) == 1  # the snapshot that waited goes next
    session.stop_training_and_wait()


@pytest.mark.parametrize("end", ["failed", "cancelled"])
def test_a_failed_or_cancelled_frame_lets_the_next_one_go(end: str) -> None:
    now = [0.0]
    session, view, render, frames, trainer, model = _training(now)
    lost = _frame(session, trainer, frames, model)
    assert lost is not None
    now[0] += 1.0
    assert _frame(session, trainer, frames, model) is None  # waits for the one in flight
    frames.jobs.pop(lost)
    if end == "failed":
        assert session.snapshot_failed(lost, "out of memory")
    else:
        assert not session.snapshot_done(lost, None)
    assert len(frames.jobs) == 1  # the waiting snapshot went
    session.stop_training_and_wait()


@pytest.mark.parametrize("end", ["failed", "cancelled"])
def test_a_failed_model_render_is_not_pending_for_ever(parts: Any, end: str) -> None:
    session, view, stages, render, _inspect, _trainers = parts
    rid = session.set_image(make_image())
    session.stage_done(rid, stages.run(rid))
    mode = session.set_kernel_mode("territories")
    assert mode >= 0 and session.render_pending()
    render.jobs.pop(mode)
    if end == "failed":
        assert session.snapshot_failed(mode, "out of memory")
    else:
        assert not session.snapshot_done(mode, None)
    assert not session.render_pending()
