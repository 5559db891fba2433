"""Colours taken from the application palette, so dark mode works.

The stage colours are fixed hues whose lightness follows the palette: brighter
on a dark window, deeper on a light one.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from ..core.palette import hsl

__all__ = ["COLOR_SCHEMES", "Theme", "apply_color_scheme", "current_theme"]

#: Colour schemes the window offers: the desktop's, or a light or dark palette.
COLOR_SCHEMES = ("system", "light", "dark")

# Hue (degrees) of each thing drawn and the saturation/lightness rule live in the core
# (smoe_gui.core.palette, which reads the methods' kernel kinds and curve hues from
# the registry), so that the command line's PNGs and videos use the same colours.


class Theme:
    """Colours for one palette.

    Attributes
    ----------
    dark : bool
        Whether the window background is dark.
    background, foreground, grid : QColor
        Plot background, text/axis colour, faint grid colour.
    """

    def __init__(self, palette: QPalette) -> None:
        self.background = palette.color(QPalette.ColorRole.Base)
        self.foreground = palette.color(QPalette.ColorRole.Text)
        window = palette.color(QPalette.ColorRole.Window)
        self.dark = window.lightness() < 128
        self.grid = QColor(self.foreground)
        self.grid.setAlpha(60)

    def color(self, key: str, alpha: int = 255) -> QColor:
        """The colour of ``key`` (one of the drawn things) for this palette."""
        c = QColor.fromHsl(*hsl(key, self.dark))  # e.g. the curve of a method added later too
        c.setAlpha(alpha)
        return c

    def hex(self, key: str) -> str:
        """``#rrggbb`` of :meth:`color` (for rich-text legends)."""
        return self.color(key).name()


def current_theme() -> Theme:
    """The theme of the running application's palette."""
    app = QApplication.instance()
    palette = app.palette() if isinstance(app, QApplication) else QPalette()
    return Theme(palette)


#: The desktop's style name and palette, kept at the first change.
_system: tuple[str, QPalette] | None = None


def _palette(dark: bool) -> QPalette:
    p = QPalette()
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    if dark:
        colors = {
            role.Window: "#2b2b2b",
            role.WindowText: "#e6e6e6",
            role.Base: "#1e1e1e",
            role.AlternateBase: "#2b2b2b",
            role.Text: "#e6e6e6",
            role.Button: "#353535",
            role.ButtonText: "#e6e6e6",
            role.Highlight: "#3d7fd9",
            role.HighlightedText: "#ffffff",
            role.ToolTipBase: "#1e1e1e",
            role.ToolTipText: "#e6e6e6",
            role.PlaceholderText: "#8c8c8c",
            role.Link: "#7fb2ff",
            role.Light: "#505050",
            role.Midlight: "#404040",
            role.Mid: "#303030",
            role.Dark: "#1a1a1a",
            role.Shadow: "#000000",
            role.BrightText: "#ff6060",
        }
        disabled = "#7a7a7a"
    else:
        colors = {
            role.Window: "#efefef",
            role.WindowText: "#1a1a1a",
            role.Base: "#ffffff",
            role.AlternateBase: "#f5f5f5",
            role.Text: "#1a1a1a",
            role.Button: "#e6e6e6",
            role.ButtonText: "#1a1a1a",
            role.Highlight: "#2f6fd0",
            role.HighlightedText: "#ffffff",
            role.ToolTipBase: "#ffffdc",
            role.ToolTipText: "#1a1a1a",
            role.PlaceholderText: "#7a7a7a",
            role.Link: "#1a5fb4",
            role.Light: "#ffffff",
            role.Midlight: "#f0f0f0",
            role.Mid: "#b8b8b8",
            role.Dark: "#9f9f9f",
            role.Shadow: "#767676",
            role.BrightText: "#ff0000",
        }
        disabled = "#9a9a9a"
    for r, c in colors.items():
        p.setColor(r, QColor(c))
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(group.Disabled, r, QColor(disabled))
    return p


def apply_color_scheme(scheme: str) -> None:
    """Give the running application the ``"light"`` or ``"dark"`` palette
    (Fusion style, the same on every platform), or the desktop's
    (``"system"``).  Windows redraw their views on the palette change.

    Raises
    ------
    ValueError
        For a scheme not in :data:`COLOR_SCHEMES`.
    """
    if scheme not in COLOR_SCHEMES:
        raise ValueError(f"colour scheme must be one of {', '.join(COLOR_SCHEMES)}, got {scheme!r}")
    global _system
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return
    if _system is None:
        _system = (app.style().name(), QPalette(app.palette()))
    if scheme == "system":
        app.setStyle(_system[0])
        app.setPalette(_system[1])
        return
    app.setStyle("Fusion")
    app.setPalette(_palette(scheme == "dark"))
