"""The main window: layout and wiring only.

What the user works on and the rules that change it live in the Qt-free
:class:`~smoe_gui.ui.control.session.Session`; the menus are the table of
:mod:`smoe_gui.ui.actions`; opening, saving and exporting are
:class:`~smoe_gui.ui.file_ops.FileOps`.  The window lays out the parameter
panel, the five linked stage views and the training plots, runs the session's
jobs in worker threads (:mod:`smoe_gui.ui.workers`) and draws what the
session hands it (it implements :class:`~smoe_gui.ui.control.session.SessionView`).
Every message goes through ``self.messenger`` and every file dialog through
``self.files``, so tests can intercept both.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QByteArray, QEvent, QSettings, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QIcon, QShowEvent
from PySide6.QtWidgets import QApplication

from ..core.params import METHODS, Params, spec
from .actions import ACTIONS, build_menus
from .control.jobs import (
    SnapshotResult,
    StageResult,
    training_warmed,
    warm_up_training,
)
from .control.session import Session, stage_summary
from .file_ops import FileOps
from .focus import PanelStrip, StageFocus, install_focus, make_focus
from .guide import GuideDialog, guide_html
from .keys import TrainingKeys
from .lecture import LectureMode
from .messages import Messenger
from .param_panel import INIT_GROUPS, ParamPanel
from .presentation import PresentationMode
from .resources import default_sample, icon_path, sample_paths
from .theme import COLOR_SCHEMES, apply_color_scheme, current_theme
from .tune_panel import install_tune_panel
from .views.plots import ExpertPlot, TrainingPlots
from .views.stage_views import BACKGROUND_MODES, StageViews
from .window_init import InitProgressUi
from .window_inspect import InspectHandlers
from .window_layout import fits, initial_geometry
from .workers import LIVE_FRAME_NICE, JobRunner, WarmUp

__all__ = ["MainWindow", "default_settings", "fits", "initial_geometry"]

ORGANIZATION = "smoe-gui"
APPLICATION = "smoe-gui"
#: Environment variable naming an INI file to use instead of the user's settings.
SETTINGS_ENV = "SMOE_GUI_SETTINGS"

#: Debounce while a slider is dragged (ms).
DEBOUNCE_MS = 60


def default_settings() -> QSettings:
    """The user's settings, or the INI file named by ``$SMOE_GUI_SETTINGS``."""
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)


