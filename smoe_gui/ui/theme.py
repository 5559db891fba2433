"""Colours taken from the application palette, so dark mode works.

The stage colours are fixed hues whose lightness follows the palette: brighter
on a dark window, deeper on a light one.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

__all__ = ["Theme", "current_theme"]

# Hue (degrees) of each thing drawn; saturation/lightness come from the palette.
_HUES: dict[str, int] = {
    "dir0": 0,  # θ = 0°: red
    "dir90": 210,  # θ = 90°: blue
    "dir45": 120,  # θ = 45°: green
    "dir-45": 45,  # θ = -45°: amber
    "cluster": 190,  # reduced, clustered: cyan
    "salient": 320,  # reduced, salient: magenta
    "pair": 25,  # pair kernels: orange
    "background": 260,  # background kernels: violet
    "grid": 160,  # grid kernels: teal
    "trained": 55,  # trained / loaded kernels: yellow
    "link": 25,  # pair link
    "edge": 95,  # edge pixels over an image: lime
    "curve-train": 210,
    "curve-edge": 25,
    "curve-grid": 160,
    "highlight": 0,
}


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
        hue = _HUES.get(key, sum(map(ord, key)) * 47 % 360)  # e.g. the curve of a method added later
        lightness = 170 if self.dark else 110
        saturation = 230 if self.dark else 240
        if hue in (45, 55, 95, 120, 160, 190) and not self.dark:
            lightness = 85  # yellows and greens need to be deeper on white
        c = QColor.fromHsl(hue, saturation, lightness)
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
