"""The main window's layout: which widget goes where, and the status bar.

The widgets are created here and connected by
:meth:`smoe_gui.ui.main_window.MainWindow._connect_controls` (wiring), so a
layout change never touches what a button does.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QScreen
from PySide6.QtWidgets import (
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

from ..core.params import METHODS
from .control.session import COMPARE_METHODS
from .focus import PanelStrip
from .param_panel import ParamPanel
from .views.kernel_panel import KernelPanel
from .views.plots import TrainingPlots
from .views.stage_views import StageViews
from .widgets import ElidedLabel, StatusLine

__all__ = ["WindowLayout", "fits", "initial_geometry"]


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


class WindowLayout(QMainWindow):
    """The window's widgets and their places (the base of
    :class:`~smoe_gui.ui.main_window.MainWindow`); ``panel``, ``stages`` and
    ``plots`` are created before :meth:`_build_layout` places them."""

    panel: ParamPanel
    stages: StageViews
    plots: TrainingPlots

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
        # the panel folds to a strip beside it (ui/focus.py: PanelStrip)
        self.param_box, self.param_strip_button = PanelStrip.make_box(scroll)

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.setSpacing(2)
        mode_row = QHBoxLayout()
        mode_row.addWidget(QLabel("Show:"))
        self.mode_buttons = QButtonGroup(self)
        self.mode_buttons.setExclusive(True)
        for i, (mode, text, tip) in enumerate(
            (
                ("stage", "Stages", "Each view shows its stage (Ctrl+1)"),
                (
                    "original",
                    "Original",
                    "Every view shows the original image under its overlay (Ctrl+2)",
                ),
                ("residual", "Residual", "Every view shows |original − reconstruction| (Ctrl+3)"),
            )
        ):
            button = QPushButton(text)
            button.setObjectName(f"view-{mode}")
            button.setCheckable(True)
            button.setToolTip(tip)
            button.setChecked(mode == "stage")
            self.mode_buttons.addButton(button, i)
            mode_row.addWidget(button)
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
            'Train the selected initialisation and the one chosen under "vs" with the same\n'
            "parameters, one after the other, and overlay their PSNR curves (Ctrl+K)"
        )
        self.compare_combo = QComboBox()
        self.compare_combo.setObjectName("compare-with")
        self.compare_combo.setToolTip(
            "Compare: the second method, trained after the selected one\n"
            "(the same method: the edge method, or grid for edge)"
        )
        for method in METHODS:
            self.compare_combo.addItem(method, method)
        self.compare_combo.setCurrentIndex(self.compare_combo.findData(COMPARE_METHODS[1]))
        self.compare_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
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
        controls.addWidget(self.run_combo)
        self.side_by_side_button = QPushButton("Side by side")
        self.side_by_side_button.setObjectName("compare-side-by-side")
        self.side_by_side_button.setToolTip(
            "The reconstructions of the two Compare runs side by side"
        )
        self.side_by_side_button.setEnabled(False)
        controls.addWidget(self.side_by_side_button)
        controls.addStretch(1)
        # a second row, so that the buttons never set the window's minimum width (1280x720)
        plot_controls = QHBoxLayout()
        plot_controls.addWidget(QLabel("x axis:"))
        self.x_axis_combo = QComboBox()
        self.x_axis_combo.setObjectName("x-axis")
        self.x_axis_combo.addItem("steps", "steps")
        self.x_axis_combo.addItem("seconds", "seconds")
        plot_controls.addWidget(self.x_axis_combo)
        self.tile_psnr_box = QCheckBox("per-tile PSNR")
        self.tile_psnr_box.setObjectName("tile-psnr")
        self.tile_psnr_box.setToolTip(
            "Also draw each tile's own PSNR (faded) during the tile phase;\n"
            "the main curve is always the whole image's"
        )
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
        self.main_splitter.addWidget(self.param_box)
        self.main_splitter.setCollapsible(0, False)
        self.main_splitter.addWidget(self.right_splitter)
        self.main_splitter.setStretchFactor(1, 1)
        panel_width = (
            self.panel.sizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 22
        )
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

    def show_status(self, text: str, timeout_ms: int = 0) -> None:
        """A status-bar message, cleared after ``timeout_ms`` (SessionView)."""
        self.status_line.show_message(text, timeout_ms)
