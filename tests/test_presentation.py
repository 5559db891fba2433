"""The Qt-free rules of the stage grid's layouts (ui/control/presentation.py)."""

from __future__ import annotations

import pytest

from smoe_gui.ui.control.lecture_steps import LECTURES, LectureStep
from smoe_gui.ui.control.presentation import (
    CELLS,
    Placement,
    presentation_fonts,
    presentation_placement,
    step_cells,
)


def test_cells_are_the_five_views_then_the_expert_plot() -> None:
    assert CELLS == ("edges", "segments", "reduced", "kernels", "reconstruction", "expert")
    assert Placement.focus("kernels").cells == {"kernels": (0, 0, 2, 3)}
    with pytest.raises(ValueError, match="unknown stage cell"):
        Placement.focus("nope")


def test_every_lecture_step_has_a_current_stage() -> None:
    for method, steps in LECTURES.items():
        for step in steps:
            current, previous = step_cells(step)
            assert current in step.views and previous != current, (method, step.title)
    training = LectureStep("t", "", ("edges", "kernels", "reconstruction"), training=True)
    assert step_cells(training) == ("reconstruction", "kernels")


def test_the_previous_stage_beside_only_when_it_costs_little() -> None:
    step = LectureStep("4", "", ("reduced", "kernels"))
    wide = presentation_placement(step, (1200, 520), (512, 768))  # parrots on a projector
    assert set(wide.cells) == {"kernels", "reduced"} and wide.main == "kernels"
    assert wide.column_stretch[0] > wide.column_stretch[1] and not wide.linked
    tall = presentation_placement(step, (1200, 520), (2000, 500))  # a tall image: width to spare
    assert set(tall.cells) == {"kernels", "reduced"}
    square = presentation_placement(step, (700, 600), (512, 512))  # side by side: much smaller
    assert square.cells == {"kernels": (0, 0, 2, 3)}
    first = presentation_placement(LectureStep("1", "", ("edges",)), (1200, 520), (512, 768))
    assert first.cells == {"edges": (0, 0, 2, 3)}


def test_fonts_are_at_least_20_px_at_720() -> None:
    fonts = presentation_fonts(720)
    assert fonts.caption_px >= 20 and fonts.title_px >= 20 and fonts.legend_px >= 16
    assert presentation_fonts(1080).caption_px > fonts.caption_px
