"""Lecture mode: the selected method's stages revealed one at a time, each
with a caption.

View -> Lecture mode (F9) shows the first step of the lecture of the method
chosen in the method selector (:data:`~smoe_gui.ui.control.lecture_steps.LECTURES`:
edge, grid, S-SMoE, AS-SMoE) with its caption; Next (Page Down or N) reveals
the next stage beside the ones shown, up to the reconstruction and then the
training plots; Back (Page Up or B) hides the last one.  Choosing another
method starts its lecture.  A step may set what view 4 draws (centres for
"kernels per segment", ellipses for "steering"); leaving lecture mode puts
back the user's choice and shows everything again.  The steps are data and
the walk is Qt-free (:class:`~smoe_gui.ui.control.lecture_steps.LectureState`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer

from .control.lecture_steps import LECTURE_STEPS, LECTURES, LectureState, LectureStep, lecture_steps

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["LECTURES", "LECTURE_STEPS", "LectureMode", "LectureStep", "lecture_steps"]


class LectureMode:
    """Drives the window's views through the lecture of the selected method."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.state = LectureState()
        self._user_kernel_mode: str | None = None

    @property
    def active(self) -> bool:
        return self.state.active

    @property
    def step(self) -> int:
        """Index of the step shown (0-based)."""
        return self.state.step

    @property
    def method(self) -> str:
        """The method whose lecture is given."""
        return self.state.method

    @property
    def steps(self) -> tuple[LectureStep, ...]:
        """The steps of the lecture given (or that would be given)."""
        return self.state.steps

    def set_active(self, active: bool) -> None:
        """Enter (at the first step of the selected method's lecture) or leave lecture mode."""
        if active:
            if not self.state.active:
                self._user_kernel_mode = self.window.stages.kernel_mode
            self.state.start(self.window.panel.method())
        else:
            self.state.stop()
        self._apply()

    def set_method(self, method: str) -> None:
        """The method selector changed: give that method's lecture from its first step."""
        if self.state.set_method(method):
            self._apply()

    def next(self) -> None:
        """Reveal the next step."""
        if self.state.next():
            self._apply()

    def back(self) -> None:
        """Go back one step."""
        if self.state.back():
            self._apply()

    def revealed(self) -> list[str]:
        """Names of the stage views whose content is shown."""
        return [n for n, v in self.window.stages.views.items() if v.getPlotItem().isVisible()]

    def current(self) -> LectureStep | None:
        """The step shown, or None outside lecture mode."""
        return self.state.current()

    def _apply(self) -> None:
        w = self.window
        step = self.state.current()
        views = self.state.views()
        # the views keep their places and sizes (and their linked zoom); a stage
        # not yet revealed is an empty frame
        for name, view in w.stages.views.items():
            view.getPlotItem().setVisible(name in views)
        w.expert_plot.getPlotItem().setVisible(step is None or "reconstruction" in views)
        w.lecture_caption.setVisible(step is not None)
        w.lecture_caption.setText(self.state.caption_html())
        mode = step.kernel_mode if step is not None else None
        if mode is None:
            mode = self._user_kernel_mode
            if step is None:
                self._user_kernel_mode = None
        if mode is not None and mode != w.stages.kernel_mode:
            w.set_kernel_mode(mode)
        for key in ("lecture-next", "lecture-back"):
            w.actions_by_id[key].setEnabled(step is not None)
        QTimer.singleShot(0, w.fit_views)  # the views' sizes changed with the training panel
        w.actions_by_id["lecture"].setChecked(step is not None)
        # the step's stage large and the rows it leaves room for (the training
        # plots only on a training step: ui/presentation.py, ui/focus.apply_rows)
        w.presentation.refresh()
