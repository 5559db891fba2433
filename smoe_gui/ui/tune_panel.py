"""The Tune panel: sweeps and searches on the trained model, in the window.

Pick one or two numeric parameters (ranges default to the parameter table's),
a time budget per fit and the number of trials; Start runs a study of
:func:`smoe_gui.core.tune.run_tune` on the open image with the panel's other
parameters.  The whole study (its SQLite storage, the trials, the figures)
runs in a spawned child process (:class:`smoe_gui.core.tune.child.StudyProcess`),
so the window's process imports neither Optuna nor matplotlib for it and shares
no interpreter lock with it: a timer of the GUI thread reads the child's small
messages without waiting.  Each finished trial fills a row of the table and a
point of the plot.  Clicking a row loads that trial's parameters and trained
model (from the study's folder) into the stage views.  Stop ends the running
trial within a training step and keeps every finished one (the study in its
folder resumes with ``smoe tune``); closing the window ends the child.  Qt
only: every number comes from the core.

:func:`install_tune_panel` is the one call the window makes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import one_line
from ..core.params import PARAM_SPECS, spec
from ..core.tune.child import StudyProcess
from ..core.tune.space import DEFAULT_GRID_STEPS, GRID_SAMPLER, default_range, parse_range
from ..core.tune.study import SAMPLERS, TuneConfig, check_config

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["TUNABLE", "TunePanel", "install_tune_panel"]

#: Parameters the panel offers: the numeric rows of the table.
TUNABLE: tuple[str, ...] = tuple(s.name for s in PARAM_SPECS if s.kind in (int, float))
_NONE = "(none)"
#: How much lower the study's child process runs (POSIX nice) than the window.
WORKER_NICE = 10
#: Milliseconds between two reads of the study's messages (a non-blocking poll).
POLL_MS = 50
#: Seconds a stage request holds the study's running fit at most (the hold ends
#: when the stages are drawn; a slider being dragged renews it).
HOLD_S = 2.0
#: Seconds a closing window waits for the study's child to end before terminating it.
CLOSE_WAIT_S = 5.0


def worker_settings() -> tuple[int, int]:
    """``(threads, nice)`` of the study's child process: every core but one, at a lower
    priority, so that the stage views keep following the sliders while a sweep runs."""
    return max(1, (os.cpu_count() or 1) - 1), WORKER_NICE

HELP = ("Tune on the trained model: each trial initialises, trains for the budget and "
        "measures PSNR and SSIM. Grid: every point of one or two parameters; tpe: Optuna's "
        "search. Click a trial to load its parameters and model.")


class _Bridge(QObject):
    """The study's messages as signals of the GUI thread (emitted by the panel's poll)."""

    trial_finished = Signal(dict)
    note = Signal(str)
    ended = Signal(object, str)  # summary or None, error text


class _RangeRow(QWidget):
    """A parameter choice with its low and high bounds."""

    def __init__(self, optional: bool) -> None:
        super().__init__()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        if optional:
            self.combo.addItem(_NONE)
        for name in TUNABLE:
            self.combo.addItem(name)
        self.low = QDoubleSpinBox()
        self.high = QDoubleSpinBox()
        for box, tip in ((self.low, "low end of the range"), (self.high, "high end of the range")):
            box.setDecimals(4)
            box.setToolTip(f"The {tip} (within the parameter table's range).")
            layout.addWidget(box)
        layout.insertWidget(0, self.combo, 1)
        self.combo.currentTextChanged.connect(self._on_name)
        self.combo.setToolTip("The tuned parameter (numeric rows of the parameter table).")
        self.combo.setCurrentText("delta_mu" if not optional else _NONE)
        self._on_name(self.combo.currentText())

    def _on_name(self, name: str) -> None:
        on = name != _NONE
        self.low.setEnabled(on)
        self.high.setEnabled(on)
        if not on:
            return
        row, default = spec(name), default_range(name)
        for box in (self.low, self.high):
            box.setRange(row.low, row.high)
        self.low.setValue(default.low)
        self.high.setValue(default.high)
        self.combo.setToolTip(row.tooltip())

    def name(self) -> str | None:
        text = self.combo.currentText()
        return None if text == _NONE else text

    def text(self, steps: int) -> str:
        """``NAME=LOW:HIGH:STEPS`` for the core's parser."""
        return f"{self.name()}={self.low.value():g}:{self.high.value():g}:{steps}"


