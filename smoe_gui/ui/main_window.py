"""The main window: parameter panel, five linked stage views, training plots.

The window calls :mod:`smoe_gui.core` through worker threads
(:mod:`smoe_gui.ui.workers`) and only hands ready arrays to the views.  Every
message goes through ``self.messenger`` and every file dialog through
``_ask_*`` methods, so tests can intercept both.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QByteArray, QEvent, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..core.fileio import write_png, write_text
from ..core.image import load_image
from ..core.inspection import kernel_info, nearest_kernel
from ..core.model import SmoeModel
from ..core.modelio import load_model, read_model_params, save_model
from ..core.params import Params, spec
from .jobs import (
    SnapshotResult,
    StageResult,
    compute_gate_map,
    compute_snapshot,
    compute_stages,
    with_numba_threads,
)
from .messages import Messenger
from .param_panel import INIT_GROUPS, ParamPanel
from .plots import ExpertPlot, TrainingPlots
from .resources import default_sample, icon_path, sample_paths
from .stage_views import BACKGROUND_MODES, STAGES, StageViews, widget_rgb
from .theme import current_theme
from .workers import JobRunner, ProgressBatch, TrainingThread, TrainRun, TrainWorker

__all__ = ["IMAGE_SUFFIXES", "MainWindow", "default_settings"]

ORGANIZATION = "smoe-gui"
APPLICATION = "smoe-gui"
#: Environment variable naming an INI file to use instead of the user's settings.
SETTINGS_ENV = "SMOE_GUI_SETTINGS"

#: File name endings offered and accepted as images.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".pgm", ".ppm")
_IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ");;All files (*)"

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
#: While training, the kernel overlay (thousands of ellipses) is redrawn at
#: most this often; the reconstruction under it at every snapshot.
OVERLAY_INTERVAL_S = 0.3
#: Numba threads of the preview renderer (the training keeps the other cores).
RENDER_THREADS = 1
#: Hover radius around a kernel centre, in screen pixels.
HOVER_RADIUS_PX = 12
MAX_RECENT = 8


def default_settings() -> QSettings:
    """The user's settings, or the INI file named by ``$SMOE_GUI_SETTINGS``."""
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)


