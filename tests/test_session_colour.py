"""The session's Gray/Colour switch and Compare with a chosen method, without
a window (the fakes of tests/test_session.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_session import FAST, FakeQueue, FakeTrainer, FakeView, make_image

from smoe_gui.ui.control.jobs import TrainRun
from smoe_gui.ui.control.session import COMPARE_METHODS, Session


@pytest.fixture()
def parts() -> tuple[Session, FakeView, FakeQueue, FakeQueue, FakeQueue, list[FakeTrainer]]:
    view, stages, render, inspect = FakeView(), FakeQueue(), FakeQueue(), FakeQueue()
    trainers: list[FakeTrainer] = []

    def start(image: np.ndarray, runs: list[TrainRun]) -> FakeTrainer:
        trainers.append(FakeTrainer(image, runs))
        return trainers[-1]

    session = Session(view, stages, render, inspect, start, FAST, "edge", clock=lambda: 0.0)
    return session, view, stages, render, inspect, trainers


def colour(h: int = 40, w: int = 48) -> np.ndarray:
    img = np.repeat(make_image(h, w)[:, :, None], 3, axis=2)
    img[..., 0] = np.clip(img[..., 0] * 1.1, 0, 1)
    img[..., 2] *= 0.5
    return img.astype(np.float32)


def test_switching_channels_keeps_the_source_and_restarts_the_stages(parts) -> None:
    session, view, stages, *_ = parts
    source = colour()
    rid = session.set_image(source, Path("c.png"))
    assert session.source_image.shape == (40, 48, 3) and session.image.shape == (
        40,
        48,
    )  # gray: the luma
    assert stages.jobs[rid][1][0] is session.image
    assert session.stage_done(rid, stages.run(rid))
    assert session.stage_result is not None
    recompute = session.set_params(FAST.replace(channels="rgb"), "edge")
    assert recompute  # the stages no longer hold
    assert session.image.shape == (40, 48, 3) and session.stage_result is None
    assert view.last("show_image")[0] is session.image
    rid = session.recompute()
    result = stages.run(rid)
    assert result.init.model.m.shape == (result.init.model.n_kernels, 3)
    assert result.snapshot.reconstruction.shape == (40, 48, 3)
    assert session.stage_done(rid, result)
    # a parameter that is not `channels` leaves the image alone
    image = session.image
    session.set_params(FAST.replace(channels="rgb", lr_mu=0.1), "edge", affects_stages=False)
    assert session.image is image
    # back to gray, then a colour model is still compared in RGB
    session.set_params(FAST, "edge")
    assert session.image.ndim == 2
    assert session.source_image is not None and session.source_image.ndim == 3


def test_gray_image_with_colour_gives_three_equal_channels(parts) -> None:
    session, _view, stages, *_ = parts
    session.params = FAST.replace(channels="rgb")
    rid = session.set_image(make_image())
    img = session.image
    assert img.shape == (40, 48, 3) and np.array_equal(img[..., 0], img[..., 2])
    assert stages.jobs[rid][1][0] is img


def test_compare_trains_the_selected_method_and_the_chosen_one(parts) -> None:
    session, _view, _stages, _render, _inspect, trainers = parts
    session.set_image(make_image())
    assert session.compare_methods() == COMPARE_METHODS  # edge vs grid by default
    session.method, session.compare_with = "s-smoe", "as-smoe"
    assert session.start_training(compare=True)
    assert [r.label for r in trainers[-1].runs] == ["s-smoe", "as-smoe"]
    assert [r.method for r in trainers[-1].runs] == ["s-smoe", "as-smoe"]
    assert session.train_labels == ("s-smoe", "as-smoe")
    session.stop_training_and_wait()
    session.method, session.compare_with = "grid", "grid"
    assert session.compare_methods() == ("grid", "edge")
