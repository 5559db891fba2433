"""All user-facing messages and questions go through a :class:`Messenger`.

Tests replace the window's messenger with a :class:`RecordingMessenger` to see
what the user would have been told, and to answer questions.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from PySide6.QtWidgets import QMessageBox, QWidget

__all__ = ["Messenger", "RecordingMessenger", "StderrMessenger"]


class Messenger:
    """Message boxes parented to ``parent``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self.parent = parent

    def error(self, title: str, text: str) -> None:
        """An error the user must read (e.g. a file that cannot be opened)."""
        QMessageBox.critical(self.parent, title, text)

    def warning(self, title: str, text: str) -> None:
        """Something did not go as asked but nothing is lost."""
        QMessageBox.warning(self.parent, title, text)

    def info(self, title: str, text: str) -> None:
        """Plain information."""
        QMessageBox.information(self.parent, title, text)

    def ask(self, title: str, text: str) -> bool:
        """A yes/no question; True for yes."""
        answer = QMessageBox.question(
            self.parent,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes,
        )
        return answer == QMessageBox.StandardButton.Yes


@dataclass
class RecordingMessenger(Messenger):
    """Records messages instead of showing them; answers questions with ``answer``.

    Attributes
    ----------
    messages : list of (level, title, text)
    answer : bool
        What :meth:`ask` returns.
    """

    answer: bool = True
    messages: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.parent = None

    def error(self, title: str, text: str) -> None:
        self.messages.append(("error", title, text))

    def warning(self, title: str, text: str) -> None:
        self.messages.append(("warning", title, text))

    def info(self, title: str, text: str) -> None:
        self.messages.append(("info", title, text))

    def ask(self, title: str, text: str) -> bool:
        self.messages.append(("ask", title, text))
        return self.answer

    def levels(self) -> list[str]:
        """Levels of the recorded messages, in order."""
        return [m[0] for m in self.messages]

    def texts(self) -> str:
        """All recorded texts joined (for ``in`` checks)."""
        return "\n".join(f"{t}: {x}" for _, t, x in self.messages)


class StderrMessenger(Messenger):
    """No box at all (``smoe-gui --screenshot``: no one is there to close one):
    errors and warnings go to stderr as one line each (``smoe-gui: error:
    ...``) and set :attr:`failed`; information goes to stderr too; a
    question gets the default answer, yes (e.g. downscale an image larger
    than 4096 px, as the CLI's ``--max-size`` does), and says so.

    Attributes
    ----------
    failed : bool
        Whether an error or a warning was given (the command exits 2).
    """

    def __init__(self) -> None:
        super().__init__(None)
        self.failed = False

    @staticmethod
    def _line(kind: str, title: str, text: str) -> None:
        body = " ".join(str(text).split())
        print(f"smoe-gui: {kind}: {title}: {body}", file=sys.stderr)

    def error(self, title: str, text: str) -> None:
        self.failed = True
        self._line("error", title, text)

    def warning(self, title: str, text: str) -> None:
        self.failed = True
        self._line("error", title, text)

    def info(self, title: str, text: str) -> None:
        self._line("note", title, text)

    def ask(self, title: str, text: str) -> bool:
        self._line("note", title, f"{text} (answered yes)")
        return True
