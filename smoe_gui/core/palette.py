"""The colours of the drawn things, shared by the window and the command line.

Each drawn thing (a scan direction, a kind of kernel, an edge pixel, a
training curve, ...) has a fixed hue (:data:`HUES`); its saturation and
lightness follow the palette: brighter on a dark background, deeper on a
light one (:func:`hsl`).  The window's theme (``smoe_gui.ui.theme``) turns
:func:`hsl` into Qt colours; the ``smoe init`` stage PNGs take :func:`rgb` of
the light palette (:data:`LIGHT`), so both show the same colours.  Qt-free.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

__all__ = ["DARK", "HUES", "LIGHT", "BasePalette", "hsl", "kind_label", "method_hues", "rgb"]

RGB = tuple[int, int, int]

#: Hue (degrees) of each thing drawn; saturation/lightness come from the palette.
HUES: dict[str, int] = {
    "dir0": 0,  # θ = 0°: red
    "dir90": 210,  # θ = 90°: blue
    "dir45": 120,  # θ = 45°: green
    "dir-45": 45,  # θ = -45°: amber
    "cluster": 190,  # reduced, clustered: cyan
    "salient": 320,  # reduced, salient: magenta
    "trained": 55,  # trained / loaded kernels: yellow
    "link": 25,  # pair link
    "edge-pixel": 95,  # edge pixels over an image: lime
    "curve-train": 210,
    "superpixel": 350,  # superpixel boundaries (S-SMoE, AS-SMoE): red
    "highlight": 0,
}



def method_hues() -> dict[str, int]:
    """Hues of the registered methods' kernel kinds (by kind key) and of each
    method's training curve (``curve-<name>``), read from the registry
    (:class:`smoe_gui.core.registry.KernelKind`), so that a method added
    later brings its own colours."""
    from . import registry

    hues: dict[str, int] = {}
    for method in registry.all():
        for kind in getattr(method, "kernel_kinds", ()) or ():
            hues.setdefault(kind.key, int(kind.hue))
        hues[f"curve-{method.name}"] = int(getattr(method, "hue", 0))
    return hues


def kind_label(key: str) -> str:
    """What the kernel kind ``key`` is, for legends (its registered label;
    "trained / loaded" for ``"trained"``; the key itself when unknown)."""
    from . import registry

    if key == "trained":
        return "trained / loaded"
    for method in registry.all():
        for kind in getattr(method, "kernel_kinds", ()) or ():
            if kind.key == key:
                return str(kind.label)
    return key

#: Hues drawn deeper on a light background (yellows and greens).
_DEEP_ON_LIGHT = frozenset((45, 55, 95, 120, 160, 190))


def hsl(key: str, dark: bool) -> tuple[int, int, int]:
    """``(hue 0-359, saturation 0-255, lightness 0-255)`` of ``key`` (Qt's HSL
    ranges, as ``QColor.fromHsl`` takes them) on a dark or light background.

    A key not in :data:`HUES` takes its method's hue (:func:`method_hues`);
    any other key a hue derived from its name."""
    hue = HUES.get(key)
    if hue is None:
        hue = method_hues().get(key, sum(map(ord, key)) * 47 % 360)
    lightness = 170 if dark else 110
    saturation = 230 if dark else 240
    if hue in _DEEP_ON_LIGHT and not dark:
        lightness = 85
    return hue, saturation, lightness


def rgb(key: str, dark: bool = False) -> RGB:
    """``(r, g, b)`` 0-255 of ``key`` (:func:`hsl` converted as Qt does, within
    one unit of ``QColor.fromHsl(*hsl(key, dark))``)."""
    h, s, lum = hsl(key, dark)
    r, g, b = colorsys.hls_to_rgb(h / 360.0, lum / 255.0, s / 255.0)
    return round(r * 255), round(g * 255), round(b * 255)


@dataclass(frozen=True)
class BasePalette:
    """The plain colours of a built-in palette.

    Attributes
    ----------
    dark : bool
    background, foreground : (r, g, b) 0-255
        The views' background and the text and edge-pixel colour (Qt's
        ``Base`` and ``Text`` roles of the window's built-in palettes).
    dim_levels : (low, high)
        How an image is dimmed under the overlays: gray value ``v`` in [0, 1]
        is shown as ``(v - low) / (high - low)``, towards the background.
    """

    dark: bool
    background: RGB
    foreground: RGB
    dim_levels: tuple[float, float]

    def dim(self, value: float) -> float:
        """Gray value ``value`` dimmed towards the background (in [0, 1])."""
        low, high = self.dim_levels
        return min(1.0, max(0.0, (value - low) / (high - low)))


#: The window's light palette (its default on a light desktop; the stage PNGs).
LIGHT = BasePalette(False, (255, 255, 255), (26, 26, 26), (-1.6, 1.0))
#: The window's dark palette.
DARK = BasePalette(True, (30, 30, 30), (230, 230, 230), (-0.1, 2.4))