class MainWindow(InspectHandlers):
    """The smoe-gui main window.

    Attributes
    ----------
    session : Session
        The image, parameters, results and training state.
    files : FileOps
        Opening, saving, exports, recent files.
    panel, stages, plots, expert_plot
        The parameter panel, the five stage views, the training plots and the
        expert-initialisation plot.

    Signals
    -------
    stages_shown(int)
        Request id of a stage result just drawn in every stage view.
    snapshot_shown(int), training_finished()
        See :class:`~smoe_gui.ui.window_training.TrainingHandlers`.
    gate_map_shown(int)
        See :class:`~smoe_gui.ui.window_inspect.InspectHandlers`.
    """

    stages_shown = Signal(int)

    files: FileOps
    lecture: LectureMode
    presentation: PresentationMode
    stage_focus: StageFocus
    panel_strip: PanelStrip

    def __init__(self, image_path: str | os.PathLike[str] | None = None,
                 settings: QSettings | None = None, open_default: bool = True,
                 warm_up: bool = True) -> None:
        super().__init__()
        self.setObjectName("main-window")
        self.setWindowTitle("smoe-gui")
        self.setAcceptDrops(True)
        icon = icon_path()
        if icon is not None:
            self.setWindowIcon(QIcon(str(icon)))
        self.settings = settings if settings is not None else default_settings()
        self.messenger = Messenger(self)
        self.files = FileOps(self, self.settings)
        self.lecture = LectureMode(self)
        self._guide: GuideDialog | None = None
        #: Frames drawn in views 4-5, stage drawing time (ms), last error: for tests and benchmarks.
        self.frames_shown = 0
        self.stage_draw_ms = 0.0
        self.last_error: str | None = None
        self._placed = False
        self._pending_change: tuple[Params, str, bool] | None = None
        #: What loading did to the open image's values (C's read_image messages).
        self.image_notes: tuple[str, ...] = ()
        self._warm_up = warm_up
        self._warm_thread: WarmUp | None = None

        theme = current_theme()
        self.panel = ParamPanel(self._stored_params())
        stored_method = str(self.settings.value("method", METHODS[0]))
        if stored_method in METHODS:
            self.panel.set_method(stored_method, emit=False)
        self.stages = StageViews(theme)
        self.expert_plot = ExpertPlot(theme)
        self.stages.grid.addWidget(self.expert_plot, 1, 2)
        self.plots = TrainingPlots(theme)
        self._build_layout()
        self._connect_controls()
        self.stage_focus, self.panel_strip = make_focus(self)  # ui/focus.py: keys 1-6, Ctrl+\
        self.presentation = PresentationMode(self)  # ui/presentation.py (F8, lecture mode)
        self.actions_by_id, submenus = build_menus(self)
        self.recent_menu = self.files.recent_menu = submenus["recent"]
        self.samples_menu = submenus["samples"]
        for path in sample_paths():
            action = self.samples_menu.addAction(path.stem)
            action.setData(str(path))
            action.triggered.connect(lambda _c=False, p=path: self.open_image(p))
        self.actions_by_id["view-stage"].setChecked(True)
        self.actions_by_id[f"export-scale-{self.files.export_scale}"].setChecked(True)
        for key in ("lecture-next", "lecture-back"):
            self.actions_by_id[key].setEnabled(False)
        scheme = str(self.settings.value("theme", "system"))
        self.set_color_scheme(scheme if scheme in COLOR_SCHEMES else "system")
        self.training_keys = TrainingKeys(
            self,
            [
                self.actions_by_id[a.id].shortcut()
                for a in ACTIONS
                if a.training and a.id in self.actions_by_id
            ],
        )
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self.training_keys)
        self._build_status_bar()

        self._stage_runner = JobRunner("smoe-stages")
        self._render_runner = JobRunner("smoe-render")
        # a training's live frames: below the training's CPU priority (workers.py)
        self._frame_runner = JobRunner("smoe-frames", nice=LIVE_FRAME_NICE)
        self._inspect_runner = JobRunner("smoe-inspect")
        self.session = Session(
            self,
            self._stage_runner,
            self._render_runner,
            self._inspect_runner,
            self._start_trainer,
            self.panel.params(),
            self.panel.method(),
            frame_jobs=self._frame_runner,
        )
        # Bound methods of the window (never lambdas): Qt then queues the
        # workers' signals to the GUI thread.
        self._stage_runner.worker.done.connect(self._on_stage_done)
        self._stage_runner.worker.failed.connect(self._on_stage_failed)
        self._render_runner.worker.done.connect(self._on_snapshot_done)
        self._render_runner.worker.failed.connect(self._on_snapshot_failed)
        self._render_runner.worker.cancelled.connect(self._on_snapshot_cancelled)
        self._frame_runner.worker.done.connect(self._on_frame_done)
        self._frame_runner.worker.failed.connect(self._on_snapshot_failed)
        self._frame_runner.worker.cancelled.connect(self._on_snapshot_cancelled)
        self._inspect_runner.worker.done.connect(self._on_gate_done)
        self._inspect_runner.worker.failed.connect(self._on_job_failed)
        self.init_progress = InitProgressUi(self)  # AS-SMoE: progress, captions, Cancel

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.recompute)

        self.panel.params_changed.connect(self._on_params_changed)
        self.panel.method_changed.connect(self._on_method_changed)
        self.stages.mouse_moved.connect(self._on_mouse_moved)
        self.stages.mouse_clicked.connect(self.select_kernel_at)
        self.stages.pointer_left.connect(self._on_pointer_left)
        self.stages.kernel_mode_box.currentIndexChanged.connect(
            lambda _i: self.set_kernel_mode(self.stages.kernel_mode)
        )
        self._pointer: tuple[str, float, float] | None = None

        self._restore_settings()
        install_focus(self)  # the focused view and the folded panel, as they were left
        self.tune_panel = install_tune_panel(self)  # ui/tune_panel.py: the Tune dock
        self._update_buttons()
        if image_path is not None:
            self.open_image(image_path)
        elif open_default:
            sample = default_sample()
            if sample is not None:
                self.open_image(sample)

    # ------------------------------------------------------------------ wiring
    def _connect_controls(self) -> None:
        """What the buttons and selectors of :meth:`_build_layout` do."""
        self.mode_buttons.idClicked.connect(lambda i: self.set_view_mode(BACKGROUND_MODES[i]))
        self.start_button.clicked.connect(lambda: self.start_training())
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop_training)
        self.compare_button.clicked.connect(lambda: self.start_compare())
        self.run_combo.activated.connect(
            lambda _i: self.show_run(str(self.run_combo.currentData()))
        )
        self.side_by_side_button.clicked.connect(lambda: self.show_side_by_side())
        self.x_axis_combo.currentIndexChanged.connect(
            lambda _i: self.plots.set_x_axis(str(self.x_axis_combo.currentData()))
        )
        self.tile_psnr_box.toggled.connect(self.plots.set_show_tile_psnr)

    def show_guide(self) -> GuideDialog:
        """Help -> Guide (F1): a non-modal dialog."""
        if self._guide is None:
            self._guide = GuideDialog(current_theme(), self, self.panel.method())
        else:  # the selected method's lecture first
            self._guide.browser.setHtml(guide_html(current_theme(), self.panel.method()))
        self._guide.show()
        self._guide.raise_()
        return self._guide

    def toggle_lecture(self) -> None:
        """View -> Lecture mode: enter at stage 1, or leave."""
        self.lecture.set_active(not self.lecture.active)

    def set_color_scheme(self, scheme: str) -> None:
        """View -> Theme: the desktop's, a light or a dark palette (kept in the settings)."""
        if scheme != "system" or self.settings.value("theme", "system") != "system":
            apply_color_scheme(scheme)
        self.settings.setValue("theme", scheme)
        self.actions_by_id[f"theme-{scheme}"].setChecked(True)

    def toggle_full_screen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()
        self.actions_by_id["full-screen"].setChecked(self.isFullScreen())

    def about(self) -> None:
        """Help -> About."""
        from smoe_gui import __version__

        self.messenger.info(
            "About smoe-gui",
            f"smoe-gui {__version__}\nSteered Mixture-of-Experts image modelling with the "
            "edge-aligned kernel initialisation of Determann & Fleig, compared with a regular grid "
            "and the segmentation-based S-SMoE and AS-SMoE initialisations.",
        )

    # ------------------------------------------------------------------ settings
    def _stored_params(self) -> Params:
        text = self.settings.value("params")
        if text:
            try:
                return Params.from_json(str(text))
            except ValueError:
                pass
        return Params()

    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)  # checked against the screen once shown (showEvent)
        state = s.value("window_state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        for key, splitter in (
            ("main_splitter", self.main_splitter),
            ("right_splitter", self.right_splitter),
        ):
            sizes = s.value(key)
            if isinstance(sizes, QByteArray):
                splitter.restoreState(sizes)
        axis = str(s.value("x_axis", "steps"))
        index = self.x_axis_combo.findData(axis)
        if index >= 0:
            self.x_axis_combo.setCurrentIndex(index)
        self.files.rebuild_recent_menu()

    def save_settings(self) -> None:
        """Write geometry, splitter sizes, parameters, method (recent files and
        the last folder are written as they change)."""
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("window_state", self.saveState())
        s.setValue("main_splitter", self.main_splitter.saveState())
        s.setValue("right_splitter", self.right_splitter.saveState())
        s.setValue("params", self.panel.params().to_json())
        s.setValue("method", self.panel.method())
        s.setValue("x_axis", self.plots.x_axis)
        s.sync()

    def ask_restart(self) -> bool:
        """Ask whether to restart training with changed parameters."""
        return self.messenger.ask(
            "Restart training?",
            "Training is running with the previous parameters.\n"
            "Stop it and restart with the new parameters?\n"
            "(No keeps the run going and puts the parameters back.)",
        )

    # ------------------------------------------------------------------ image
    @property
    def image(self) -> NDArray[np.float32] | None:
        """The image modelled, (H, W) float32 in [0, 1], or (H, W, 3) with the
        Gray/Colour switch on Colour."""
        return self.session.image

    @property
    def image_path(self) -> Path | None:
        return self.session.image_path

    def open_image(self, path: str | os.PathLike[str]) -> bool:
        """Load ``path`` and recompute every stage (see :meth:`FileOps.open_image`)."""
        return self.files.open_image(path)

    def set_image(
        self, image: NDArray[np.float32], path: Path | None = None, notes: tuple[str, ...] = ()
    ) -> None:
        """Show ``image`` (H, W) float32 and recompute every stage; ``notes``
        say what loading did to its values (shown with the stages' notes)."""
        self._debounce.stop()
        self.image_notes = tuple(notes)
        self.session.set_image(image, path)
        self.show_status("computing the stages…")

    def show_image(self, image: NDArray[np.float32], path: Path | None) -> None:
        """SessionView: a new image."""
        self.stages.set_original(image)
        self.expert_plot.set_history([])
        h, w = image.shape[:2]
        name = path.name if path is not None else "image"
        colour = ", colour" if image.ndim == 3 else ""
        self.setWindowTitle(f"smoe-gui — {name} ({w}×{h}{colour})")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        urls = event.mimeData().urls()
        paths = [u.toLocalFile() for u in urls if u.isLocalFile()]
        if len(paths) < len(urls):
            self.messenger.warning(
                "Not a local file", "Only local files can be opened; remote URLs were ignored."
            )
        event.acceptProposedAction()
        if paths:
            QTimer.singleShot(0, lambda: self.files.open_dropped(paths))

    # ------------------------------------------------------------------ parameters and stages
    def _on_params_changed(self, params: Params, name: str, dragging: bool) -> None:
        session = self.session
        method = self.panel.method()
        if session.is_training() and session.conflicts_with_training(params, method):
            # Ask once the editor that changed has finished its own key or focus
            # handling: a modal question inside it leaves the field blank.
            self._pending_change = (params, name, dragging)
            QTimer.singleShot(0, self._ask_about_pending_change)
            return
        if session.is_training():
            return
        self._apply_params(params, name, dragging)

    def _ask_about_pending_change(self) -> None:
        pending, self._pending_change = self._pending_change, None
        if pending is None:
            return
        params, name, dragging = pending
        session = self.session
        method = self.panel.method()
        if not session.conflicts_with_training(params, method):
            if not session.is_training():
                self._apply_params(params, name, dragging)
            return
        if self.ask_restart():
            session.restart_training_with(params, method)
            self._apply_params(params, name, dragging)
        else:
            assert session.train_params is not None
            old_params, old_method = session.train_params
            self.panel.set_params(old_params, emit=False)  # every editor shows what the app holds
            self.panel.set_method(old_method, emit=False)

    def _apply_params(self, params: Params, name: str, dragging: bool) -> None:
        affects = name in ("*", "method") or spec(name).group in INIT_GROUPS
        if not self.session.set_params(params, self.panel.method(), affects_stages=affects):
            if not affects:
                self.show_status(
                    f"{spec(name).label} = {getattr(params, name)} (used by the next training)",
                    4000,
                )
            return
        if dragging:
            self._debounce.start()
        else:
            self.recompute()

    def _on_method_changed(self, method: str) -> None:
        self.forget_compare()  # the old pair's curves, status and run selector
        self._on_params_changed(self.panel.params(), "method", False)
        self.lecture.set_method(method)  # a lecture in progress follows the method

    def recompute(self) -> int:
        """Recompute every stage off the GUI thread; returns the request id
        (-1 without an image).  Results of older requests are dropped."""
        self._debounce.stop()
        self._adopt_panel_params()
        rid = self.session.recompute()
        if rid >= 0 and self.init_progress.begin(rid) is None:
            self.show_status("computing the stages…")
        return rid

    @property
    def latest_request(self) -> int:
        """Id of the newest stage request."""
        return self.session.latest_request

    def show_stages(
        self, request_id: int, result: StageResult, snapshot: SnapshotResult | None
    ) -> None:
        """SessionView: draw every stage (and a trained or loaded model over them)."""
        t0 = time.perf_counter()
        self.stages.show_result(request_id, result)
        if snapshot is not None:
            self.stages.show_snapshot(request_id, snapshot)
        self.expert_plot.set_history(list(result.init.expert_psnr))
        self.stage_draw_ms = (time.perf_counter() - t0) * 1e3
        counts, times = stage_summary(result, self.stage_draw_ms)
        self.counts_label.setText(counts)
        self.times_label.setText(times)
        if self._warm_up and not training_warmed():
            # once per process, off the GUI thread, while the user looks at the
            # stages: the first Start then neither stalls nor waits.  A plain
            # thread (workers.WarmUp): closing the window never waits for its
            # numba compiling, and no QThread outlives the window
            self._warm_up = False
            self._warm_thread = WarmUp(warm_up_training)
            self._warm_thread.start()
        notes = "; ".join((*self.image_notes, *result.init.notes))
        if notes:
            self.show_status(notes, 10_000)
        else:
            self.show_status("")
        self.stages_shown.emit(request_id)

    def _on_stage_done(self, rid: int) -> None:
        self.session.stage_done(rid, self._stage_runner.take(rid))

    def _on_snapshot_done(self, rid: int) -> None:
        self.session.snapshot_done(rid, self._render_runner.take(rid))

    def _on_frame_done(self, rid: int) -> None:
        self.session.snapshot_done(rid, self._frame_runner.take(rid))

    def _on_snapshot_failed(self, rid: int, message: str) -> None:
        self._on_job_failed(rid, message)
        self.session.snapshot_failed(rid, message)

    def _on_snapshot_cancelled(self, rid: int) -> None:
        self.session.snapshot_done(rid, None)  # the next live frame may go

    def _on_gate_done(self, rid: int) -> None:
        self.session.gate_done(rid, self._inspect_runner.take(rid))

    def _on_stage_failed(self, rid: int, message: str) -> None:
        if self.session.stage_failed(rid, message):
            self.last_error = message

    def _on_job_failed(self, _rid: int, message: str) -> None:
        self.last_error = message
        self.show_status(message, 8000)

    def show_error(self, title: str, text: str) -> None:
        """SessionView: an error dialog."""
        self.last_error = text
        self.messenger.error(title, text)

    # ------------------------------------------------------------------ view mode
    def set_view_mode(self, mode: str) -> None:
        """Show the stages, the original, or the residual in every view."""
        self.stages.set_mode(mode)
        button = self.mode_buttons.button(BACKGROUND_MODES.index(mode))
        if button is not None and not button.isChecked():
            button.setChecked(True)
        self.actions_by_id[f"view-{mode}"].setChecked(True)

    def fit_views(self) -> None:
        """Zoom every (linked) view to the whole image (through a view whose
        content is shown: a hidden one has no bounds, as view 1 in the
        segment methods' lectures)."""
        views = self.stages.views
        shown = [
            v for v in views.values() if v.getPlotItem().isVisible() and not v.isHidden()
        ]
        if not self.stages.linked:  # views of different sizes: each fitted on its own
            for view in shown:
                self.stages.fit_view(view.name)
            return
        primary = views.get(self.stage_focus.primary())
        first = primary if primary is not None else shown[0] if shown else views["edges"]
        self.stages.fit_view(first.name)

    # ------------------------------------------------------------------ Qt events
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        if not self._placed:
            self._placed = True
            QTimer.singleShot(0, self._keep_on_screen)  # the frame is known once shown

    def _keep_on_screen(self) -> None:
        """A geometry restored from a larger screen (or a window that does not
        fit) is replaced by :func:`initial_geometry` of this screen."""
        if not fits(self.frameGeometry(), self.screen().availableGeometry()):
            margins = self.frameGeometry().size() - self.geometry().size()
            target = initial_geometry(self.screen().availableGeometry())
            self.setGeometry(target.adjusted(0, 0, -margins.width(), -margins.height()))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt override)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            theme = current_theme()
            if self._guide is not None:
                self._guide.browser.setHtml(guide_html(theme, self.panel.method()))
            self.stages.apply_theme(theme)
            self.plots.apply_theme(theme)
            self.expert_plot.apply_theme(theme)
        super().changeEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        """Save settings, stop training, stop every worker thread and wait."""
        self._debounce.stop()
        try:
            self.save_settings()
        finally:
            self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop every thread (what closing the window does), without closing."""
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self.training_keys)
        if self._warm_thread is not None:
            self._warm_thread.cancel()  # it ends by itself; the interpreter waits for it
        self.session.close()
        for runner in (self._stage_runner, self._render_runner, self._frame_runner,
                       self._inspect_runner):
            runner.shutdown()
