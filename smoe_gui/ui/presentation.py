"""The presentation layout: the current stage large for a projector.

In lecture mode, and on request (View -> Presentation layout, F8), the stage
area shows the current lecture step's stage large and the previous stage
beside it when that costs the large one little
(:func:`~smoe_gui.ui.control.presentation.presentation_placement`); the
parameter panel is folded to its strip; the caption, the view titles and the
legend are set in pixel sizes readable from the back of a room
(:func:`~smoe_gui.ui.control.presentation.presentation_fonts`: at least 20 px
for captions and titles at 1280x720); the legend lists only what the views
shown draw, and the kernel panel shows only while a kernel is inspected.
Outside a lecture the large view is the focused one (or view 4) with view 5
beside it (view 4 beside view 5).  The presenter remote's keys are the
lecture's (Page Down / Page Up).  Leaving it puts back the grid (or the
focused view), the panel as the user had it, and the usual text sizes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QEvent, QTimer
from PySide6.QtGui import QFont

from .control.lecture_steps import VIEW_NAMES, LectureStep
from .control.presentation import presentation_fonts, presentation_placement
from .focus import apply_rows

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["PresentationMode"]


class PresentationMode:
    """Applies the presentation layout to ``window`` (see the module)."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.requested = False
        self.shown = False
        self._caption_font = QFont(window.lecture_caption.font())
        self._legend_font = QFont(window.stages.legend.font())

    def toggle(self) -> None:
        """View -> Presentation layout: on or off (lecture mode turns it on by itself)."""
        self.requested = not self.requested
        self.refresh()

    def _step(self) -> LectureStep | None:
        step = self.window.lecture.current()
        if step is not None:
            return step
        if not self.requested:
            return None
        focused = self.window.stage_focus.focused
        current = focused if focused in VIEW_NAMES else "kernels"
        previous = "kernels" if current == "reconstruction" else "reconstruction"
        return LectureStep("", "", (previous, current))

    def refresh(self) -> None:
        """Lay the window out for the lecture step shown (or the request)."""
        w = self.window
        step = self._step()
        action = w.actions_by_id.get("presentation")
        if action is not None:
            action.setChecked(step is not None)
        if step is None:
            if self.shown:
                self.shown = False
                w.stage_focus.arrange(None)
                w.panel_strip.hold(False)
                w.stages.set_text_px(None)
                w.lecture_caption.setFont(self._caption_font)
                w.stages.legend.setFont(self._legend_font)
                QTimer.singleShot(0, w.fit_views)
            apply_rows(w)  # the focused view's folded rows, or every row
            return
        self.shown = True
        w.panel_strip.hold(True)
        apply_rows(w)  # the rows first (the training plots of a training step) ...
        QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        original = w.image  # ... then the stage area they leave
        image = None if original is None else (int(original.shape[0]), int(original.shape[1]))
        strip = w.param_box.width() if w.panel_strip.collapsed else 24
        area = (max(1, w.width() - strip), max(1, w.stages.height()))
        placement = presentation_placement(step, area, image)
        w.stage_focus.arrange(placement)
        fonts = presentation_fonts(w.height())
        caption = QFont(self._caption_font)
        caption.setPixelSize(fonts.caption_px)
        w.lecture_caption.setFont(caption)
        legend = QFont(self._legend_font)
        legend.setPixelSize(fonts.legend_px)
        w.stages.legend.setFont(legend)
        w.stages.set_text_px(fonts.title_px)
        apply_rows(w)  # the legend of the shown views; the kernel panel while inspecting
        QTimer.singleShot(0, w.fit_views)
