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
from PySide6.QtCore import QByteArray, QEvent, QRect, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QIcon, QScreen, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..core.model import SmoeModel
from ..core.params import METHODS, Params, spec
from .actions import ACTIONS, build_menus
from .control.jobs import (
    InspectResult,
    ProgressBatch,
    SnapshotResult,
    StageResult,
    TrainRun,
    training_warmed,
    warm_up_training,
)
from .control.lecture_steps import stage_titles
from .control.session import Session, stage_summary, view_captions
from .file_ops import FileOps
from .guide import GuideDialog, guide_html
from .keys import TrainingKeys
from .lecture import LectureMode
from .messages import Messenger
from .param_panel import INIT_GROUPS, ParamPanel
from .resources import default_sample, icon_path, sample_paths
from .theme import COLOR_SCHEMES, apply_color_scheme, current_theme
from .views.kernel_panel import KernelPanel, kernel_kind_text
from .views.plots import ExpertPlot, TrainingPlots
from .views.stage_views import BACKGROUND_MODES, StageViews
from .tune_panel import install_tune_panel
from .widgets import ElidedLabel, StatusLine
from .workers import JobRunner, TrainingThread, TrainWorker

__all__ = ["MainWindow", "default_settings", "fits", "initial_geometry"]

ORGANIZATION = "smoe-gui"
APPLICATION = "smoe-gui"
#: Environment variable naming an INI file to use instead of the user's settings.
SETTINGS_ENV = "SMOE_GUI_SETTINGS"

#: Debounce while a slider is dragged (ms).
DEBOUNCE_MS = 60
#: Seconds between model snapshots asked of fit() (reconstruction refresh rate).
SNAPSHOT_INTERVAL_S = 0.1
#: Seconds between batched progress signals from the training worker.
PROGRESS_INTERVAL_S = 0.1
#: Live training previews are rendered at the reconstruction view's size on
#: screen (device pixels), within these bounds.
PREVIEW_PIXELS = 160_000
PREVIEW_MIN_PIXELS = 40_000
#: Hover radius around a kernel centre, in screen pixels.
HOVER_RADIUS_PX = 12


def initial_geometry(available: QRect) -> QRect:
    """The window's first geometry on a screen whose available area is
    ``available``: up to 1600x1000, at most 96 % of the area, centred."""
    w = min(1600, int(available.width() * 0.96))
    h = min(1000, int(available.height() * 0.96))
    x = available.x() + (available.width() - w) // 2
    y = available.y() + (available.height() - h) // 2
    return QRect(x, y, w, h)


def fits(rect: QRect, available: QRect) -> bool:
    """Whether ``rect`` lies within ``available``."""
    return available.contains(rect)


def default_settings() -> QSettings:
    """The user's settings, or the INI file named by ``$SMOE_GUI_SETTINGS``."""
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)


