"""The stage views' legend: what each colour means, as rich text."""

from __future__ import annotations

from ..control.geometry import KERNEL_CATEGORIES, KERNEL_CATEGORY_LABELS, SHARE_LEVELS
from ..theme import Theme

__all__ = ["legend_html"]


def legend_html(
    t: Theme, kernel_mode: str, territory_fill: bool, views: tuple[str, ...] | None = None
) -> str:
    """Rich text saying what each colour means (view 4's part follows its mode);
    with ``views`` (stage view names), only the parts of those views."""

    def sw(key: str, text: str, shape: str = "■", alpha: int = 255) -> str:
        c = t.color(key, alpha)
        return (f"<span style='color:rgba({c.red()},{c.green()},{c.blue()},{alpha})'>{shape}"
                f"</span>&nbsp;{text}")

    def kinds(shape: str) -> str:
        # what each kernel is: the kinds of an initial model, then trained
        initial = [
            sw(c, KERNEL_CATEGORY_LABELS[c], shape) for c in KERNEL_CATEGORIES if c != "trained"
        ]
        return (
            "<i>initial:</i> "
            + " ".join(initial)
            + " · "
            + sw("trained", KERNEL_CATEGORY_LABELS["trained"], shape)
        )

    if kernel_mode == "centres":
        kern = "<b>kernels: centres</b> " + kinds("●") + " " + sw("link", "pair link", "━")
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
    sections = [
        "<b>segments</b> "
        + " ".join(sw(f"dir{a}", f"θ={a}°", "━") for a in (0, 90, 45, -45))
        + " "
        + sw("superpixel", "superpixel boundary (S-SMoE, AS-SMoE)", "━"),
        "<b>reduced</b> "
        + sw("cluster", "cluster (DBSCAN)", "━")
        + " "
        + sw("salient", "salient", "━"),
        kern,
        "<b>inspect</b> w<sub>i</sub> of the clicked kernel (heat, 0…1) "
        + sw("highlight", "its ellipse and territory", "━"),
        "<b>edges view</b> " + sw("edge", "edge pixel over original/residual"),
    ]
    shown_by = (
        ("segments",), ("reduced",), ("kernels",), ("kernels", "reconstruction"), ("edges",)
    )
    parts = [
        text
        for text, owners in zip(sections, shown_by, strict=True)
        if views is None or any(v in views for v in owners)
    ]
    return " &nbsp;│&nbsp; ".join(parts)
