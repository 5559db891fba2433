"""File -> Export -> Training as video: the last training run as an MP4 or a GIF.

The frames are the models the run kept (``FitResult.snapshots``) and its PSNR
history, drawn and encoded by the core
(:func:`smoe_gui.core.train.video.write_training_video`) on a worker thread
(the worker-object pattern of :mod:`smoe_gui.ui.workers`); this module only
asks for the file, shows the progress in the status bar with a Cancel button
and reports the outcome.  Nothing is grabbed from the screen.  A bad file
name (not ``.mp4``/``.gif``, a folder that is missing or not writable) and
"nothing trained yet" are dialogs.

:func:`video_exporter` gives the window's one :class:`VideoExporter` (made on
first use, a child of the window; closing the window cancels a running
export and waits for its thread).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import QLabel, QPushButton

from ..core.errors import one_line, show_path
from ..core.methods.drawing import initial_kinds
from ..core.train.video import (
    PANELS,
    VideoCancelled,
    check_video_path,
    write_training_video,
)
from .workers import _track

if TYPE_CHECKING:
    from ..core.train.runs import FitResult
    from .main_window import MainWindow

__all__ = ["LAYOUTS", "VIDEO_FILTER", "VideoExportWorker", "VideoExporter", "video_exporter"]

#: The save dialog's filter.
VIDEO_FILTER = "MP4 video (*.mp4);;GIF animation (*.gif)"
#: The layouts offered: every panel, or the reconstruction alone.
LAYOUTS: dict[str, tuple[str, ...]] = {"full": PANELS, "reconstruction": ("reconstruction",)}


class VideoExportWorker(QObject):
    """Writes one video on its thread; ``progress(done, total)`` after each
    frame, then exactly one of ``done(VideoInfo)``, ``failed(message)`` or
    ``cancelled()``, then ``finished()``."""

    progress = Signal(int, int)
    done = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, path: Path, job: dict[str, Any]) -> None:
        super().__init__()
        self.path = path
        self.job = job
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Stop before the next frame (any thread); no file is left."""
        self._cancel.set()

    @Slot()
    def run(self) -> None:
        try:
            info = write_training_video(
                self.path, **self.job, on_progress=self.progress.emit,
                cancelled=self._cancel.is_set,
            )
        except VideoCancelled:
            self.cancelled.emit()
        except Exception as exc:  # reported in a dialog, never raised in a thread
            self.failed.emit(one_line(exc))
        else:
            self.done.emit(info)
        finally:
            self.finished.emit()


