"""The window's training and Compare handlers: starting, pausing and stopping
a run, its progress and curves, the Compare runs shown in views 4-5.

The rules (what may start, what a parameter change does to a run) are the
Qt-free :class:`~smoe_gui.ui.control.session.Session`'s; these methods only
turn its calls into widgets' states (SessionView).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from ..core.model import SmoeModel
from .control.jobs import ProgressBatch, SnapshotResult, TrainRun
from .control.session import Session
from .messages import Messenger
from .theme import current_theme
from .window_layout import WindowLayout
from .workers import TrainingThread, TrainWorker

__all__ = ["PREVIEW_MIN_PIXELS", "PREVIEW_PIXELS", "TrainingHandlers"]

#: Seconds between model snapshots drawn while training.
SNAPSHOT_INTERVAL_S = 0.1
#: Seconds between progress batches (curve points, status line) while training.
PROGRESS_INTERVAL_S = 0.1
#: Pixels of a live training preview, at most / at least (the reconstruction view's size between).
PREVIEW_PIXELS = 160_000
PREVIEW_MIN_PIXELS = 40_000


class TrainingHandlers(WindowLayout):
    """Training and Compare, as the window shows them.

    Signals
    -------
    snapshot_shown(int)
        Request id of a model snapshot just drawn in the kernel and
        reconstruction views.
    training_finished()
        The training (or Compare) thread has ended.
    """

    snapshot_shown = Signal(int)
    training_finished = Signal()

    session: Session
    messenger: Messenger
    actions_by_id: dict[str, QAction]
    frames_shown: int
    compare_window: QWidget

    def _adopt_panel_params(self) -> None:
        """Give the session what the panel shows (the panel may have been set
        quietly, with ``emit=False``) unless a training holds other parameters."""
        if not self.session.is_training():
            self.session.params, self.session.method = self.panel.params(), self.panel.method()

    def _start_trainer(self, image: NDArray[np.float32], runs: list[TrainRun]) -> TrainingThread:
        from .app import training_threads

        self.plots.clear(tuple(r.label for r in runs))
        self.plots.show_labels(tuple(r.label for r in runs))
        worker = TrainWorker(image, runs, PROGRESS_INTERVAL_S, SNAPSHOT_INTERVAL_S,
                             numba_threads=training_threads())
        trainer = TrainingThread(worker)
        # bound methods of the window: queued to the GUI thread
        worker.posted.connect(self._on_training_posted)
        trainer.ended.connect(lambda: self.session.training_thread_finished(trainer))  # GUI thread
        trainer.start()
        self.frames_shown = 0
        return trainer

    def _on_training_posted(self) -> None:
        self.session.drain_training()

    def is_training(self) -> bool:
        """Whether a training or Compare thread is running."""
        return self.session.is_training()

    def is_paused(self) -> bool:
        return self.session.is_paused()

    def start_training(self, compare: bool = False) -> bool:
        """Train from the current initialisation; returns whether it started."""
        self._adopt_panel_params()
        try:
            return self.session.start_training(compare)
        except ValueError as exc:
            self.messenger.warning("No image", str(exc))
            return False

    def start_compare(self, partner: str | None = None) -> bool:
        """Train the selected method, then ``partner`` (default: the "vs"
        selector's, grid unless changed) with the same parameters; overlay the
        curves."""
        if partner is not None:
            self.compare_combo.setCurrentIndex(self.compare_combo.findData(partner))
        self.session.compare_with = str(self.compare_combo.currentData())
        return self.start_training(compare=True)

    def toggle_pause(self) -> None:
        """Pause a running training, or resume a paused one."""
        self.session.toggle_pause()

    def stop_training(self) -> None:
        """Ask the fit to stop within one step; the best model so far is kept."""
        self.session.stop_training()

    def final_model(self, label: str) -> SmoeModel | None:
        """The final model of the last run called ``label`` ("train", or a method in a Compare)."""
        return self.session.final_model(label)

    def forget_compare(self) -> None:
        """Another method was chosen after a Compare: clear its curves, its
        status line and the *views 4-5* selector (they told about the old pair)."""
        labels = self.session.compared_labels()
        if not self.session.forget_compare():
            return
        self.plots.clear(labels)
        self.plots.show_labels(("train",))
        self.run_combo.clear()
        self.run_combo.setEnabled(False)
        self.side_by_side_button.setEnabled(False)
        self.train_label.setText("")

    def show_training_state(self, text: str) -> None:
        """SessionView: training started, paused, resumed or stopping."""
        self._update_buttons()
        self.train_label.setText(text)

    def training_ended(self, summary: str) -> None:
        """SessionView: the training thread has ended."""
        self.plots.flush()
        self._update_buttons()
        labels = self.session.compared_labels()
        self.run_combo.clear()
        for label in labels:
            self.run_combo.addItem(f"{label} (trained)", label)
        if labels:
            self.run_combo.setCurrentIndex(len(labels) - 1)
        self.run_combo.setEnabled(len(labels) > 1)
        self.side_by_side_button.setEnabled(len(labels) > 1)
        if summary:
            self.train_label.setText(summary)
        self.training_finished.emit()

    def show_progress(self, label: str, text: str, batch: ProgressBatch | None) -> None:
        """SessionView: a progress line of run ``label`` and its new curve points."""
        if batch is not None:
            self.plots.append(batch)
            if batch.messages:
                self.show_status(f"{label}: {batch.messages[-1]}", 6000)
        if text:
            self.train_label.setText(text)

    def _update_buttons(self) -> None:
        running = self.is_training()
        self.start_button.setEnabled(not running)
        self.compare_button.setEnabled(not running)
        self.compare_combo.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.pause_button.setText("Resume" if running and self.is_paused() else "Pause")
        for key, enabled in (("start", not running), ("compare", not running), ("pause", running),
                             ("stop", running)):
            self.actions_by_id[key].setEnabled(enabled)

    def preview_pixels(self) -> int:
        """Pixels of a live training preview: the reconstruction view's size on
        screen, within ``PREVIEW_MIN_PIXELS .. PREVIEW_PIXELS``."""
        view = self.stages.views["reconstruction"]
        dpr = float(view.devicePixelRatioF())
        shown = view.width() * view.height() * dpr * dpr
        return int(min(PREVIEW_PIXELS, max(PREVIEW_MIN_PIXELS, shown)))

    def show_snapshot(self, request_id: int, snapshot: SnapshotResult, overlay: bool) -> None:
        """SessionView: draw a model in views 4-5."""
        self.stages.show_snapshot(request_id, snapshot, kernels=overlay)
        self.frames_shown += 1
        self.snapshot_shown.emit(request_id)

    def show_run(self, label: str) -> int:
        """After Compare: show run ``label``'s trained model in views 4-5."""
        try:
            rid = self.session.show_run(label)
        except ValueError as exc:
            self.messenger.warning("Nothing to show", str(exc))
            return -1
        i = self.run_combo.findData(label)
        if i >= 0 and self.run_combo.currentIndex() != i:
            self.run_combo.setCurrentIndex(i)
        return rid

    def show_side_by_side(self) -> QWidget | None:
        """The reconstructions of the Compare runs side by side (a window of its own)."""
        from .views.compare_view import CompareWindow

        results = {
            label: self.session.final_result(label) for label in self.session.compared_labels()
        }
        shown = {k: v for k, v in results.items() if v is not None}
        if len(shown) < 2 or self.session.image is None:
            self.messenger.warning("Nothing to compare", "Run Compare (Ctrl+K) first.")
            return None
        window = CompareWindow(self.session.image, shown, current_theme(), self)
        window.show()
        self.compare_window = window
        return window