class TunePanel(QWidget):
    """The panel's widgets and its one running study."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__()
        self.setObjectName("tune-panel")
        self.main = window
        #: Folder under which each study gets its own folder (tests point it elsewhere).
        self.out_root = Path(QStandardPaths.writableLocation(
            QStandardPaths.StandardLocation.AppDataLocation)) / "tune"
        self.out_dir: Path | None = None
        self.rows: list[dict[str, Any]] = []
        #: The running study's child process (None before the first Start).
        self.process: StudyProcess | None = None
        self._ended: list[StudyProcess] = []  # earlier studies, their children ending
        self._stopping = False
        self._total = 0
        #: The running fit's last ``progress`` message (trial, phase, elapsed_s, ...).
        self.progress: dict[str, Any] | None = None
        self._names: list[str] = []
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self.poll)
        self.bridge = _Bridge()
        self.bridge.trial_finished.connect(self._on_trial)
        self.bridge.note.connect(self._on_note)
        self.bridge.ended.connect(self._on_ended)

        layout = QVBoxLayout(self)
        intro = QLabel(HELP)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.first, self.second = _RangeRow(False), _RangeRow(True)
        form.addRow("parameter 1", self.first)
        form.addRow("parameter 2", self.second)
        self.sampler = QComboBox()
        self.sampler.addItems(list(SAMPLERS))
        self.sampler.setToolTip("grid: every point of the ranges (steps per parameter); "
                                "tpe: Optuna's TPE search over the trials, hopeless trials pruned.")
        form.addRow("sampler", self.sampler)
        self.steps = QSpinBox()
        self.steps.setRange(2, 20)
        self.steps.setValue(DEFAULT_GRID_STEPS)
        self.steps.setToolTip("Grid points per parameter (grid sampler).")
        form.addRow("grid steps", self.steps)
        self.trials = QSpinBox()
        self.trials.setRange(1, 400)
        self.trials.setValue(8)
        self.trials.setToolTip("Trials of a tpe search (a grid runs all its points).")
        form.addRow("trials", self.trials)
        self.budget = QDoubleSpinBox()
        self.budget.setRange(0.5, 600.0)
        self.budget.setValue(10.0)
        self.budget.setSuffix(" s")
        self.budget.setToolTip("Training seconds of every trial's fit (time_budget).")
        form.addRow("budget per fit", self.budget)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start tuning")
        self.start_button.setObjectName("tune-start")
        self.start_button.setToolTip("Run the study on the open image with the panel's other "
                                     "parameters; it runs in a process of its own.")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("tune-stop")
        self.stop_button.setToolTip("Stop the running trial; the finished ones are kept.")
        self.stop_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        layout.addLayout(buttons)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        import pyqtgraph as pg

        self.plot = pg.PlotWidget()
        self.plot.setObjectName("tune-plot")
        self.plot.setMinimumHeight(140)
        self.plot.setLabel("left", "PSNR (dB)")
        self.points = pg.ScatterPlotItem(size=8)
        self.plot.addItem(self.points)
        layout.addWidget(self.plot, 1)
        self.table = QTableWidget(0, 0)
        self.table.setObjectName("tune-table")
        self.table.setToolTip("Click a trial to load its parameters and trained model.")
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.cellClicked.connect(lambda row, _col: self.load_trial(row))
        layout.addWidget(self.table, 1)

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        """Whether a study runs (its last message has not arrived yet)."""
        return self.process is not None and self.process.running

    def config(self) -> TuneConfig:
        """The study the panel's settings describe (raises ValueError on bad input)."""
        path = self.main.image_path
        if path is None:
            raise ValueError("open an image file first (the trials fit the file)")
        texts = [self.first.text(self.steps.value())]
        if self.second.name() is not None:
            texts.append(self.second.text(self.steps.value()))
        ranges = [parse_range(t) for t in texts]
        params = self.main.panel.params()
        config = TuneConfig(
            images=[path], ranges=ranges, method=self.main.panel.method(),
            kernels=params.n_kernels, time_budget=self.budget.value(),
            trials=None if self.sampler.currentText() == GRID_SAMPLER else self.trials.value(),
            sampler=self.sampler.currentText(), params=params, workers=1,
            threads=worker_settings()[0], nice=worker_settings()[1],
        )
        check_config(config)
        return config

    def start(self) -> bool:
        """Start a study (a dialog for bad input); True when it started."""
        if self.running:
            return False
        try:
            config = self.config()
            out = self.study_dir(config)
            process = StudyProcess(config, out)
        except ValueError as exc:
            self.main.messenger.error("Cannot tune", one_line(exc))
            return False
        self.out_dir = out
        self._names = [r.name for r in config.ranges]
        self.rows = []
        self.table.setRowCount(0)
        self.table.setColumnCount(len(self._names) + 5)
        self.table.setHorizontalHeaderLabels(
            ["trial", *self._names, "PSNR", "SSIM", "kernels", "s"])
        self.points.clear()
        self.plot.setLabel("bottom", self._names[0])
        self.plot.setLabel("left", "PSNR (dB)" if len(self._names) == 1 else self._names[1])
        if self.process is not None:
            self._ended.append(self.process)
        self.process, self._stopping, self._total, self.progress = process, False, 0, None
        process.start()
        self._poll.start()
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.status.setText(f"tuning {', '.join(self._names)}: starting; the study is in {out}")
        return True

    def study_dir(self, config: TuneConfig) -> Path:
        """The new study's folder: ``out_root/<image>-<parameters>-<time>``."""
        stem = Path(config.images[0]).stem
        names = "-".join(r.name for r in config.ranges)
        return self.out_root / f"{stem}-{names}-{time.strftime('%Y%m%d-%H%M%S')}"

    def stop(self) -> None:
        """Stop the study; finished trials are kept."""
        if self.running and self.process is not None:
            self.process.stop()
            self._stopping = True
            self.status.setText("stopping; the finished trials are kept")

    def shutdown(self, timeout_s: float = CLOSE_WAIT_S) -> None:
        """Stop the study and end its child process, waiting up to ``timeout_s``
        seconds before terminating it (the window is closing)."""
        self._poll.stop()
        for process in [*self._ended, *([self.process] if self.process else [])]:
            process.close(timeout_s)
        self._ended.clear()

    def window_busy(self, busy: bool) -> None:
        """The window started (True) or finished (False) computing and drawing
        the stages: hold the study's running fit meanwhile, so that a slider
        keeps its speed with both cores (the time held is not counted in the
        trial's budget; :meth:`StudyProcess.hold`)."""
        if not self.running or self.process is None:
            return
        if busy:
            self.process.hold(HOLD_S)
        else:
            self.process.release()

    # ------------------------------------------------------------------ results
    def poll(self) -> None:
        """Read the study's messages that arrived (the timer calls it; never waits)."""
        if self.process is None:
            return
        for kind, payload in self.process.poll():
            if kind == "trial":
                self.bridge.trial_finished.emit(payload)
            elif kind == "note":
                self.bridge.note.emit(payload)
            elif kind == "start":
                self._total = int(payload["total"])
            elif kind == "progress" and not self._stopping:
                self._on_progress(payload)
            elif kind == "done":
                self.bridge.ended.emit(payload, "")
            elif kind == "error":
                self.bridge.ended.emit(None, str(payload))
        if not self.running:
            self._poll.stop()

    def _on_progress(self, progress: dict[str, Any]) -> None:
        self.progress = progress
        psnr = progress.get("psnr_db")
        tail = "" if psnr is None else f", PSNR {psnr:.2f} dB"
        self.status.setText(
            f"tuning {', '.join(self._names)}: {len(self.rows)} of {self._total} trials "
            f"finished; trial {progress['trial']}: {progress['elapsed_s']:.0f} of "
            f"{progress['budget_s']:g} s trained{tail}; the study is in {self.out_dir}")

    def _on_note(self, text: str) -> None:
        self.status.setText(text)

    def _on_trial(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        r = self.table.rowCount()
        self.table.insertRow(r)
        cells = [row["trial"], *(row.get(n) for n in self._names), row.get("psnr_db"),
                 row.get("ssim"), row.get("n_kernels"), row.get("seconds")]
        for c, value in enumerate(cells):
            text = "" if value is None else (
                f"{value:.4g}" if isinstance(value, float) else str(value))
            if c == 0 and row["state"] != "complete":
                text = f"{value} ({row['state']})"
            self.table.setItem(r, c, QTableWidgetItem(text))
        self._redraw()

    def _redraw(self) -> None:
        import pyqtgraph as pg

        done = [r for r in self.rows if r["state"] == "complete" and r.get("psnr_db") is not None]
        if not done:
            return
        xs = [float(r[self._names[0]]) for r in done]
        if len(self._names) == 1:
            self.points.setData(xs, [float(r["psnr_db"]) for r in done])
            return
        psnr = [float(r["psnr_db"]) for r in done]
        low, high = min(psnr), max(psnr)
        cmap = pg.colormap.get("viridis")
        brushes = [pg.mkBrush(cmap.map((p - low) / (high - low) if high > low else 1.0))
                   for p in psnr]
        self.points.setData(xs, [float(r[self._names[1]]) for r in done], brush=brushes)

    def _on_ended(self, summary: Any, error: str) -> None:
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        if error:
            self.status.setText("")
            self.main.messenger.error("Tuning failed", error)
            return
        best = summary.best if summary is not None else None
        state = "stopped" if summary is not None and summary.interrupted else "done"
        tail = "no trial finished" if best is None else (
            f"best: trial {best['trial']}, PSNR {best['psnr_db']:.2f} dB")
        self.status.setText(f"tuning {state}: {tail}; the study is in {self.out_dir}")

    def load_trial(self, index: int) -> bool:
        """Load trial ``index`` of the table (its parameters and trained model)."""
        if not (0 <= index < len(self.rows)) or self.out_dir is None:
            return False
        row = self.rows[index]
        model = row.get("model")  # the child's path of the trial's model file
        path = Path(model) if model else (
            self.out_dir / "models" / f"trial-{int(row['trial']):04d}.npz")
        if not path.exists():
            self.main.messenger.warning(
                "No model for this trial", f"trial {row['trial']} is {row['state']}: no model")
            return False
        return bool(self.main.files.load_model_file(path))


class _CloseWatcher(QObject):
    """Stops the study and ends its child process when the window closes."""

    def __init__(self, panel: TunePanel) -> None:
        super().__init__(panel)
        self.panel = panel

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.Close:
            self.panel.shutdown()
        return False


def install_tune_panel(window: MainWindow) -> TunePanel:
    """Add the Tune panel to ``window`` as a dock (hidden until asked for) and its
    toggle to the View menu (a Tune menu when there is none); returns the panel."""
    panel = TunePanel(window)
    dock = QDockWidget("Tune", window)
    dock.setObjectName("tune-dock")
    dock.setWidget(panel)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    dock.hide()
    toggle = dock.toggleViewAction()
    toggle.setText("Tune panel")
    toggle.setToolTip("Sweeps and searches over the parameters, judged on the trained model")
    menus = [m for a in window.menuBar().actions() if isinstance(m := a.menu(), QMenu)]
    view = next((m for m in menus if m.title().replace("&", "") == "View"), None)
    (view if view is not None else window.menuBar().addMenu("&Tune")).addAction(toggle)
    panel.dock = dock  # type: ignore[attr-defined]
    window.session.busy_listeners.append(panel.window_busy)
    window.installEventFilter(_CloseWatcher(panel))
    return panel