class MainWindow(QMainWindow):
    """The smoe-gui main window.

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
                 settings: QSettings | None = None, open_default: bool = True) -> None:
        super().__init__()
        self.setObjectName("main-window")
        self.setWindowTitle("smoe-gui")
        self.setAcceptDrops(True)
        icon = icon_path()
        if icon is not None:
            self.setWindowIcon(QIcon(str(icon)))
        self.settings = settings if settings is not None else default_settings()
        self.messenger = Messenger(self)
        self.image: NDArray[np.float32] | None = None
        self.image_path: Path | None = None
        self._next_id = 0
        self._latest_stage = -1
        self._latest_snapshot = -1
        self._final_snapshot = -1
        self._overlay_drawn_at = 0.0
        self._latest_gate = -1
        self._stage_result: StageResult | None = None
        self._result_model: SmoeModel | None = None  # trained or loaded: shown in views 4-5
        self._result_snapshot: SnapshotResult | None = None
        self._shown_model: SmoeModel | None = None
        self._training: TrainingThread | None = None
        self._train_labels: tuple[str, ...] = ()
        self._train_params: tuple[Params, str] | None = None
        self._restart_after_stop = False
        self._final_models: dict[str, SmoeModel] = {}
        self._last_train_batch: ProgressBatch | None = None
        self.selected_kernel: int | None = None
        self.dropped_results = 0
        self.frames_shown = 0
        self.stage_draw_ms = 0.0
        self.last_error: str | None = None
        self._closing = False

        theme = current_theme()
        self.panel = ParamPanel(self._stored_params())
        stored_method = str(self.settings.value("method", "edge"))
        if stored_method in ("edge", "grid"):
            self.panel.set_method(stored_method, emit=False)
        self.stages = StageViews(theme)
        self.expert_plot = ExpertPlot(theme)
        self.stages.grid.addWidget(self.expert_plot, 1, 2)
        self.plots = TrainingPlots(theme)
        self._build_layout()
        self._build_actions()
        self._build_status_bar()

        self._stage_runner = JobRunner("smoe-stages")
        self._render_runner = JobRunner("smoe-render")
        self._inspect_runner = JobRunner("smoe-inspect")
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
        self.stages.mouse_clicked.connect(self._on_mouse_clicked)

        self._restore_settings()
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
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.panel.sizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4)

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
        self.inspect_label = QLabel("Hover over a kernel (views 4-5) to inspect it; click to show its weight map.")
        self.inspect_label.setObjectName("inspect-info")
        self.inspect_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.inspect_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        mode_row.addWidget(self.inspect_label, 1)
        top_layout.addLayout(mode_row)
        top_layout.addWidget(self.stages, 1)
        top_layout.addWidget(self.stages.legend)

        bottom = QWidget()
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
        self.compare_button = QPushButton("Compare edge vs grid")
        self.compare_button.setObjectName("train-compare")
        self.compare_button.setToolTip(
            "Train the edge-aligned and the grid initialisation with the same parameters\n"
            "one after the other and overlay their PSNR curves (Ctrl+K)"
        )
        self.start_button.clicked.connect(self.start_training)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop_training)
        self.compare_button.clicked.connect(self.start_compare)
        for b in (self.start_button, self.pause_button, self.stop_button, self.compare_button):
            controls.addWidget(b)
        controls.addSpacing(12)
        controls.addWidget(QLabel("x axis:"))
        self.x_axis_combo = QComboBox()
        self.x_axis_combo.setObjectName("x-axis")
        self.x_axis_combo.addItem("steps", "steps")
        self.x_axis_combo.addItem("seconds", "seconds")
        self.x_axis_combo.currentIndexChanged.connect(
            lambda _i: self.plots.set_x_axis(str(self.x_axis_combo.currentData()))
        )
        controls.addWidget(self.x_axis_combo)
        self.train_label = QLabel("")
        self.train_label.setObjectName("train-status")
        controls.addWidget(self.train_label, 1)
        bottom_layout.addLayout(controls)
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
        self.main_splitter.setSizes([340, 1260])
        self.setCentralWidget(self.main_splitter)
        self.resize(1600, 1000)

    def _action(self, menu: QMenu, text: str, slot: object,
                shortcut: str | QKeySequence | QKeySequence.StandardKey | None = None,
                name: str | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if name:
            action.setObjectName(name)
        action.triggered.connect(lambda _checked=False: slot())  # type: ignore[operator]
        menu.addAction(action)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&Open image…", self.open_image_dialog, QKeySequence.StandardKey.Open, "action-open")
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.setObjectName("menu-recent")
        self.samples_menu = file_menu.addMenu("&Samples")
        self.samples_menu.setObjectName("menu-samples")
        for path in sample_paths():
            action = self.samples_menu.addAction(path.stem)
            action.setData(str(path))
            action.triggered.connect(lambda _c=False, p=path: self.open_image(p))
        file_menu.addSeparator()
        self._action(file_menu, "&Load model…", self.load_model_dialog, "Ctrl+L", "action-load-model")
        self._action(file_menu, "&Save model…", self.save_model_dialog, QKeySequence.StandardKey.Save, "action-save-model")
        self._action(file_menu, "Load &parameters…", self.load_params_dialog, "Ctrl+Shift+O", "action-load-params")
        self._action(file_menu, "Save p&arameters…", self.save_params_dialog, "Ctrl+Shift+S", "action-save-params")
        file_menu.addSeparator()
        export = file_menu.addMenu("&Export")
        for name in STAGES:
            self._action(export, f"Stage view '{name}' as PNG…",
                         lambda n=name: self.export_stage_dialog(n), None, f"action-export-{name}")
        self._action(export, "All stage views to a folder…", self.export_all_stages_dialog, None, "action-export-stages")
        export.addSeparator()
        self._action(export, "Reconstruction as PNG…", self.export_reconstruction_dialog, "Ctrl+E",
                     "action-export-reconstruction")
        self._action(export, "PSNR curve as PNG…", self.export_psnr_png_dialog, None, "action-export-psnr-png")
        self._action(export, "PSNR curve as CSV…", self.export_psnr_csv_dialog, None, "action-export-psnr-csv")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit, "action-quit")

        view_menu = bar.addMenu("&View")
        group = QActionGroup(self)
        self.mode_actions: dict[str, QAction] = {}
        for i, mode in enumerate(BACKGROUND_MODES):
            action = self._action(view_menu, f"Show {mode}", lambda m=mode: self.set_view_mode(m), f"Ctrl+{i + 1}",
                                  f"action-view-{mode}")
            action.setCheckable(True)
            action.setChecked(mode == "stage")
            group.addAction(action)
            self.mode_actions[mode] = action
        view_menu.addSeparator()
        self._action(view_menu, "Fit views to image", lambda: self.stages.views["edges"].getViewBox().autoRange(
            padding=0.01), "Ctrl+0", "action-fit")

        train_menu = bar.addMenu("&Train")
        self.start_action = self._action(train_menu, "&Start", self.start_training, "F5", "action-start")
        self.pause_action = self._action(train_menu, "&Pause / resume", self.toggle_pause, "Space", "action-pause")
        self.stop_action = self._action(train_menu, "S&top", self.stop_training, "Esc", "action-stop")
        self.compare_action = self._action(train_menu, "&Compare edge vs grid", self.start_compare, "Ctrl+K",
                                           "action-compare")
        train_menu.addSeparator()
        self._action(train_menu, "&Reset parameters", self.panel.reset_to_defaults, "Ctrl+R", "action-reset")

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About smoe-gui", self._about, None, "action-about")

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.counts_label = QLabel("")
        self.counts_label.setObjectName("status-counts")
        self.times_label = QLabel("")
        self.times_label.setObjectName("status-times")
        bar.addPermanentWidget(self.counts_label)
        bar.addPermanentWidget(self.times_label)

    def _about(self) -> None:
        from smoe_gui import __version__

        self.messenger.info(
            "About smoe-gui",
            f"smoe-gui {__version__}\nSteered Mixture-of-Experts image modelling with the "
            "edge-aligned kernel initialisation of Determann & Fleig.",
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
            self.restoreGeometry(geometry)
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
        self._rebuild_recent_menu()

    def save_settings(self) -> None:
        """Write geometry, splitter sizes, parameters, method, recent files."""
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("window_state", self.saveState())
        s.setValue("main_splitter", self.main_splitter.saveState())
        s.setValue("right_splitter", self.right_splitter.saveState())
        s.setValue("params", self.panel.params().to_json())
        s.setValue("method", self.panel.method())
        s.setValue("x_axis", self.plots.x_axis)
        s.setValue("recent_files", self.recent_files())
        s.sync()

    def recent_files(self) -> list[str]:
        """Recently opened images, newest first."""
        value = self.settings.value("recent_files", [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            return []
        return [str(v) for v in value][:MAX_RECENT]

    def _add_recent(self, path: Path) -> None:
        text = str(path.resolve())
        files = [text] + [p for p in self.recent_files() if p != text]
        self.settings.setValue("recent_files", files[:MAX_RECENT])
        self._rebuild_recent_menu()

    def _remove_recent(self, path: str) -> None:
        self.settings.setValue("recent_files", [p for p in self.recent_files() if p != path])
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        for path in files:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _c=False, p=path: self._open_recent(p))
        self.recent_menu.setEnabled(bool(files))

    def _open_recent(self, path: str) -> None:
        if not Path(path).is_file():
            self.messenger.error("Cannot open image", f"{path}: no such file (removed from the recent files)")
            self._remove_recent(path)
            return
        self.open_image(path)

    # ------------------------------------------------------------------ dialogs (tests patch these)
    def _ask_open_path(self, title: str, file_filter: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, title, self._dialog_folder(), file_filter)
        return path or None

    def _ask_save_path(self, title: str, default_name: str, file_filter: str) -> str | None:
        start = str(Path(self._dialog_folder()) / default_name)
        path, _ = QFileDialog.getSaveFileName(self, title, start, file_filter)
        return path or None

    def _ask_folder(self, title: str) -> str | None:
        path = QFileDialog.getExistingDirectory(self, title, self._dialog_folder())
        return path or None

    def _dialog_folder(self) -> str:
        return str(self.image_path.parent) if self.image_path is not None else str(Path.home())

    def ask_restart(self) -> bool:
        """Ask whether to restart training with changed parameters."""
        return self.messenger.ask(
            "Restart training?",
            "Training is running with the previous parameters.\n"
            "Stop it and restart with the new parameters?\n"
            "(No keeps the run going and puts the parameters back.)",
        )

    # ------------------------------------------------------------------ image
    def open_image_dialog(self) -> None:
        path = self._ask_open_path("Open image", _IMAGE_FILTER)
        if path:
            self.open_image(path)

    def open_image(self, path: str | os.PathLike[str]) -> bool:
        """Load ``path`` and recompute every stage; on failure say why and keep
        the current image and results.  Returns whether it opened."""
        p = Path(path)
        try:
            image = load_image(p)
        except ValueError as exc:
            self.messenger.error("Cannot open image", str(exc))
            return False
        self._stop_training_and_wait()
        self.set_image(image, p)
        self._add_recent(p)
        return True

    def set_image(self, image: NDArray[np.float32], path: Path | None = None) -> None:
        """Show ``image`` (H, W) float32 and recompute every stage."""
        self.image = np.ascontiguousarray(image, dtype=np.float32)
        self.image_path = path
        self._stage_result = None
        self._result_model = None
        self._result_snapshot = None
        self._shown_model = None
        self._latest_snapshot = -1
        self._latest_gate = -1
        self.selected_kernel = None
        self.stages.set_original(self.image)
        self.expert_plot.set_history([])
        h, w = self.image.shape
        name = path.name if path is not None else "image"
        self.setWindowTitle(f"smoe-gui — {name} ({w}×{h})")
        self.recompute()

    def open_dropped(self, paths: list[str]) -> None:
        """Open what was dropped: the first image (folders are searched), or a
        model (.npz) or parameter file (.json); say what was ignored."""
        files: list[Path] = []
        notes: list[str] = []
        for text in paths:
            p = Path(text)
            if p.is_dir():
                inside = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
                if not inside:
                    notes.append(f"{p}: folder without images")
                files.extend(inside)
            else:
                files.append(p)
        if not files:
            self.messenger.error("Nothing to open", "\n".join(notes) or "Nothing usable was dropped.")
            return
        opened: Path | None = None
        for p in files:
            if opened is not None:
                notes.append(f"{p.name}: ignored (one file at a time)")
                continue
            suffix = p.suffix.lower()
            if suffix == ".npz":
                if self.load_model_file(p):
                    opened = p
                continue
            if suffix == ".json":
                if self.load_params_file(p):
                    opened = p
                continue
            try:
                image = load_image(p)
            except ValueError as exc:
                notes.append(str(exc))
                continue
            self._stop_training_and_wait()
            self.set_image(image, p)
            self._add_recent(p)
            opened = p
        if opened is None:
            self.messenger.error("Cannot open what was dropped",
                                 "None of the dropped files could be opened:\n" + "\n".join(notes))
        elif len(files) > 1 or notes:
            self.messenger.info("Dropped several files", f"Opened {opened.name}.\n" + "\n".join(notes))

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
            QTimer.singleShot(0, lambda: self.open_dropped(paths))

    # ------------------------------------------------------------------ parameters and recompute
    def _on_params_changed(self, params: Params, name: str, dragging: bool) -> None:
        if self.is_training():
            if self._train_params is not None and (params, self.panel.method()) == self._train_params:
                return
            if self.ask_restart():
                self._restart_after_stop = True
                self.stop_training()
            else:
                old_params, old_method = self._train_params or (params, self.panel.method())
                self.panel.set_params(old_params, emit=False)
                self.panel.set_method(old_method, emit=False)
                return
        if name != "*" and name != "method" and spec(name).group not in INIT_GROUPS:
            self.statusBar().showMessage(f"{spec(name).label} = {getattr(params, name)} (used by the next training)", 4000)
            return
        self._result_model = None
        self._result_snapshot = None
        if dragging:
            self._debounce.start()
        else:
            self._debounce.stop()
            self.recompute()

    def _on_method_changed(self, _method: str) -> None:
        self._on_params_changed(self.panel.params(), "method", False)

    def recompute(self) -> int:
        """Recompute every stage off the GUI thread; returns the request id
        (-1 without an image).  Results of older requests are dropped."""
        self._debounce.stop()
        if self.image is None:
            return -1
        self._next_id += 1
        rid = self._next_id
        self._latest_stage = rid
        self._stage_runner.submit(rid, compute_stages, self.image, self.panel.params(), self.panel.method())
        self.statusBar().showMessage("computing the stages…")
        return rid

    @property
    def latest_request(self) -> int:
        """Id of the newest stage request."""
        return self._latest_stage

    def _on_stage_done(self, rid: int) -> None:
        result: StageResult | None = self._stage_runner.worker.take(rid)
        if rid != self._latest_stage or self._closing or result is None:
            self.dropped_results += 1
            return
        t0 = time.perf_counter()
        self._stage_result = result
        self.stages.show_result(rid, result)
        if self._result_snapshot is not None:
            self.stages.show_snapshot(rid, self._result_snapshot)
            self._shown_model = self._result_snapshot.model
        else:
            self._shown_model = result.snapshot.model
        init = result.init
        self.expert_plot.set_history(list(init.expert_psnr))  # type: ignore[attr-defined]
        self.stage_draw_ms = (time.perf_counter() - t0) * 1e3
        self._update_status(result)
        notes = "; ".join(init.notes)  # type: ignore[attr-defined]
        self.statusBar().showMessage(notes, 8000) if notes else self.statusBar().clearMessage()
        self.stages_shown.emit(rid)

    def _on_stage_failed(self, rid: int, message: str) -> None:
        if rid != self._latest_stage:
            return
        self.last_error = message
        self.statusBar().showMessage(f"Cannot compute the stages: {message}")

    def _on_job_failed(self, _rid: int, message: str) -> None:
        self.last_error = message
        self.statusBar().showMessage(message, 8000)

    def _update_status(self, result: StageResult) -> None:
        init = result.init
        model = result.snapshot.model
        salient = int(np.count_nonzero(init.salient))  # type: ignore[attr-defined]
        self.counts_label.setText(
            f"edge pixels {int(np.count_nonzero(init.edges)):,} · "  # type: ignore[attr-defined]
            f"segments {len(init.segments):,} · "  # type: ignore[attr-defined]
            f"reduced {len(init.reduced):,} ({salient} salient) · "  # type: ignore[attr-defined]
            f"kernels {model.n_kernels:,} ({int(init.n_background)} background) · "  # type: ignore[attr-defined]
            f"init PSNR {result.snapshot.psnr:.2f} dB"
        )
        timings = dict(init.timings_ms)  # type: ignore[attr-defined]
        timings["render"] = result.snapshot.render_ms
        parts = [f"{k} {v:.0f}" for k, v in timings.items()]
        self.times_label.setText("ms: " + " · ".join(parts) + f" · draw {self.stage_draw_ms:.0f}")

    # ------------------------------------------------------------------ view mode
    def set_view_mode(self, mode: str) -> None:
        """Show the stages, the original, or the residual in every view."""
        self.stages.set_mode(mode)
        index = BACKGROUND_MODES.index(mode)
        button = self.mode_buttons.button(index)
        if button is not None and not button.isChecked():
            button.setChecked(True)
        self.mode_actions[mode].setChecked(True)

    # ------------------------------------------------------------------ training
    def is_training(self) -> bool:
        """Whether a training or Compare thread is running."""
        return self._training is not None and self._training.is_running()

    def is_paused(self) -> bool:
        return self._training is not None and self._training.worker.paused

    def _matching_init(self, params: Params, method: str) -> object | None:
        r = self._stage_result
        if r is None:
            return None
        init = r.init
        if init.params == params and init.method == method and init.image is self.image:  # type: ignore[attr-defined]
            return init
        return None

    def start_training(self) -> bool:
        """Train from the current initialisation; returns whether it started."""
        if self.is_training():
            return False
        if self.image is None:
            self.messenger.warning("No image", "Open an image first.")
            return False
        params, method = self.panel.params(), self.panel.method()
        run = TrainRun("train", params, method, self._matching_init(params, method))
        return self._launch([run], ("train",))

    def start_compare(self) -> bool:
        """Train edge then grid with the same parameters; overlay the curves."""
        if self.is_training():
            return False
        if self.image is None:
            self.messenger.warning("No image", "Open an image first.")
            return False
        params = self.panel.params()
        runs = [
            TrainRun("edge", params, "edge", self._matching_init(params, "edge")),
            TrainRun("grid", params, "grid", self._matching_init(params, "grid")),
        ]
        return self._launch(runs, ("edge", "grid"))

    def _launch(self, runs: list[TrainRun], labels: tuple[str, ...]) -> bool:
        assert self.image is not None
        self.plots.clear(labels)
        self.plots.show_labels(labels)
        self._final_models = {}
        self._train_labels = labels
        self._train_params = (runs[0].params, self.panel.method())
        from .app import training_threads

        worker = TrainWorker(self.image, runs, PROGRESS_INTERVAL_S, SNAPSHOT_INTERVAL_S,
                             numba_threads=training_threads())
        worker.posted.connect(self._drain_training)
        self._training = TrainingThread(worker)
        self._training.thread.finished.connect(self._on_training_thread_finished)
        self._training.start()
        self._train_started = time.perf_counter()
        self.frames_shown = 0
        self._overlay_drawn_at = 0.0
        self._update_buttons()
        return True

    def toggle_pause(self) -> None:
        """Pause a running training, or resume a paused one."""
        if not self.is_training():
            return
        assert self._training is not None
        worker = self._training.worker
        if worker.paused:
            worker.resume()
            self.train_label.setText("resumed")
        else:
            worker.pause()
            self.train_label.setText("paused")
        self._update_buttons()

    def stop_training(self) -> None:
        """Ask the fit to stop within one step; the best model so far is kept."""
        if self._training is not None:
            self._training.worker.stop()
            self.train_label.setText("stopping…")

    def _stop_training_and_wait(self) -> None:
        if self._training is not None:
            self._restart_after_stop = False
            current = self._training
            current.stop_and_wait()
            self._drain_training()
            self._training = None
            self._training_ended()

    def _on_run_started(self, label: str) -> None:
        self.train_label.setText(f"{label}: starting…")

    def _on_progress(self, batch: ProgressBatch) -> None:
        if self._training is None or batch.label not in self._train_labels:
            return
        self.plots.append(batch)
        self._last_train_batch = batch
        if len(batch.steps):
            phase = batch.phases[-1]
            tile = f" tile {batch.tile + 1}/{batch.n_tiles}" if phase == "tiles" and batch.tile is not None else ""
            elapsed = float(batch.elapsed_s[-1])
            rate = float(batch.steps[-1]) / elapsed if elapsed > 0 else 0.0
            self.train_label.setText(
                f"{batch.label}: {phase}{tile} · step {int(batch.steps[-1])} · "
                f"PSNR {float(batch.psnr[-1]):.2f} dB · {int(batch.n_kernels[-1])} kernels · "
                f"{elapsed:.1f} s · {rate:.0f} steps/s"
                + (" · paused" if self.is_paused() else "")
            )
        if batch.messages:
            self.statusBar().showMessage(f"{batch.label}: {batch.messages[-1]}", 6000)

    def _on_train_snapshot(self, label: str, model: SmoeModel) -> None:
        if self.image is None or (model.height, model.width) != self.image.shape:
            return
        self._next_id += 1
        self._latest_snapshot = self._next_id
        self._render_runner.submit(
            self._next_id, with_numba_threads, RENDER_THREADS,
            compute_snapshot, self.image, model, None, 0, 0, self.preview_pixels(),
        )

    def preview_pixels(self) -> int:
        """Pixels of a live training preview: the reconstruction view's size on
        screen, within ``PREVIEW_MIN_PIXELS .. PREVIEW_PIXELS``."""
        view = self.stages.views["reconstruction"]
        dpr = float(view.devicePixelRatioF())
        shown = view.width() * view.height() * dpr * dpr
        return int(min(PREVIEW_PIXELS, max(PREVIEW_MIN_PIXELS, shown)))

    def _on_snapshot_done(self, rid: int) -> None:
        snap: SnapshotResult | None = self._render_runner.worker.take(rid)
        if rid != self._latest_snapshot or self._closing or snap is None:
            self.dropped_results += 1
            return
        now = time.perf_counter()
        overlay = (rid == self._final_snapshot or not self.is_training()
                   or now - self._overlay_drawn_at >= OVERLAY_INTERVAL_S)
        if overlay:
            self._overlay_drawn_at = now
        self.stages.show_snapshot(rid, snap, kernels=overlay)
        self._shown_model = snap.model
        if self._result_model is snap.model:
            self._result_snapshot = snap
        self.frames_shown += 1
        self.snapshot_shown.emit(rid)

    def _on_run_finished(self, label: str, model: SmoeModel) -> None:
        self._final_models[label] = model
        self._result_model = model
        self._result_snapshot = None
        if self.image is not None and (model.height, model.width) == self.image.shape:
            self._next_id += 1
            self._latest_snapshot = self._next_id
            self._final_snapshot = self._next_id
            self._render_runner.submit(self._next_id, compute_snapshot, self.image, model, None)

    def _on_train_failed(self, message: str) -> None:
        self.last_error = message
        self.messenger.error("Training failed", message)

    def _on_training_thread_finished(self) -> None:
        current = self._training
        if current is None or self.sender() is not current.thread:
            return  # a run already stopped and waited for (new image, closing)
        self._drain_training()
        self._training = None
        # ``finished`` is emitted just before the thread ends: wait for the end
        # before the last reference goes (never destroy a running QThread).
        current.wait()
        self._training_ended()

    def _drain_training(self) -> None:
        """Handle every message the training worker has posted."""
        if self._training is None:
            return
        handlers: dict[str, Callable[..., None]] = {
            "run_started": self._on_run_started,
            "progress": self._on_progress,
            "snapshot": self._on_train_snapshot,
            "run_finished": self._on_run_finished,
            "failed": self._on_train_failed,
        }
        for kind, *payload in self._training.worker.drain():
            handlers[kind](*payload)

    def _training_ended(self) -> None:
        self.plots.flush()
        self._update_buttons()
        summary = []
        for label in self._train_labels:
            data = self.plots.data[label].arrays()
            if len(data["psnr"]):
                summary.append(f"{label}: {data['psnr'][-1]:.2f} dB, {int(data['kernels'][-1])} kernels, "
                               f"{int(data['steps'][-1])} steps")
        if summary:
            self.train_label.setText("done — " + " · ".join(summary))
        self.training_finished.emit()
        if self._restart_after_stop and not self._closing:
            self._restart_after_stop = False
            self.start_training()

    def _update_buttons(self) -> None:
        running = self.is_training()
        self.start_button.setEnabled(not running)
        self.compare_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.pause_button.setText("Resume" if running and self.is_paused() else "Pause")
        self.start_action.setEnabled(not running)
        self.compare_action.setEnabled(not running)
        self.pause_action.setEnabled(running)
        self.stop_action.setEnabled(running)

    def final_model(self, label: str) -> SmoeModel | None:
        """The final model of the last run called ``label`` ("train", "edge", "grid")."""
        return self._final_models.get(label)

    # ------------------------------------------------------------------ inspect
    def current_model(self) -> SmoeModel | None:
        """The model shown in the kernel and reconstruction views."""
        return self._shown_model

    def _hover_radius(self, view: str) -> float:
        px, _py = self.stages.views[view].getViewBox().viewPixelSize()
        return max(1.5, HOVER_RADIUS_PX * float(px))

    def inspect_at(self, view: str, x: float, y: float) -> int | None:
        """Show the numbers of the kernel near ``(x, y)`` (px) in ``view``."""
        model = self._shown_model
        target = self.stages.views.get(view)
        if target is None or model is None or view not in ("kernels", "reconstruction"):
            return None
        k = nearest_kernel(model, x, y, self._hover_radius(view))
        if k is None:
            target.hover_text.setVisible(False)
            return None
        info = kernel_info(model, k)
        target.hover_text.setText(info.short_text())
        (x0, x1), _ = target.getViewBox().viewRange()
        target.hover_text.setAnchor((1, 0) if info.x > (x0 + x1) / 2 else (0, 0))  # stay inside the view
        target.hover_text.setPos(info.x, info.y)
        target.hover_text.setVisible(True)
        self.inspect_label.setText(info.text().replace("\n", " · "))
        return k

    def _on_mouse_moved(self, view: str, x: float, y: float) -> None:
        for name in ("kernels", "reconstruction"):
            if name != view:
                self.stages.views[name].hover_text.setVisible(False)
        self.inspect_at(view, x, y)

    def _on_mouse_clicked(self, view: str, x: float, y: float) -> None:
        self.select_kernel_at(view, x, y)

    def select_kernel_at(self, view: str, x: float, y: float) -> int | None:
        """Highlight the weight map of the kernel near ``(x, y)``, or clear it."""
        model = self._shown_model
        if model is None or view not in ("kernels", "reconstruction"):
            return None
        k = nearest_kernel(model, x, y, self._hover_radius(view))
        self.selected_kernel = k
        if k is None:
            self._latest_gate = -1
            self.stages.set_highlight(None)
            return None
        self._next_id += 1
        self._latest_gate = self._next_id
        self._inspect_runner.submit(self._next_id, compute_gate_map, model, k)
        self.statusBar().showMessage(f"computing the weight map of kernel {k}…", 3000)
        return k

    def _on_gate_done(self, rid: int) -> None:
        result: tuple[int, NDArray[np.float32]] | None = self._inspect_runner.worker.take(rid)
        if rid != self._latest_gate or self._closing or result is None:
            return
        k, weights = result
        if self.image is None or weights.shape != self.image.shape:
            return
        self.stages.set_highlight(weights)
        self.gate_map_shown.emit(k)

    # ------------------------------------------------------------------ models and parameters
    def model_to_save(self) -> SmoeModel | None:
        """The trained or loaded model, else the initial model."""
        if self._result_model is not None:
            return self._result_model
        return self._stage_result.snapshot.model if self._stage_result is not None else None

    def save_model_dialog(self) -> None:
        path = self._ask_save_path("Save model", "model.npz", "SMoE model (*.npz)")
        if path:
            self.save_model_file(path)

    def save_model_file(self, path: str | os.PathLike[str]) -> bool:
        model = self.model_to_save()
        if model is None:
            self.messenger.warning("Nothing to save", "There is no model yet: open an image first.")
            return False
        try:
            save_model(model, path, params=self.panel.params())
        except (ValueError, OSError) as exc:
            self.messenger.error("Cannot save model", str(exc))
            return False
        self.statusBar().showMessage(f"saved {model.n_kernels} kernels to {path}", 5000)
        return True

    def load_model_dialog(self) -> None:
        path = self._ask_open_path("Load model", "SMoE model (*.npz);;All files (*)")
        if path:
            self.load_model_file(path)

    def load_model_file(self, path: str | os.PathLike[str]) -> bool:
        """Show a saved model over the current image (sizes must match)."""
        try:
            model = load_model(path)
        except ValueError as exc:
            self.messenger.error("Cannot load model", str(exc))
            return False
        if self.image is None:
            self.messenger.error("Cannot load model", "Open the image the model was made for first.")
            return False
        h, w = self.image.shape
        if (model.height, model.width) != (h, w):
            self.messenger.error(
                "Model does not fit the image",
                f"{Path(path).name} models a {model.width}×{model.height} image, but the open image is "
                f"{w}×{h}. Open the image it was made for first.",
            )
            return False
        try:
            stored = read_model_params(path)
        except ValueError as exc:
            stored = None
            self.statusBar().showMessage(f"ignoring the stored parameters: {exc}", 6000)
        self._stop_training_and_wait()
        self._result_model = model
        self._result_snapshot = None
        self._next_id += 1
        self._latest_snapshot = self._next_id
        self._render_runner.submit(self._next_id, compute_snapshot, self.image, model, None)
        if stored is not None and stored != self.panel.params():
            self.panel.set_params(stored, emit=False)
            self.recompute()
        self.statusBar().showMessage(f"loaded {model.n_kernels} kernels from {path}", 5000)
        return True

    def save_params_dialog(self) -> None:
        path = self._ask_save_path("Save parameters", "params.json", "Parameters (*.json)")
        if path:
            self.save_params_file(path)

    def save_params_file(self, path: str | os.PathLike[str]) -> bool:
        try:
            write_text(path, self.panel.params().to_json())
        except (ValueError, OSError) as exc:
            self.messenger.error("Cannot save parameters", str(exc))
            return False
        self.statusBar().showMessage(f"saved parameters to {path}", 5000)
        return True

    def load_params_dialog(self) -> None:
        path = self._ask_open_path("Load parameters", "Parameters (*.json);;All files (*)")
        if path:
            self.load_params_file(path)

    def load_params_file(self, path: str | os.PathLike[str]) -> bool:
        try:
            params = Params.from_json(Path(path))
        except ValueError as exc:
            self.messenger.error("Cannot load parameters", str(exc))
            return False
        self.panel.set_params(params, emit=True)
        return True

    # ------------------------------------------------------------------ exports
    def export_stage(self, name: str, path: str | os.PathLike[str]) -> bool:
        """Write stage view ``name`` as drawn to a PNG."""
        try:
            write_png(path, widget_rgb(self.stages.views[name]))
        except (ValueError, OSError) as exc:
            self.messenger.error("Cannot export", str(exc))
            return False
        return True

    def export_stage_dialog(self, name: str) -> None:
        path = self._ask_save_path(f"Export stage view '{name}'", f"stage-{name}.png", "PNG image (*.png)")
        if path:
            self.export_stage(name, path)

    def export_all_stages(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write every stage view to ``folder/stage-<name>.png``."""
        written = []
        for name in STAGES:
            target = Path(folder) / f"stage-{name}.png"
            if not self.export_stage(name, target):
                break
            written.append(target)
        return written

    def export_all_stages_dialog(self) -> None:
        folder = self._ask_folder("Export all stage views to")
        if folder:
            written = self.export_all_stages(folder)
            self.statusBar().showMessage(f"wrote {len(written)} PNG files to {folder}", 5000)

    def reconstruction(self) -> NDArray[np.float32] | None:
        """The reconstruction shown now, (H, W) float32."""
        return self.stages._reconstruction

    def export_reconstruction(self, path: str | os.PathLike[str]) -> bool:
        recon = self.reconstruction()
        if recon is None:
            self.messenger.warning("Nothing to export", "There is no reconstruction yet.")
            return False
        try:
            write_png(path, recon)
        except (ValueError, OSError) as exc:
            self.messenger.error("Cannot export", str(exc))
            return False
        return True

    def export_reconstruction_dialog(self) -> None:
        path = self._ask_save_path("Export reconstruction", "reconstruction.png", "PNG image (*.png)")
        if path:
            self.export_reconstruction(path)

    def export_psnr_png(self, path: str | os.PathLike[str]) -> bool:
        try:
            write_png(path, widget_rgb(self.plots.psnr_plot))
        except (ValueError, OSError) as exc:
            self.messenger.error("Cannot export", str(exc))
            return False
        return True

    def export_psnr_png_dialog(self) -> None:
        path = self._ask_save_path("Export PSNR curve", "psnr.png", "PNG image (*.png)")
        if path:
            self.export_psnr_png(path)

    def export_psnr_csv(self, path: str | os.PathLike[str]) -> bool:
        try:
            write_text(path, self.plots.csv_text())
        except (ValueError, OSError) as exc:
            self.messenger.error("Cannot export", str(exc))
            return False
        return True

    def export_psnr_csv_dialog(self) -> None:
        path = self._ask_save_path("Export PSNR curve", "psnr.csv", "CSV (*.csv)")
        if path:
            self.export_psnr_csv(path)

    # ------------------------------------------------------------------ Qt events
    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt override)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            theme = current_theme()
            self.stages.apply_theme(theme)
            self.plots.apply_theme(theme)
            self.expert_plot.apply_theme(theme)
        super().changeEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        """Save settings, stop training, stop every worker thread and wait."""
        self._closing = True
        self._debounce.stop()
        try:
            self.save_settings()
        finally:
            self._stop_training_and_wait()
            for runner in (self._stage_runner, self._render_runner, self._inspect_runner):
                runner.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop every thread (what closing the window does), without closing."""
        self._closing = True
        self._stop_training_and_wait()
        for runner in (self._stage_runner, self._render_runner, self._inspect_runner):
            runner.shutdown()
