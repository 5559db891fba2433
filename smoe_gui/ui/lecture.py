"""Lecture mode: the stages revealed one at a time, each with a caption.

View -> Lecture mode (F11) shows stage 1 alone with its caption; Next
(Page Down or N) reveals the next stage beside the ones shown, up to the five
views and then the training plots; Back (Page Up or B) hides the last one.
Leaving lecture mode shows everything again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["LECTURE_STEPS", "LectureMode", "LectureStep"]


@dataclass(frozen=True)
class LectureStep:
    """One step of the lecture.

    Attributes
    ----------
    title : str
    caption : str
        One or two sentences for the class.
    views : tuple of str
        Stage views shown (names of :data:`smoe_gui.ui.stage_views.STAGES`).
    training : bool
        Whether the training controls and plots are shown.
    """

    title: str
    caption: str
    views: tuple[str, ...]
    training: bool = False


_ALL = ("edges", "segments", "reduced", "kernels", "reconstruction")

#: The lecture, in order: stages 1 -> 5, then training.
LECTURE_STEPS: tuple[LectureStep, ...] = (
    LectureStep("1 Canny edges",
                "Canny marks the pixels where the brightness changes fastest: the edges the kernels will follow.",
                _ALL[:1]),
    LectureStep("2 Raw segments",
                "Edge pixels are scanned in four directions; each straight run becomes a segment "
                "(colour = direction).", _ALL[:2]),
    LectureStep("3 Reduced segments",
                "Too many segments: the most important ones stay (magenta), the rest are merged by DBSCAN "
                "into cluster means (cyan).", _ALL[:3]),
    LectureStep("4 Kernels",
                "Each reduced segment gets a pair of kernels, one on each side of the edge; flat regions get "
                "background kernels.", _ALL[:4]),
    LectureStep("5 Reconstruction",
                "Each pixel is a softmax-weighted mix of the kernels' gray levels: the initial model, "
                "before any training.", _ALL),
    LectureStep("6 Training",
                "Gradient descent moves, shapes and weighs the kernels: press F5 and watch the PSNR rise "
                "(Space pauses, Esc stops).", _ALL, training=True),
)


class LectureMode:
    """Drives the window's views through :data:`LECTURE_STEPS`."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.active = False
        self.step = 0

    def set_active(self, active: bool) -> None:
        """Enter (at step 1) or leave lecture mode."""
        self.active = bool(active)
        self.step = 0
        self._apply()

    def next(self) -> None:
        """Reveal the next step."""
        if self.active and self.step < len(LECTURE_STEPS) - 1:
            self.step += 1
            self._apply()

    def back(self) -> None:
        """Go back one step."""
        if self.active and self.step > 0:
            self.step -= 1
            self._apply()

    def revealed(self) -> list[str]:
        """Names of the stage views whose content is shown."""
        return [n for n, v in self.window.stages.views.items() if v.getPlotItem().isVisible()]

    def current(self) -> LectureStep | None:
        """The step shown, or None outside lecture mode."""
        return LECTURE_STEPS[self.step] if self.active else None

    def _apply(self) -> None:
        w = self.window
        step = self.current()
        views = step.views if step is not None else _ALL
        # the views keep their places and sizes (and their linked zoom); a stage
        # not yet revealed is an empty frame
        for name, view in w.stages.views.items():
            view.getPlotItem().setVisible(name in views)
        w.expert_plot.getPlotItem().setVisible(step is None or "reconstruction" in views)
        w.training_panel.setVisible(step is None or step.training)
        w.lecture_caption.setVisible(step is not None)
        if step is not None:
            n = len(LECTURE_STEPS)
            w.lecture_caption.setText(f"<b>{step.title}</b> ({self.step + 1}/{n}) — {step.caption}"
                                      "  <small>[Page Down / N: next · Page Up / B: back]</small>")
        for key in ("lecture-next", "lecture-back"):
            w.actions_by_id[key].setEnabled(step is not None)
        QTimer.singleShot(0, w.fit_views)  # the views' sizes changed with the training panel
        w.actions_by_id["lecture"].setChecked(step is not None)
