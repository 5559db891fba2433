"""What the window shows for each initialisation method, without a window:
kernels styled by what they are (initial kinds of every method, trained),
each method's lecture (data and the Qt-free walk through it), and the stage
views' titles."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from test_session import FakeQueue, FakeTrainer, FakeView, make_image

from smoe_gui.core.methods.pipeline import SEGMENT_METHODS
from smoe_gui.core.methods.segment.segment_init import AS_PATCH
from smoe_gui.core.params import METHODS, Params
from smoe_gui.ui.control.geometry import (
    INITIAL_CATEGORIES,
    KERNEL_CATEGORIES,
    KERNEL_CATEGORY_LABELS,
    KERNEL_MODES,
    kernel_categories,
    kernel_geometry,
)
from smoe_gui.ui.control.jobs import TrainRun, compute_stages
from smoe_gui.ui.control.lecture_steps import (
    LECTURES,
    STAGE_TITLES,
    VIEW_NAMES,
    LectureState,
    lecture_steps,
    stage_titles,
)
from smoe_gui.ui.control.session import Session, stage_summary
from smoe_gui.ui.views.kernel_panel import kernel_kind_text

#: Small and quick for every method (AS-SMoE's local fits short).
QUICK = Params(max_pts=12, expert_iters=3, tile_size=32, n_kernels=24, as_steps=10, as_doublings=1)


# --------------------------------------------------------------------------- kernel kinds
def test_every_method_has_its_initial_kernel_categories() -> None:
    assert set(INITIAL_CATEGORIES) == set(METHODS)
    assert set(KERNEL_CATEGORY_LABELS) == set(KERNEL_CATEGORIES)
    for method, kinds in INITIAL_CATEGORIES.items():
        assert "trained" not in kinds and set(kinds) <= set(KERNEL_CATEGORIES), method
    for method in SEGMENT_METHODS:
        assert INITIAL_CATEGORIES[method] == ("segment",)


def test_kernel_categories_follow_provenance_not_method() -> None:
    for method in METHODS:
        groups = kernel_categories(method, 7, n_pairs=2)
        assert len(groups["trained"]) == 0, method  # an initial model is never drawn as trained
        assert sum(len(g) for g in groups.values()) == 7
    edge = kernel_categories("edge", 7, n_pairs=2)
    assert edge["pair"].tolist() == [0, 1, 2, 3] and edge["background"].tolist() == [4, 5, 6]
    assert kernel_categories("s-smoe", 5)["segment"].tolist() == list(range(5))
    assert kernel_categories("grid", 5)["grid"].tolist() == list(range(5))
    for method in (None,):
        assert kernel_categories(method, 5)["trained"].tolist() == list(range(5))
    with pytest.raises(ValueError, match="no kernel categories"):
        kernel_categories("blobs", 5)


@pytest.mark.parametrize("method", METHODS)
def test_initial_model_of_every_method_is_drawn_as_initial(method: str) -> None:
    """The stage job's geometry (what view 4 draws): the initial kinds of the
    method; the same model as a trained one: every kernel trained."""
    result = compute_stages(make_image(), QUICK, method, "ellipses")
    geo = result.snapshot.kernels
    k = result.snapshot.model.n_kernels
    counts = {c: len(geo.centres[c]) for c in KERNEL_CATEGORIES}
    assert counts["trained"] == 0 and sum(counts.values()) == k
    assert {c for c, n in counts.items() if n} <= set(INITIAL_CATEGORIES[method])
    assert geo.category_of(0) in INITIAL_CATEGORIES[method]
    assert (
        geo.share_classes(geo.category_of(0)) is not None
    )  # ellipses faded by share, whatever the kind
    trained = kernel_geometry(result.snapshot.model, None)
    assert len(trained.centres["trained"]) == k
    # the status bar's counts: only the stages the method has
    counts, times = stage_summary(result, 1.0)
    assert f"{k:,}" in counts and "init PSNR" in counts and times.startswith("ms: ")
    if method == "edge":
        assert "edge pixels" in counts and "reduced" in counts
    else:
        assert (
            counts.startswith(f"{method}: ")
            and "edge pixels" not in counts
            and "reduced" not in counts
        )


@pytest.mark.parametrize("method", ["s-smoe", "grid"])
def test_session_keeps_the_kinds_of_the_initial_model(method: str) -> None:
    view, stages, render, inspect = FakeView(), FakeQueue(), FakeQueue(), FakeQueue()
    trainers: list[FakeTrainer] = []

    def start(image: np.ndarray, runs: list[TrainRun]) -> FakeTrainer:
        trainers.append(FakeTrainer(image, runs))
        return trainers[-1]

    session = Session(view, stages, render, inspect, start, QUICK, method, clock=lambda: 0.0)
    rid = session.set_image(make_image(), Path("x.png"))
    assert session.stage_done(rid, stages.run(rid))
    kind = INITIAL_CATEGORIES[method][0]
    assert session.kernel_kind(0) == kind
    # a kernel-view mode change draws the initial model again: still its kinds
    rid = session.set_kernel_mode("centres")
    assert session.render_pending()
    snap = render.run(rid)
    assert (
        len(snap.kernels.centres[kind]) == snap.model.n_kernels
        and len(snap.kernels.centres["trained"]) == 0
    )
    assert session.snapshot_done(rid, snap) and not session.render_pending()
    assert session.kernel_kind(0) == kind
    # a loaded (or trained) model: trained
    model = session.stage_result.snapshot.model
    loaded = type(model)(model.mu, model.A, model.m, model.log_alpha, model.height, model.width)
    rid = session.show_model(loaded)
    snap = render.run(rid)
    assert len(snap.kernels.centres["trained"]) == loaded.n_kernels
    assert session.snapshot_done(rid, snap) and session.kernel_kind(0) == "trained"


def test_kernel_kind_text() -> None:
    assert kernel_kind_text("segment") == "segment (S-SMoE, AS-SMoE), initial"
    assert kernel_kind_text("pair") == "edge pair, initial"
    assert kernel_kind_text("trained") == "trained / loaded"
    assert kernel_kind_text("segment", short=True) == "segment, initial"
    assert kernel_kind_text("pair", short=True) == "edge pair, initial"
    assert kernel_kind_text("trained", short=True) == "trained / loaded"


# --------------------------------------------------------------------------- lectures
def test_every_method_has_a_lecture_of_valid_steps() -> None:
    assert set(LECTURES) == set(METHODS)
    for method, steps in LECTURES.items():
        assert steps == lecture_steps(method)
        assert len(steps) >= 3, method
        assert steps[-1].training and not any(s.training for s in steps[:-1]), method
        assert "reconstruction" in steps[-2].views, method  # the initial model before training
        for i, step in enumerate(steps):
            assert step.title.startswith(f"{i + 1} "), (method, step.title)
            assert step.views and set(step.views) <= set(VIEW_NAMES), (method, step.title)
            assert step.kernel_mode is None or step.kernel_mode in KERNEL_MODES
            assert step.caption.strip() and step.caption == step.caption.strip()
        shown = [set(s.views) for s in steps]
        assert all(a <= b for a, b in zip(shown, shown[1:], strict=False)), (
            method
        )  # revealed one at a time
    with pytest.raises(ValueError, match="no lecture"):
        lecture_steps("blobs")


#: What only the edge method does: no other method's lecture may say it.
EDGE_ONLY = ("Canny", "edge pixel", "pair of kernels", "Reduced segments", "background kernels")


@pytest.mark.parametrize("method", [m for m in METHODS if m != "edge"])
def test_other_methods_lectures_describe_that_method(method: str) -> None:
    steps = lecture_steps(method)
    text = " ".join(f"{s.title} {s.caption}" for s in steps)
    for phrase in EDGE_ONLY:
        assert phrase not in text, (method, phrase)
    revealed = {v for s in steps for v in s.views}
    assert "edges" not in revealed and "reduced" not in revealed  # no edges, no reduction
    assert "kernels" in revealed and "reconstruction" in revealed
    if method in SEGMENT_METHODS:
        assert (
            steps[0].views == ("segments",) and "Superpixels" in steps[0].title
        )  # the segment map first
        assert "superpixel" in text.lower()
    if method == "s-smoe":
        assert "covariance" in text and "centroid" in text and "principal axis" in text
    if method == "as-smoe":
        assert "L0" in text and f"{AS_PATCH}×{AS_PATCH}" in text and "one initial model" in text
        assert "sparsification" in text.lower()
    if method == "grid":
        assert "evenly" in text and "superpixel" not in text.lower()


def test_edge_lecture_walks_the_five_stages() -> None:
    steps = lecture_steps("edge")
    assert [s.views for s in steps[:5]] == [VIEW_NAMES[: i + 1] for i in range(5)]
    assert "Canny" in steps[0].caption


def test_lecture_state_walks_and_follows_the_method() -> None:
    state = LectureState()
    assert state.current() is None and state.views() == VIEW_NAMES and state.caption_html() == ""
    assert not state.next()
    state.start("s-smoe")
    assert state.current() is lecture_steps("s-smoe")[0]
    assert state.views() == ("segments",)
    assert "s-smoe · 1 Superpixels" in state.caption_html() and "(1/5)" in state.caption_html()
    while state.next():
        pass
    assert state.step == len(lecture_steps("s-smoe")) - 1 and state.current().training
    assert not state.next()
    assert state.back() and state.step == len(lecture_steps("s-smoe")) - 2
    # another method: its lecture from the start
    assert state.set_method("as-smoe")
    assert state.step == 0 and state.current() is lecture_steps("as-smoe")[0]
    assert not state.set_method("as-smoe")
    assert not state.back()
    state.stop()
    assert state.current() is None and not state.back()
    assert not state.set_method("grid")  # nothing shown to change
    assert state.method == "grid"
    with pytest.raises(ValueError):
        state.set_method("blobs")
    with pytest.raises(ValueError):
        LectureState("blobs")


def test_caption_is_escaped_rich_text() -> None:
    state = LectureState("edge")
    state.start()
    html = state.caption_html()
    assert html.startswith("<b>edge · 1 Canny edges</b> (1/6)")
    assert "Page Down" in html and "Page Up" not in html  # nothing before the first step
    state.next()
    assert "Page Down" in state.caption_html() and "Page Up" in state.caption_html()
    while state.next():
        pass
    last = state.caption_html()
    assert "(6/6)" in last and "Page Down" not in last and "Page Up / B: back" in last


# --------------------------------------------------------------------------- titles
def test_stage_titles_name_what_each_method_shows() -> None:
    assert stage_titles("edge") == STAGE_TITLES
    assert (
        stage_titles("grid") == STAGE_TITLES
    )  # views 1-3 say in their captions that grid has none
    for method in SEGMENT_METHODS:
        titles = stage_titles(method)
        assert titles["segments"] == "2  Superpixels"
        assert titles["kernels"] == STAGE_TITLES["kernels"]


def test_the_legend_lists_the_shown_methods_entries_only(qapp) -> None:
    """Edge results: segment directions, clusters, pair links, edge pixels and the edge
    kinds, no superpixels; S-SMoE results: superpixels and segment kernels only."""
    from smoe_gui.ui.theme import current_theme
    from smoe_gui.ui.views.legend import legend_html

    theme = current_theme()
    edge = legend_html(theme, "centres", False, "edge")
    assert "θ=0°" in edge and "cluster (DBSCAN)" in edge and "pair link" in edge
    assert "edge pixel" in edge and "edge pair" in edge and "background" in edge
    assert "superpixel" not in edge and "segment (S-SMoE" not in edge and "&nbsp;grid" not in edge
    segment = legend_html(theme, "centres", False, "s-smoe")
    assert "superpixel boundary" in segment and "segment (S-SMoE, AS-SMoE)" in segment
    assert "θ=0°" not in segment and "pair link" not in segment and "cluster" not in segment
    everything = legend_html(theme, "centres", False)  # no result yet: every method's
    assert "superpixel boundary" in everything and "pair link" in everything
    assert "&nbsp;grid" in everything
    assert "trained / loaded" in edge and "trained / loaded" in segment


def test_the_lecture_action_promises_no_step_count() -> None:
    """The lectures differ in length (edge 6 steps, grid 3, the segment methods 5): the
    menu's tooltip said "(1 → 5, then training)", false for every method but none."""
    from smoe_gui.ui.actions import ACTIONS
    from smoe_gui.ui.control.lecture_steps import lecture_steps

    tip = next(a for a in ACTIONS if a.id == "lecture").tooltip
    counts = {len(lecture_steps(m)) for m in METHODS}
    assert len(counts) > 1 and "method" in tip
    assert not re.search(r"\d", tip), tip
