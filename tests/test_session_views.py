"""The session's side of the kernel view: its modes, the inspection, the
captions that say which model each view shows, and the Compare switch."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from test_session import FAST, FakeQueue, FakeTrainer, FakeView, make_image

from smoe_gui.ui.control.jobs import TrainRun
from smoe_gui.ui.control.session import Session


@pytest.fixture()
def ready() -> tuple[Session, FakeView, FakeQueue, FakeQueue, list[FakeTrainer]]:
    view, stages, render, inspect = FakeView(), FakeQueue(), FakeQueue(), FakeQueue()
    trainers: list[FakeTrainer] = []

    def start(image: np.ndarray, runs: list[TrainRun]) -> FakeTrainer:
        trainers.append(FakeTrainer(image, runs))
        return trainers[-1]

    session = Session(view, stages, render, inspect, start, FAST, "edge", clock=lambda: 0.0)
    rid = session.set_image(make_image(), Path("x.png"))
    assert session.stage_done(rid, stages.run(rid))
    return session, view, render, inspect, trainers


def test_captions_say_which_model(ready) -> None:
    session, view, *_ = ready
    stages, model = view.last("show_captions")
    k = session.shown_model.n_kernels
    assert stages == "edge stages" and model == f"edge · initial · K={k}"


def test_kernel_mode_renders_what_the_mode_needs(ready) -> None:
    session, view, render, *_ = ready
    with pytest.raises(ValueError, match="unknown kernel view mode"):
        session.set_kernel_mode("blobs")
    rid = session.set_kernel_mode("territories")
    assert rid > 0
    snap = render.run(rid)
    assert snap.kernels.territories is not None and snap.kernels.shares is None
    # the initial model keeps its kinds of kernel (pairs are linked)
    assert len(snap.kernels.pair_links) > 0
    assert session.snapshot_done(rid, snap)
    rid = session.set_kernel_mode("ellipses")
    snap = render.run(rid)
    assert snap.kernels.shares is not None and snap.kernels.territories is None


def test_inspection_and_its_clearing(ready) -> None:
    session, view, _render, inspect, _ = ready
    rid = session.select_kernel(0)
    assert session.gate_done(rid, inspect.run(rid))
    (result,) = view.last("show_inspection")
    assert result.index == 0 and 0.0 < result.share <= 1.0 and result.area >= 0
    assert session.partner_of(0) == 1 and session.partner_of(1) == 0
    # a parameter change clears it
    session.set_params(FAST.replace(lr_mu=0.1), "edge", affects_stages=False)
    assert view.last("show_inspection") == (None,) and session.selected_kernel is None


def test_compare_switch_shows_either_run(ready) -> None:
    session, view, render, _inspect, trainers = ready
    assert session.start_training(compare=True)
    image = session.image
    model = session.shown_model
    results = {}
    for label in ("edge", "grid"):
        sub = model.subset(np.arange(model.n_kernels - (label == "grid") * 3))
        results[label] = SimpleNamespace(model=sub, reconstruction=image.copy(), psnr_db=30.0)
        trainers[0].outbox.append(("run_finished", label, results[label]))
    trainers[0].running = False
    session.training_thread_finished(trainers[0])
    assert session.compared_labels() == ("edge", "grid")
    assert view.last("show_captions")[1].startswith("grid · trained")
    rid = session.show_run("edge")
    assert view.last("show_captions")[1].startswith("edge · trained")
    snap = render.run(rid)
    assert snap.model is results["edge"].model
    with pytest.raises(ValueError, match="no finished run"):
        session.show_run("nothing")