class MainWindow(QMainWindow):
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
    snapshot_shown(int)
        Request id of a model snapshot just drawn in the kernel and
        reconstruction views.
    gate_map_shown(int)
        Kernel index whose weight map is now highlighted.
    training_finished()
        The training (or Compare) thread has ended.
    """

    stages_shown = Signal(int)
    snapshot_shown = Signal(int)
    gate_map_shown = Signal(int)
    training_finished = Signal()

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

        theme = current_theme()
        self.panel = ParamPanel(self._stored_params())
        stored_method = str(self.settings.value("method", "edge"))
        if stored_method in METHODS:
            self.panel.set_method(stored_method, emit=False)
        self.stages = StageViews(theme)
        self.expert_plot = ExpertPlot(theme)
        self.stages.grid.addWidget(self.expert_plot, 1, 2)
        self.plots = TrainingPlots(theme)
        self._build_layout()
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
        self.training_keys = TrainingKeys(self, [self.actions_by_id[a.id].shortcut() for a in ACTIONS
                                                 if a.training and a.id in self.actions_by_id])
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self.training_keys)
        self._build_status_bar()

        self._stage_runner = JobRunner("smoe-stages")
        self._render_runner = JobRunner("smoe-render")
        self._inspect_runner = JobRunner("smoe-inspect")
        self.session = Session(self, self._stage_runner, self._render_runner, self._inspect_runner,
                               self._start_trainer, self.panel.params(), self.panel.method())
        # Bound methods of the window (never lambdas): Qt then queues the
        # workers' signals to the GUI thread.
        self._stage_runner.worker.done.connect(self._on_stage_done)
        self._stage_runner.worker.failed.connect(self._on_stage_failed)
        self._render_runner.worker.done.connect(self._on_snapshot_done)
        self._render_runner.worker.failed.connect(self._on_job_failed)
        self._inspect_runner.worker.done.connect(self._on_gate_done)
        self._inspect_runner.worker.failed.connect(self._on_job_failed)

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
            lambda _i: self.set_kernel_mode(self.stages.kernel_mode))
        self._pointer: tuple[str, float, float] | None = None

        self._restore_settings()
        self.tune_panel = install_tune_panel(self)  # ui/tune_panel.py: the Tune dock
        self._update_buttons()
        if image_path is not None:
            self.open_image(image_path)
        elif open_default:
            sample = default_sample()
            if sample is not None:
                self.open_image(sample)

    # ------------------------------------------------------------------ layout
    def _build_layout(self) -> None:
        scroll = QScrollArea()
        scroll.setObjectName("param-scroll")
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.panel)
        # The panel scrolls (both ways on a small screen) rather than setting
        # the window's minimum size.
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setMinimumWidth(200)
        self.param_scroll = scroll

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.setSpacing(2)
        mode_row = QHBoxLayout()
        mode_row.addWidget(QLabel("Show:"))
        self.mode_buttons = QButtonGroup(self)
        self.mode_buttons.setExclusive(True)
        for i, (mode, text, tip) in enumerate((
            ("stage", "Stages", "Each view shows its stage (Ctrl+1)"),
            ("original", "Original", "Every view shows the original image under its overlay (Ctrl+2)"),
            ("residual", "Residual", "Every view shows |original − reconstruction| (Ctrl+3)"),
        )):
            button = QPushButton(text)
            button.setObjectName(f"view-{mode}")
            button.setCheckable(True)
            button.setToolTip(tip)
            button.setChecked(mode == "stage")
            self.mode_buttons.addButton(button, i)
            mode_row.addWidget(button)
        self.mode_buttons.idClicked.connect(lambda i: self.set_view_mode(BACKGROUND_MODES[i]))
        mode_row.addSpacing(12)
        self.inspect_label = QLabel("")
        self.inspect_label.setObjectName("inspect-info")
        self.inspect_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.inspect_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        mode_row.addWidget(self.inspect_label, 1)
        self.lecture_caption = QLabel("")
        self.lecture_caption.setObjectName("lecture-caption")
        self.lecture_caption.setWordWrap(True)
        self.lecture_caption.setTextFormat(Qt.TextFormat.RichText)
        font = self.lecture_caption.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        self.lecture_caption.setFont(font)
        self.lecture_caption.setVisible(False)
        top_layout.addWidget(self.lecture_caption)
        top_layout.addLayout(mode_row)
        top_layout.addWidget(self.stages, 1)
        self.kernel_panel = KernelPanel()
        top_layout.addWidget(self.kernel_panel)
        top_layout.addWidget(self.stages.legend)

        bottom = QWidget()
        bottom.setObjectName("training-panel")
        self.training_panel = bottom
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        controls = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("train-start")
        self.start_button.setToolTip("Train the model from the current initialisation (F5)")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setObjectName("train-pause")
        self.pause_button.setToolTip("Pause or resume training (Space)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("train-stop")
        self.stop_button.setToolTip("Stop training and keep the best model so far (Esc)")
        self.compare_button = QPushButton("Compare")
        self.compare_button.setObjectName("train-compare")
        self.compare_button.setToolTip(
            "Train the selected initialisation and the one chosen under \"vs\" with the same\n"
            "parameters, one after the other, and overlay their PSNR curves (Ctrl+K)"
        )
        self.compare_combo = QComboBox()
        self.compare_combo.setObjectName("compare-with")
        self.compare_combo.setToolTip("Compare: the second method, trained after the selected one\n"
                                      "(the same method: the edge method, or grid for edge)")
        for method in METHODS:
            self.compare_combo.addItem(method, method)
        self.compare_combo.setCurrentIndex(self.compare_combo.findData(METHODS[1]))
        self.compare_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.start_button.clicked.connect(lambda: self.start_training())
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop_training)
        self.compare_button.clicked.connect(lambda: self.start_compare())
        for b in (self.start_button, self.pause_button, self.stop_button, self.compare_button):
            controls.addWidget(b)
        controls.addWidget(QLabel("vs"))
        controls.addWidget(self.compare_combo)
        controls.addSpacing(8)
        controls.addWidget(QLabel("views 4-5:"))
        self.run_combo = QComboBox()
        self.run_combo.setObjectName("compare-run")
        self.run_combo.setToolTip("After Compare: which run's trained model views 4-5 show")
        self.run_combo.setEnabled(False)
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.run_combo.activated.connect(lambda _i: self.show_run(str(self.run_combo.currentData())))
        controls.addWidget(self.run_combo)
        self.side_by_side_button = QPushButton("Side by side")
        self.side_by_side_button.setObjectName("compare-side-by-side")
        self.side_by_side_button.setToolTip("The reconstructions of the two Compare runs side by side")
        self.side_by_side_button.setEnabled(False)
        self.side_by_side_button.clicked.connect(lambda: self.show_side_by_side())
        controls.addWidget(self.side_by_side_button)
        controls.addStretch(1)
        # a second row, so that the buttons never set the window's minimum width (1280x720)
        plot_controls = QHBoxLayout()
        plot_controls.addWidget(QLabel("x axis:"))
        self.x_axis_combo = QComboBox()
        self.x_axis_combo.setObjectName("x-axis")
        self.x_axis_combo.addItem("steps", "steps")
        self.x_axis_combo.addItem("seconds", "seconds")
        self.x_axis_combo.currentIndexChanged.connect(
            lambda _i: self.plots.set_x_axis(str(self.x_axis_combo.currentData()))
        )
        plot_controls.addWidget(self.x_axis_combo)
        self.tile_psnr_box = QCheckBox("per-tile PSNR")
        self.tile_psnr_box.setObjectName("tile-psnr")
        self.tile_psnr_box.setToolTip("Also draw each tile's own PSNR (faded) during the tile phase;\n"
                                      "the main curve is always the whole image's")
        self.tile_psnr_box.toggled.connect(self.plots.set_show_tile_psnr)
        plot_controls.addWidget(self.tile_psnr_box)
        self.train_label = ElidedLabel("")
        self.train_label.setObjectName("train-status")
        plot_controls.addWidget(self.train_label, 1)
        bottom_layout.addLayout(controls)
        bottom_layout.addLayout(plot_controls)
        plots_row = QSplitter(Qt.Orientation.Horizontal)
        plots_row.setObjectName("plots-splitter")
        plots_row.addWidget(self.plots.psnr_plot)
        plots_row.addWidget(self.plots.kernel_plot)
        plots_row.setSizes([700, 300])
        bottom_layout.addWidget(plots_row, 1)

        self.right_splitter = QSplitter(Qt.Orientation.Vertical)
        self.right_splitter.setObjectName("right-splitter")
        self.right_splitter.addWidget(top)
        self.right_splitter.addWidget(bottom)
        self.right_splitter.setStretchFactor(0, 3)
        self.right_splitter.setStretchFactor(1, 1)
        self.right_splitter.setSizes([700, 260])
        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.main_splitter.setObjectName("main-splitter")
        self.main_splitter.addWidget(scroll)
        self.main_splitter.addWidget(self.right_splitter)
        self.main_splitter.setStretchFactor(1, 1)
        panel_width = self.panel.sizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4
        self.main_splitter.setSizes([panel_width, max(400, 1600 - panel_width)])
        self.setCentralWidget(self.main_splitter)
        self.setGeometry(initial_geometry(self.screen().availableGeometry()))

    def _build_status_bar(self) -> None:
        # Three elided lines side by side: a long message never widens the
        # window nor overlaps the counts (QStatusBar's own message would).
        bar = self.statusBar()
        self.status_line = StatusLine()
        self.counts_label = ElidedLabel("")
        self.counts_label.setObjectName("status-counts")
        self.times_label = ElidedLabel("")
        self.times_label.setObjectName("status-times")
        bar.addWidget(self.status_line, 3)
        bar.addWidget(self.counts_label, 4)
        bar.addWidget(self.times_label, 2)

    def fit_to_screen(self, screen: QScreen | None = None) -> None:
        """Place the window on ``screen`` (default: its own) at :func:`initial_geometry`."""
        screen = screen if screen is not None else self.screen()
        handle = self.windowHandle()
        if handle is not None:
            handle.setScreen(screen)
        self.setGeometry(initial_geometry(screen.availableGeometry()))

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

    def show_status(self, text: str, timeout_ms: int = 0) -> None:
        """A status-bar message, cleared after ``timeout_ms`` (SessionView)."""
        self.status_line.show_message(text, timeout_ms)

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
        for key, splitter in (("main_splitter", self.main_splitter), ("right_splitter", self.right_splitter)):
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

    def set_image(self, image: NDArray[np.float32], path: Path | None = None,
                  notes: tuple[str, ...] = ()) -> None:
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
            self.messenger.warning("Not a local file", "Only local files can be opened; remote URLs were ignored.")
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
                    f"{spec(name).label} = {getattr(params, name)} (used by the next training)", 4000)
            return
        if dragging:
            self._debounce.start()
        else:
            self.recompute()

    def _on_method_changed(self, method: str) -> None:
        self._on_params_changed(self.panel.params(), "method", False)
        self.lecture.set_method(method)  # a lecture in progress follows the method

    def recompute(self) -> int:
        """Recompute every stage off the GUI thread; returns the request id
        (-1 without an image).  Results of older requests are dropped."""
        self._debounce.stop()
        self._adopt_panel_params()
        rid = self.session.recompute()
        if rid >= 0:
            self.show_status("computing the stages…")
        return rid

    def _adopt_panel_params(self) -> None:
        """Give the session what the panel shows (the panel may have been set
        quietly, with ``emit=False``) unless a training holds other parameters."""
        if not self.session.is_training():
            self.session.params, self.session.method = self.panel.params(), self.panel.method()

    @property
    def latest_request(self) -> int:
        """Id of the newest stage request."""
        return self.session.latest_request

    def show_stages(self, request_id: int, result: StageResult, snapshot: SnapshotResult | None) -> None:
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
            # stages: the first Start then neither stalls nor waits (id 0: no
            # weight map, the session drops it)
            self._warm_up = False
            self._inspect_runner.submit(0, warm_up_training)
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
        shown = [v for v in views.values() if v.getPlotItem().isVisible()]
        (shown[0] if shown else views["edges"]).getViewBox().autoRange(padding=0.01)

    # ------------------------------------------------------------------ training
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

    # ------------------------------------------------------------------ inspect
    def current_model(self) -> SmoeModel | None:
        """The model shown in the kernel and reconstruction views."""
        return self.session.shown_model

    def _hover_radius(self, view: str) -> float:
        px, _py = self.stages.views[view].getViewBox().viewPixelSize()
        return max(1.5, HOVER_RADIUS_PX * float(px))

    def inspect_at(self, view: str, x: float, y: float) -> int | None:
        """Show the numbers of the kernel near ``(x, y)`` (px) in ``view``, in a
        label next to the pointer."""
        target = self.stages.views.get(view)
        if target is None or view not in ("kernels", "reconstruction"):
            return None
        found = self.session.kernel_near(x, y, self._hover_radius(view))
        if found is None:
            target.hide_hover()
            return None
        k, info = found
        first, _, rest = info.short_text().partition("\n")
        head, _, tail = first.partition(":")
        kind = kernel_kind_text(self.session.kernel_kind(k), short=True)
        target.show_hover(x, y, f"{head} · {kind}\n{tail.strip()}\n{rest}")  # narrow: what it is on a line
        self.inspect_label.setText(info.text().replace("\n", " · "))
        return k

    def _on_mouse_moved(self, view: str, x: float, y: float) -> None:
        for name in ("kernels", "reconstruction"):
            if name != view:
                self.stages.views[name].hide_hover()
        self._pointer = (view, x, y)
        self.inspect_at(view, x, y)

    def _on_pointer_left(self, view: str) -> None:
        if self._pointer is not None and self._pointer[0] == view:
            self._pointer = None

    def refresh_hover(self) -> None:
        """SessionView: the model shown changed; the label follows it."""
        if self._pointer is None:
            for name in ("kernels", "reconstruction"):
                self.stages.views[name].hide_hover()
            return
        self.inspect_at(*self._pointer)

    def select_kernel_at(self, view: str, x: float, y: float) -> int | None:
        """Inspect the kernel near ``(x, y)``, or clear the inspection."""
        if self.session.shown_model is None or view not in ("kernels", "reconstruction"):
            return None
        found = self.session.kernel_near(x, y, self._hover_radius(view))
        k = None if found is None else found[0]
        self.session.select_kernel(k)
        if k is not None:
            self.show_status(f"inspecting kernel {k}…", 3000)
        return k

    def show_inspection(self, result: InspectResult | None) -> None:
        """SessionView: the inspected kernel (None: clear it and the hover labels)."""
        if result is None:
            self.stages.clear_inspection()
            self.kernel_panel.show_result(None)
            return
        self.stages.show_inspection(result)
        model = self.session.shown_model
        image = self.session.image
        self.kernel_panel.show_result(
            result, self.session.partner_of(result.index),
            model.n_kernels if model is not None else 1,
            float(image.shape[0] * image.shape[1]) if image is not None else 1.0,
            self.session.kernel_kind(result.index),
        )
        self.gate_map_shown.emit(result.index)

    def show_captions(self, stages: str, model: str) -> None:
        """SessionView: say in the titles which result each view shows (views
        1-3 say when their stage has no meaning for the method)."""
        result = self.session.stage_result
        if result is not None and stages:
            init = result.init
            n_sp = 0 if init.segment_map is None else int(init.segment_map.max()) + 1
            captions = view_captions(init.method, stages, n_sp)
            self.stages.set_titles(stage_titles(init.method))
        else:
            captions = {name: stages for name in ("edges", "segments", "reduced")}
        for name, text in captions.items():
            self.stages.set_caption(name, text)
        for name in ("kernels", "reconstruction"):
            self.stages.set_caption(name, model)

    def set_kernel_mode(self, mode: str) -> None:
        """Draw view 4 as centres, ellipses or gate territories."""
        self.stages.set_kernel_mode(mode)
        self.session.set_kernel_mode(mode)

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

        results = {label: self.session.final_result(label) for label in self.session.compared_labels()}
        shown = {k: v for k, v in results.items() if v is not None}
        if len(shown) < 2 or self.session.image is None:
            self.messenger.warning("Nothing to compare", "Run Compare (Ctrl+K) first.")
            return None
        window = CompareWindow(self.session.image, shown, current_theme(), self)
        window.show()
        self.compare_window = window
        return window

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
        self.session.close()
        for runner in (self._stage_runner, self._render_runner, self._inspect_runner):
            runner.shutdown()
