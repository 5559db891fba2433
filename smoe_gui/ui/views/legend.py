"""The stage views' legend: what each colour means, as rich text.

Each method names the entries its results use (its ``legend``,
:class:`smoe_gui.core.registry.Method`; keys of :data:`ENTRIES`) and the kinds
of its kernels (``kernel_kinds``): the legend of a result lists those only.
"""

from __future__ import annotations

from ...core import registry
from ..control.geometry import (
    INITIAL_CATEGORIES,
    KERNEL_CATEGORIES,
    KERNEL_CATEGORY_LABELS,
    SHARE_LEVELS,
    TRAINED,
)
from ..theme import Theme

__all__ = ["ENTRIES", "legend_html"]

#: Legend entries a method may use: the segment directions (view 2), the
#: superpixel boundaries (view 2), the clusters and salient segments (view 3),
#: the pair links (view 4, centres) and the edge pixels (view 1 over an image).
ENTRIES = ("directions", "superpixels", "clusters", "pair-links", "edge-pixels")


def legend_html(
    t: Theme,
    kernel_mode: str,
    territory_fill: bool,
    method: str | None = None,
    views: tuple[str, ...] | None = None,
) -> str:
    """Rich text saying what each colour means (view 4's part follows its mode).

    ``method``: the method whose result the views show (its entries and kernel
    kinds only); None lists every method's.  ``views`` (stage view names): only
    the parts of those views (the presentation layout's current step); None: all.
    """
    if method is not None and method in registry.names():
        used = set(getattr(registry.get(method), "legend", ()))
        categories = [*INITIAL_CATEGORIES[method], TRAINED]
    else:
        used = set(ENTRIES)
        categories = list(KERNEL_CATEGORIES)

    def sw(key: str, text: str, shape: str = "■", alpha: int = 255) -> str:
        c = t.color(key, alpha)
        return (f"<span style='color:rgba({c.red()},{c.green()},{c.blue()},{alpha})'>{shape}"
                f"</span>&nbsp;{text}")

    def kinds(shape: str) -> str:
        # what each kernel is: the kinds of an initial model, then trained
        initial = [sw(c, KERNEL_CATEGORY_LABELS[c], shape) for c in categories if c != TRAINED]
        return (
            "<i>initial:</i> "
            + " ".join(initial)
            + " · "
            + sw(TRAINED, KERNEL_CATEGORY_LABELS[TRAINED], shape)
        )

    if kernel_mode == "centres":
        kern = "<b>kernels: centres</b> " + kinds("●")
        if "pair-links" in used:
            kern += " " + sw("link", "pair link", "━")
    elif kernel_mode == "ellipses":
        lim = [f"{a:g}" for a, _ in SHARE_LEVELS[:-1]]
        fg = t.foreground
        fade = " ".join(  # the opacity classes, in the neutral text colour (every kind fades alike)
            "<span "
            f"style='color:rgba({fg.red()},{fg.green()},{fg.blue()},{alpha})'>◯</span>&nbsp;{text}"
            for text, alpha in zip(
                [f"&lt;{lim[0]}", f"&lt;{lim[1]}", f"&lt;{lim[2]}", f"≥{lim[2]}"],
                [a for _, a in SHARE_LEVELS],
                strict=True,
            )
        )
        kern = (
            "<b>kernels: 1-σ ellipses</b> "
            + kinds("◯")
            + " &nbsp;<i>opacity: gate share × K</i> "
            + fade
        )
    else:
        fill = "filled with the expert value m; " if territory_fill else ""
        kern = (
            f"<b>kernels: gate territories</b> centres {kinds('●')} "
            f"<span style='color:{t.foreground.name()}'>━</span>&nbsp;boundary "
            f"({fill}each region: the kernel of largest gate weight w<sub>i</sub>)"
        )
    sections: list[tuple[str, tuple[str, ...]]] = []  # (text, the views that show it)
    segments = []
    if "directions" in used:
        segments.append(" ".join(sw(f"dir{a}", f"θ={a}°", "━") for a in (0, 90, 45, -45)))
    if "superpixels" in used:
        segments.append(sw("superpixel", "superpixel boundary (S-SMoE, AS-SMoE)", "━"))
    if segments:
        sections.append(("<b>segments</b> " + " ".join(segments), ("segments",)))
    if "clusters" in used:
        sections.append((
            "<b>reduced</b> " + sw("cluster", "cluster (DBSCAN)", "━") + " "
            + sw("salient", "salient", "━"),
            ("reduced",),
        ))
    sections.append((kern, ("kernels",)))
    sections.append((
        "<b>inspect</b> w<sub>i</sub> of the clicked kernel (heat, 0…1) "
        + sw("highlight", "its ellipse and territory", "━"),
        ("kernels", "reconstruction"),
    ))
    if "edge-pixels" in used:
        sections.append((
            "<b>edges view</b> " + sw("edge-pixel", "edge pixel over original/residual"),
            ("edges",),
        ))
    parts = [
        text for text, owners in sections if views is None or any(v in views for v in owners)
    ]
    return " &nbsp;│&nbsp; ".join(parts)