class VideoExporter(QObject):
    """The window's training-video export: dialog, worker thread, status bar.

    Attributes
    ----------
    last_info : VideoInfo or None
        What the last finished export wrote.
    """

    #: Emitted in the GUI thread when an export ends (written, failed or cancelled).
    ended = Signal()

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.setObjectName("video-exporter")
        self.window = window
        self.last_info: Any = None
        self._thread: QThread | None = None
        self._worker: VideoExportWorker | None = None
        self._finished: tuple[QThread, VideoExportWorker] | None = None
        self.label = QLabel("")
        self.label.setObjectName("video-export-status")
        self.cancel_button = QPushButton("Cancel video")
        self.cancel_button.setObjectName("video-export-cancel")
        self.cancel_button.setToolTip("Stop writing the video (nothing is left behind)")
        self.cancel_button.clicked.connect(self.cancel)
        bar = window.statusBar()
        bar.addPermanentWidget(self.label)
        bar.addPermanentWidget(self.cancel_button)
        self.label.hide()
        self.cancel_button.hide()
        window.installEventFilter(self)

    # -- what to export ----------------------------------------------------------
    def last_result(self) -> FitResult | None:
        """The last finished run of the open image: the training, else the
        first method of a Compare."""
        session = self.window.session
        labels = ("train", *session.train_labels)
        for label in labels:
            result = session.final_result(label)
            if result is not None:
                return result
        return None

    def is_running(self) -> bool:
        return self._thread is not None

    # -- actions -----------------------------------------------------------------
    def export_dialog(self, layout: str = "full") -> None:
        """Ask for a file and start the export (the File menu's entries);
        ``layout`` is a key of :data:`LAYOUTS`."""
        if self._nothing_to_export() is not None:
            return
        path = self.window.files.ask_save_path(
            "Export training as video", "training.mp4", VIDEO_FILTER
        )
        if path:
            self.start_export(path, layout)

    def _nothing_to_export(self) -> str | None:
        """The reason nothing can be exported now (shown in a dialog), or None."""
        messenger = self.window.messenger
        if self.is_running():
            reason = "A video is being written; wait for it or cancel it."
        elif self.window.session.image is None:
            reason = "Open an image and train a model first."
        elif self.last_result() is None:
            reason = "Train a model first (Start): the video shows that run."
        else:
            return None
        messenger.warning("Nothing to export", reason)
        return reason

    def start_export(self, path: str | Path, layout: str = "full") -> bool:
        """Start writing the last run's video to ``path`` (.mp4 or .gif) off the
        GUI thread, with the panels of ``LAYOUTS[layout]``; False (after a
        dialog) when it cannot start.

        Raises
        ------
        ValueError
            For a layout not in :data:`LAYOUTS` (a programming error).
        """
        if layout not in LAYOUTS:
            raise ValueError(f"video layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        if self._nothing_to_export() is not None:
            return False
        result = self.last_result()
        image = self.window.session.image
        assert result is not None and image is not None
        try:
            target = check_video_path(path)
            if (result.model.height, result.model.width) != tuple(image.shape[:2]):
                raise ValueError("the last training was of another image; train this one first")
        except ValueError as exc:
            self.window.messenger.error("Cannot export the video", one_line(exc))
            return False
        keys = (initial_kinds(result.initialization)
                if result.initialization is not None else None)
        job = {
            "image": image,
            "snapshots": result.snapshots.snapshots,
            "history": result.history,
            "panels": LAYOUTS[layout],
            "initial_keys": keys,
        }
        self._retire()
        worker = VideoExportWorker(target, job)
        thread = QThread()
        thread.setObjectName("smoe-video")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.progress.connect(self._on_progress)
        worker.done.connect(self._on_done)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        # direct: QThread.quit is thread-safe, and a queued one would wait for the GUI
        # thread, which may be waiting for this thread (closing the window)
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.finished.connect(self._on_thread_finished)
        # Python owns both: no deleteLater (a deleteLater'd object that Python then drops
        # is deleted twice); a finished pair is kept until the next export replaces it
        self._thread, self._worker = thread, worker
        self.label.setText(f"Video: starting {show_path(target.name)}…")
        self.label.show()
        self.cancel_button.show()
        thread.start()
        _track(thread)
        return True

    def _retire(self) -> None:
        """Let go of the last finished export's thread and worker (they are done)."""
        if self._finished is not None:
            self._finished[0].wait()
            self._finished = None

    def cancel(self) -> None:
        """Stop the running export before its next frame (nothing is left)."""
        if self._worker is not None:
            self._worker.cancel()
            self.label.setText("Video: cancelling…")

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Wait for a running export's thread to end; True when none runs."""
        thread = self._thread
        if thread is None:
            return True
        try:
            ended = bool(thread.wait(timeout_ms))
        except RuntimeError:  # already deleted: it has finished
            ended = True
        return ended

    # -- from the worker (GUI thread) ------------------------------------------
    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        self.label.setText(f"Video: frame {done}/{total}")

    @Slot(object)
    def _on_done(self, info: Any) -> None:
        self.last_info = info
        self.window.show_status(
            f"Wrote {show_path(info.path)}: {info.n_frames} frames, "
            f"{info.width}x{info.height}, {info.seconds:.1f} s", 8000,
        )

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.window.messenger.error("Cannot export the video", message)

    @Slot()
    def _on_cancelled(self) -> None:
        self.window.show_status("Video export cancelled; nothing was written", 5000)

    @Slot()
    def _on_thread_finished(self) -> None:
        if self._thread is not None and self._worker is not None:
            self._finished = (self._thread, self._worker)
        self._thread = self._worker = None
        self.label.hide()
        self.cancel_button.hide()
        self.ended.emit()

    # -- closing ------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if watched is self.window and event.type() == QEvent.Type.Close:
            self.cancel()
            self.wait()
        return False


def video_exporter(window: MainWindow) -> VideoExporter:
    """The window's :class:`VideoExporter`, made on first use."""
    found = window.findChild(VideoExporter, "video-exporter")
    return found if isinstance(found, VideoExporter) else VideoExporter(window)
