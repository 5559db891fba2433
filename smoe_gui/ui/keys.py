"""Training shortcuts that work wherever the focus is, without stealing keys
from a field being typed in.

A spin box, a combo box or a button with the focus would otherwise keep Space
and Esc to itself (Qt asks the focus widget first, with a ``ShortcutOverride``
event).  :class:`TrainingKeys` answers that question for the window: while a
field holds text that is not yet its value, the keys go to the field (Esc then
puts the field back to the value the app holds); otherwise the window's
shortcut fires.

The view keys are window shortcuts of :mod:`smoe_gui.ui.actions` (listed in
the Guide): 1-6 focus a stage cell (a field being typed in keeps its digits:
a line edit claims printable keys), Esc goes back to the grid while a cell is
focused (the Stop action gives up the key meanwhile, :mod:`smoe_gui.ui.focus`),
Ctrl+\\ folds the parameter panel, F8 the presentation layout, F9 the lecture,
Page Down / Page Up (N / B) its steps.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QDoubleSpinBox, QLineEdit, QSpinBox, QWidget

__all__ = ["TrainingKeys", "is_typing"]


def _spin_box(widget: QWidget | None) -> QSpinBox | QDoubleSpinBox | None:
    if isinstance(widget, QLineEdit) and isinstance(widget.parent(), (QSpinBox, QDoubleSpinBox)):
        return widget.parent()  # type: ignore[return-value]
    return widget if isinstance(widget, (QSpinBox, QDoubleSpinBox)) else None


def is_typing(widget: QWidget | None) -> bool:
    """Whether ``widget`` holds typed text that is not yet its value."""
    spin = _spin_box(widget)
    if spin is not None:
        return bool(spin.cleanText() != spin.textFromValue(spin.value()))  # type: ignore[arg-type]
    if isinstance(widget, QLineEdit):
        return not widget.isReadOnly() and widget.isModified()
    return False


def revert_typing(widget: QWidget | None) -> None:
    """Put a spin box's text back to the value it holds (what Esc does there)."""
    spin = _spin_box(widget)
    if spin is not None:
        spin.lineEdit().setText(spin.textFromValue(spin.value()))  # type: ignore[arg-type]
        spin.lineEdit().selectAll()


class TrainingKeys(QObject):
    """Application event filter giving ``keys`` to ``window`` (see the module).

    Parameters
    ----------
    window : QWidget
        Only key events for widgets inside it are looked at.
    keys : list of QKeySequence
        The training shortcuts (single keys, e.g. Space and Esc).
    """

    def __init__(self, window: QWidget, keys: list[QKeySequence]) -> None:
        super().__init__(window)
        self.window = window
        self.keys = [k for k in keys if k.count() == 1]

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        kind = event.type()
        if kind not in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) or not isinstance(
            event, QKeyEvent
        ):
            return False
        if QKeySequence(event.keyCombination()) not in self.keys:
            return False
        focus = QApplication.focusWidget()
        if focus is None or focus.window() is not self.window or obj is not focus:
            return False
        typing = is_typing(focus)
        if kind == QEvent.Type.KeyPress:
            if typing and event.key() == Qt.Key.Key_Escape:
                revert_typing(focus)  # Esc in a field being typed in: back to the app's value
                return True
            return False
        if typing:
            event.accept()  # the field keeps the key
            return True
        event.ignore()  # not the field's: the window's shortcut fires
        return True
