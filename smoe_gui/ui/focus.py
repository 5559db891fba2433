"""One stage view large, and the parameter panel folded to a strip.

:class:`StageFocus` rearranges the six cells of the stage grid (the five stage
views and the expert-initialisation plot): *focus* gives one cell the whole
stage area (double-click on it, keys 1-6; Esc or a double-click goes back),
with its title and the legend of its view only; *arrange* puts cells where a
:class:`~smoe_gui.ui.control.presentation.Placement` says (the presentation
layout of the lecture).  The other cells are hidden, not destroyed, so their
items, zoom and data are kept.  A cell's own controls (view 4's mode row)
show with it and hide with it.  While a cell is focused the rows around the
stage grid fold (:func:`apply_rows`): the training controls and plots hide,
the kernel panel shows only while a kernel is inspected; Esc gives them back.

:class:`PanelStrip` folds the parameter panel to a narrow strip with one
button, and unfolds it to the width it had (Ctrl+\\ or the strip's button).
Both remember their state in the window's ``QSettings`` (``focused_view``,
``panel_collapsed``, ``panel_width``).

The rules (which cells, how wide) are Qt-free in
:mod:`smoe_gui.ui.control.presentation`; this module only moves widgets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .control.presentation import CELLS, Placement

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["CELLS", "PanelStrip", "StageFocus", "apply_rows", "install_focus", "make_focus"]

#: Settings keys.
FOCUS_KEY = "focused_view"
PANEL_KEY = "panel_collapsed"
PANEL_WIDTH_KEY = "panel_width"


def _int_setting(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


class StageFocus(QObject):
    """Which cells of the stage grid are shown, and where.

    Parameters
    ----------
    grid : QGridLayout
        The stage grid (:attr:`StageViews.grid`), the cells already placed.
    cells : dict name -> pg.PlotWidget
        The six cells in the order of :data:`CELLS` (keys 1-6).
    settings : QSettings
        Where the focused cell is remembered (``focused_view``).
    link : callable(bool)
        Links (True) or unlinks (False) the stage views' zoom: cells of
        different sizes side by side are fitted each on its own.
    owned : dict name -> tuple of QWidget, optional
        Controls that belong to a cell (view 4's mode row): shown exactly
        when their cell is.

    Signals
    -------
    changed(str)
        The focused cell's name, ``""`` for the grid.
    """

    changed = Signal(str)

    def __init__(
        self,
        grid: QGridLayout,
        cells: dict[str, pg.PlotWidget],
        settings: QSettings,
        link: Callable[[bool], None],
        owned: dict[str, tuple[QWidget, ...]] | None = None,
    ) -> None:
        super().__init__(grid)
        if tuple(cells) != CELLS:
            raise ValueError(f"stage cells must be {CELLS}, got {tuple(cells)}")
        self.grid = grid
        self.cells = cells
        self.settings = settings
        self._link = link
        unknown = set(owned or {}) - set(cells)
        if unknown:
            raise ValueError(f"controls of unknown stage cells {sorted(unknown)}")
        self.owned: dict[str, tuple[QWidget, ...]] = dict(owned or {})
        self.home: dict[str, tuple[int, int, int, int]] = {}
        for name, widget in cells.items():
            where: tuple[int, int, int, int] = tuple(  # type: ignore[assignment]
                int(v) for v in grid.getItemPosition(grid.indexOf(widget))  # type: ignore[attr-defined]
            )
            self.home[name] = where
        self.focused = ""
        self.placement: Placement | None = None
        self._place(Placement.grid())  # equal columns and rows
        self._viewports = {widget.viewport(): name for name, widget in cells.items()}
        for viewport in self._viewports:
            viewport.installEventFilter(self)  # a double-click toggles the focus

    # -- focus ------------------------------------------------------------------
    def focus(self, name: str) -> None:
        """Give cell ``name`` (one of :data:`CELLS`) the whole stage area;
        ``""`` puts the grid back.  Remembered in the settings.

        Raises
        ------
        ValueError
            For an unknown cell.
        """
        if name and name not in self.cells:
            raise ValueError(f"unknown stage cell {name!r}; expected one of {CELLS}")
        self.focused = name
        self.settings.setValue(FOCUS_KEY, name)
        if self.placement is None:
            self._place(Placement.focus(name) if name else Placement.grid())
        self.changed.emit(name)

    def toggle(self, name: str) -> None:
        """Focus cell ``name``, or go back to the grid if it is focused (keys 1-6)."""
        self.focus("" if self.focused == name else name)

    def cell_for_key(self, key: str) -> str:
        """The cell of key ``"1"`` … ``"6"``."""
        return CELLS[int(key) - 1]

    def toggle_key(self, key: str) -> None:
        """Keys 1-6: :meth:`toggle` the cell of that number."""
        self.toggle(self.cell_for_key(key))

    def back(self) -> None:
        """Esc: every cell in its place again."""
        self.focus("")

    def restore(self) -> None:
        """Focus the cell remembered in the settings (at start-up)."""
        name = str(self.settings.value(FOCUS_KEY, "") or "")
        if name in self.cells:
            self.focus(name)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if (
            event.type() == QEvent.Type.MouseButtonDblClick
            and isinstance(event, QMouseEvent)
            and event.button() == Qt.MouseButton.LeftButton
            and self.placement is None
        ):
            name = self._viewports.get(obj)  # type: ignore[call-overload]
            if name is not None:
                self.toggle(name)
                return True
        return False

    # -- arrangements -------------------------------------------------------------
    def arrange(self, placement: Placement | None) -> None:
        """Put the cells where ``placement`` says (the presentation layout);
        None goes back to the focused cell or the grid."""
        self.placement = placement
        if placement is None:
            self._place(Placement.focus(self.focused) if self.focused else Placement.grid())
        else:
            self._place(placement)

    def _place(self, placement: Placement) -> None:
        grid = self.grid
        for widget in self.cells.values():
            grid.removeWidget(widget)
        for name, widget in self.cells.items():
            where = placement.cells.get(name)
            if where is None and placement.is_grid:
                where = self.home[name]
            if where is None:
                widget.setVisible(False)
                continue
            grid.addWidget(widget, *where)
            widget.setVisible(True)
        for name, controls in self.owned.items():  # a view's controls go with it
            for control in controls:
                control.setVisible(not self.cells[name].isHidden())
        for col in range(3):
            grid.setColumnStretch(col, placement.column_stretch[col])
        for row in range(2):
            grid.setRowStretch(row, 1)
        self._link(placement.linked)

    def shown(self) -> tuple[str, ...]:
        """The cells shown now, in key order."""
        return tuple(n for n, w in self.cells.items() if not w.isHidden())

    @property
    def alone(self) -> bool:
        """Whether one cell is focused by the user (not the presentation layout)."""
        return self.focused != "" and self.placement is None

    def primary(self) -> str:
        """The cell to fit the zoom through: the presentation's main cell, the
        focused cell, or ``""`` for the grid."""
        if self.placement is not None and self.placement.main:
            return self.placement.main
        return self.focused


class PanelStrip(QObject):
    """Folds the parameter panel to a strip with one button, and back.

    Parameters
    ----------
    splitter : QSplitter
        The window's main splitter; the panel box is its first widget.
    box : QWidget
        The panel box: the panel's scroll area and the strip side by side.
    content : QWidget
        The panel's scroll area (hidden when folded).
    button : QToolButton
        The strip's button.
    settings : QSettings

    Signals
    -------
    toggled(bool)
        True when folded.
    """

    toggled = Signal(bool)

    def __init__(
        self,
        splitter: QSplitter,
        box: QWidget,
        content: QWidget,
        button: QToolButton,
        settings: QSettings,
    ) -> None:
        super().__init__(box)
        self.splitter = splitter
        self.box = box
        self.content = content
        self.button = button
        self.settings = settings
        self.collapsed = False
        self._width = 0
        self._held = False  # folded by the presentation, not by the user
        button.clicked.connect(self.toggle)
        self._show_button()

    @staticmethod
    def make_box(content: QWidget) -> tuple[QWidget, QToolButton]:
        """The panel box (``content`` and a strip with one button beside it)."""
        box = QWidget()
        box.setObjectName("param-box")
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(content, 1)
        strip = QWidget()
        strip.setObjectName("param-strip")
        column = QVBoxLayout(strip)
        column.setContentsMargins(1, 2, 1, 2)
        button = QToolButton()
        button.setObjectName("param-strip-button")
        button.setAutoRaise(True)
        button.setFixedWidth(16)
        column.addWidget(button)
        column.addStretch(1)
        row.addWidget(strip)
        return box, button

    def _show_button(self) -> None:
        self.button.setArrowType(
            Qt.ArrowType.RightArrow if self.collapsed else Qt.ArrowType.LeftArrow
        )
        self.button.setToolTip(
            "Show the parameter panel (Ctrl+\\)"
            if self.collapsed
            else "Fold the parameter panel to this strip (Ctrl+\\)"
        )

    def set_collapsed(self, collapsed: bool, remember: bool = True) -> None:
        """Fold (True) or unfold the panel; ``remember`` writes the setting
        (the presentation layout folds it without changing the user's choice)."""
        collapsed = bool(collapsed)
        if remember:
            self.settings.setValue(PANEL_KEY, collapsed)
        if collapsed == self.collapsed:
            return
        sizes = self.splitter.sizes()
        total = max(1, sum(sizes))
        if collapsed:
            self._width = sizes[0] if sizes and sizes[0] > 40 else self._width
            if self._width:
                self.settings.setValue(PANEL_WIDTH_KEY, self._width)
            self.content.setVisible(False)
            strip = self.box.minimumSizeHint().width()
            self.box.setMaximumWidth(strip)
            self.splitter.setSizes([strip, total - strip])
        else:
            self.content.setVisible(True)
            self.box.setMaximumWidth(16_777_215)
            width = self._width or _int_setting(self.settings.value(PANEL_WIDTH_KEY, 0))
            width = width if width > 40 else self.content.sizeHint().width()
            self.splitter.setSizes([width, max(1, total - width)])
        self.collapsed = collapsed
        self._show_button()
        self.toggled.emit(collapsed)

    def toggle(self) -> None:
        """Ctrl+\\ and the strip's button."""
        self._held = False
        self.set_collapsed(not self.collapsed)

    def hold(self, folded: bool) -> None:
        """The presentation layout folds the panel (True) and gives it back
        (False) as the user had it."""
        if folded:
            if not self.collapsed:
                self._held = True
                self.set_collapsed(True, remember=False)
        else:
            if self._held:
                self.set_collapsed(False, remember=False)
            self._held = False

    def restore(self) -> None:
        """Fold the panel if it was folded when the window closed."""
        width = _int_setting(self.settings.value(PANEL_WIDTH_KEY, 0))
        if width > 40:
            self._width = width
        value = self.settings.value(PANEL_KEY, False)
        if str(value).lower() in ("true", "1"):
            self.set_collapsed(True)


def make_focus(window: MainWindow) -> tuple[StageFocus, PanelStrip]:
    """The window's :class:`StageFocus` (over its stage grid and expert plot)
    and :class:`PanelStrip` (over its parameter panel), before its menus are
    built (the menus call them)."""
    cells: dict[str, pg.PlotWidget] = {**window.stages.views, "expert": window.expert_plot}
    focus = StageFocus(
        window.stages.grid,
        cells,
        window.settings,
        window.stages.set_linked,
        owned={"kernels": (window.stages.kernel_controls,)},
    )
    strip = PanelStrip(
        window.main_splitter,
        window.param_box,
        window.param_scroll,
        window.param_strip_button,
        window.settings,
    )
    return focus, strip


def apply_rows(window: MainWindow) -> None:
    """Show the rows around the stage grid that the arrangement leaves room for.

    * The training controls and plots: hidden while a cell is focused alone
      (:attr:`StageFocus.alone`) and during a lecture step without training.
    * The kernel panel: only while a kernel is inspected when a cell is
      focused alone or in the presentation layout.
    * The legend: only the shown cells' parts when a cell is focused alone or
      in the presentation layout; everything in the grid.

    Called whenever the focus, the presentation layout or the lecture step
    changes, so each rule has one home.
    """
    focus = window.stage_focus
    step = window.lecture.current()
    presenting = window.presentation.shown
    alone = focus.alone and not presenting
    window.training_panel.setVisible(not alone and (step is None or step.training))
    window.kernel_panel.set_compact(alone or presenting)
    window.stages.set_legend_views(focus.shown() if alone or presenting else None)


def install_focus(window: MainWindow) -> None:
    """Keep the View menu's check marks with the focus and the panel, refit
    the views when the focus changes, and restore both from the settings."""
    panel_action = window.actions_by_id["panel"]
    window.panel_strip.toggled.connect(lambda folded: panel_action.setChecked(not folded))
    panel_action.setChecked(True)
    back, stop = window.actions_by_id["focus-back"], window.actions_by_id["stop"]
    stop_keys = stop.shortcuts()

    def focus_changed(_name: str) -> None:
        # Esc goes back to the grid while a cell is focused, else it stops the
        # training: one action holds the key at a time (two would be ambiguous)
        focused = window.stage_focus.focused != "" and window.stage_focus.placement is None
        back.setEnabled(focused)
        stop.setShortcuts([] if focused else stop_keys)
        apply_rows(window)
        QTimer.singleShot(0, window.fit_views)

    window.stage_focus.changed.connect(focus_changed)
    focus_changed("")
    window.panel_strip.restore()
    window.stage_focus.restore()
