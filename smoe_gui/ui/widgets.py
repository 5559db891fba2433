"""Small widgets that keep the window's size independent of its texts."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

__all__ = ["ElidedLabel", "StatusLine"]


class ElidedLabel(QLabel):
    """A one-line label that never asks for more width than it gets.

    The text is cut with "…" where it does not fit, and the full text is the
    tooltip, so a long training status or status message neither widens the
    window nor overlaps its neighbours.  :meth:`text` returns the full text.
    """

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(20)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt override)
        self._full = text
        self.setToolTip(text)
        self.update()

    def text(self) -> str:
        return self._full

    def elided_text(self) -> str:
        """The text as drawn at the current width."""
        width = self.contentsRect().width()
        return self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, max(0, width))

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        fm = self.fontMetrics()
        return QSize(
            min(fm.horizontalAdvance(self._full), 40 * fm.averageCharWidth()), fm.height() + 2
        )

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(20, self.fontMetrics().height() + 2)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(
            self.contentsRect(),
            int(self.alignment() | Qt.AlignmentFlag.AlignVCenter),
            self.elided_text(),
        )


class StatusLine(ElidedLabel):
    """The status bar's message line: elided, cleared after a timeout."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.setObjectName("status-message")
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(lambda: self.setText(""))

    def show_message(self, text: str, timeout_ms: int = 0) -> None:
        """Show ``text``; clear it after ``timeout_ms`` (0: keep it)."""
        self.setText(text)
        self._timer.stop()
        if timeout_ms > 0:
            self._timer.start(timeout_ms)
