"""The window's side of a long initialisation (AS-SMoE's local fits).

:class:`InitProgressUi` listens to the stage worker (:class:`smoe_gui.ui.workers.JobWorker`):
while a long initialisation runs the five views' captions say
"initialising AS-SMoE...", the status bar shows "initialising AS-SMoE:
120 / 480 local fits" (with a warning when no kernel budget bounds the count)
and a Cancel button stops it within a second; switching the method or a
parameter replaces the job and stops it as well.  The texts come from the
Qt-free :class:`smoe_gui.ui.control.init_status.InitStatus`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QPushButton

from .control.init_status import InitStatus, initialising_text

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["InitProgressUi"]

#: The views whose captions say that the initialisation runs.
VIEWS = ("edges", "segments", "reduced", "kernels", "reconstruction")


class InitProgressUi(QObject):
    """Progress, captions and Cancel of the window's long initialisations.

    Parameters
    ----------
    window : MainWindow
        Gives the stage runner, the session, the stage views and the status bar.
    """

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.state = InitStatus()
        #: The text over each view while an initialisation runs (view name -> item).
        self.overlays: dict[str, pg.TextItem] = {}
        self._saved_counts: tuple[str, str] | None = None
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancel-initialisation")
        self.cancel_button.setToolTip("Stop the initialisation; the views keep the previous result")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        window.statusBar().addPermanentWidget(self.cancel_button)
        worker = window._stage_runner.worker
        # bound methods of a QObject living in the GUI thread: the worker's signals are queued
        worker.progress.connect(self._on_progress)
        worker.noted.connect(self._on_note)
        worker.cancelled.connect(self._on_cancelled)
        worker.done.connect(self._on_ended)
        worker.failed.connect(self._on_failed)

    def begin(self, rid: int) -> str | None:
        """Stage job ``rid`` was submitted; for a long method the views and the
        status say so and Cancel shows.  Returns the status text (None: not long)."""
        session = self.window.session
        text = self.state.begin(rid, session.method, session.params)
        if text is None:
            self._finish(restore=False)  # a replaced long job: the new one draws everything
            return None
        caption = initialising_text(session.method)
        for name in VIEWS:
            self.window.stages.set_caption(name, caption)
        self._show_overlays(caption)
        if self._saved_counts is None:  # the previous method's counts: put back on a cancel
            self._saved_counts = (self.window.counts_label.text(), self.window.times_label.text())
        self.window.counts_label.setText(self.state.warning_text())
        self.window.times_label.setText("")
        self.cancel_button.show()
        self.window.show_status(text)
        return text

    def _show_overlays(self, text: str) -> None:
        """Say ``text`` in the middle of every view, over the previous result."""
        self._clear_overlays()
        for name in VIEWS:
            view = self.window.stages.views[name]
            item = pg.TextItem(text, color=(255, 255, 255), fill=pg.mkBrush(0, 0, 0, 170),
                               anchor=(0.5, 0.5))
            item.setZValue(1e6)
            (x0, x1), (y0, y1) = view.getViewBox().viewRange()
            item.setPos((x0 + x1) / 2, (y0 + y1) / 2)
            view.addItem(item, ignoreBounds=True)
            self.overlays[name] = item

    def _clear_overlays(self) -> None:
        for name, item in self.overlays.items():
            self.window.stages.views[name].removeItem(item)
        self.overlays = {}

    def _finish(self, restore: bool) -> None:
        """The running initialisation is over; ``restore``: put the previous counts back."""
        self.cancel_button.hide()
        self._clear_overlays()
        saved, self._saved_counts = self._saved_counts, None
        if restore and saved is not None:
            self.window.counts_label.setText(saved[0])
            self.window.times_label.setText(saved[1])

    def _adopt(self, rid: int) -> None:
        """Begin for the newest job when the window did not start it itself (a new
        image, the method restored from the settings): its first report says it is long."""
        if not self.state.active and rid == self.window.session.latest_request:
            self.begin(rid)

    @Slot()
    def cancel(self) -> None:
        """Stop the running initialisation (within a second)."""
        self.window._stage_runner.cancel_running()

    @Slot(int, int, int)
    def _on_progress(self, rid: int, done: int, total: int) -> None:
        self._adopt(rid)
        text = self.state.progress(rid, done, total)
        if text is not None:
            self.window.show_status(text)

    @Slot(int, str)
    def _on_note(self, rid: int, text: str) -> None:
        self._adopt(rid)
        if self.state.note(rid, text) is not None:
            self.window.counts_label.setText(self.state.warning_text())

    @Slot(int)
    def _on_cancelled(self, rid: int) -> None:
        if not self.state.end(rid):
            return  # a replaced job: the newer one says what happens
        self._finish(restore=True)
        session = self.window.session
        self.window.show_captions(session.stages_caption, session.model_caption)
        self.window.show_status(
            "initialisation cancelled; the views show the previous result", 10_000
        )

    @Slot(int)
    def _on_ended(self, rid: int) -> None:
        if self.state.end(rid):
            self._finish(restore=False)  # the new result's counts are drawn

    @Slot(int, str)
    def _on_failed(self, rid: int, _message: str) -> None:
        if self.state.end(rid):
            self._finish(restore=True)
