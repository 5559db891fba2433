"""Help -> Guide (F1): what each view shows, what each slider visibly changes,
the equations and the shortcuts, in one dialog.

The slider table comes from the parameter table
(:data:`smoe_gui.core.params.PARAM_SPECS`, its ``effect`` texts), the
shortcuts from the actions table (:data:`smoe_gui.ui.actions.ACTIONS`) and
the colours from the current theme, so the guide cannot drift from the
window it explains.
"""

from __future__ import annotations

import html

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from ..core.params import METHODS, PARAM_SPECS
from .actions import ACTIONS, shortcut_text
from .control.geometry import KERNEL_CATEGORIES, KERNEL_CATEGORY_LABELS
from .control.lecture_steps import LECTURES, lecture_steps
from .param_panel import GROUP_TITLES, METHOD_TEXT
from .theme import Theme

__all__ = ["GuideDialog", "guide_html"]


def _swatch(theme: Theme, key: str, text: str, shape: str = "■") -> str:
    return f"<span style='color:{theme.hex(key)}'>{shape}</span>&nbsp;{html.escape(text)}"


#: What view 4's colours mean, where more is said than the kind's label
#: (the others: "<label> kernels").
_KIND_TEXT: dict[str, str] = {
    "pair": "edge pairs (linked across the segment)",
    "background": "background kernels",
    "segment": "segment kernels (S-SMoE, AS-SMoE)",
    "trained": "a trained or loaded model",
}


def _kind_text(kind: str) -> str:
    return _KIND_TEXT.get(kind, f"{KERNEL_CATEGORY_LABELS[kind]} kernels")


def _views(theme: Theme) -> str:
    sw = _swatch
    kinds = ", ".join(sw(theme, c, _kind_text(c), "◯") for c in KERNEL_CATEGORIES)
    rows = [
        (
            "1 Canny edges",
            "Edge method: the edge pixels Canny finds (in the text colour on the plot "
            f"background: {'white on black' if theme.dark else 'black on white'} in this "
            "palette; over the original or the residual in the other modes "
            + sw(theme, "edge-pixel", "edge pixel")
            + "). The other methods use no "
            "edges; the view says so.",
        ),
        (
            "2 Raw segments / Superpixels",
            "Edge method: runs of edge pixels in four directions: "
            + " ".join(sw(theme, f"dir{a}", f"θ = {a}°", "━") for a in (0, 90, 45, -45))
            + ". S-SMoE and AS-SMoE: the DBSCAN superpixel map, "
            + sw(theme, "superpixel", "segment boundaries", "━")
            + " over the image.",
        ),
        (
            "3 Reduced segments",
            "Edge method: what the reduction keeps: "
            + sw(theme, "cluster", "DBSCAN cluster means", "━")
            + " and "
            + sw(theme, "salient", "salient segments (highest importance)", "━")
            + ". No other method reduces segments; the view says so.",
        ),
        (
            "4 Kernels (μ, Σ)",
            "Each kernel's centre μ and its ellipse Σ = A Aᵀ, coloured by what it is: "
            "the initial model's kinds, whatever the method, "
            + kinds
            + ". Hover a centre for its numbers; click for its weight map w<sub>i</sub> "
            + sw(theme, "highlight", "")
            + ".",
        ),
        (
            "5 Reconstruction",
            "The model rendered at every pixel, L(x). With <i>Residual</i> every view shows "
            "|original − reconstruction| (bright: large error).",
        ),
        (
            "Expert plot (Fig. 3)",
            "PSNR of the initial reconstruction after each expert-refinement iteration.",
        ),
        (
            "Training plots",
            "PSNR (dB) and kernel count against steps or seconds; dashed lines mark the phases "
            "(tiles, merge, fine-tuning). A small dip in fine-tuning: the least useful kernels "
            "were re-placed where the error is largest (the log says so). An exact "
            "reconstruction's PSNR (inf) is drawn at 100 dB.",
        ),
    ]
    body = "".join(f"<tr><td><b>{html.escape(a)}</b></td><td>{b}</td></tr>" for a, b in rows)
    return f"<h2>The views</h2><table cellpadding='3'>{body}</table>"


def _sliders() -> str:
    out = ["<h2>What each slider changes</h2>"]
    for group, title in GROUP_TITLES.items():
        specs = [s for s in PARAM_SPECS if s.group == group]
        if not specs:
            continue
        out.append(f"<h3>{html.escape(title)}</h3><table cellpadding='3'>")
        for s in specs:
            unit = f" {s.unit}" if s.unit and s.unit != "1" else ""
            out.append(
                f"<tr><td><b>{html.escape(s.label)}</b></td><td>{html.escape(s.effect)}<br>"
                f"<small>{html.escape(s.range_text())}{html.escape(unit)} · "
                f"{html.escape(s.ref)}</small></td></tr>"
            )
        out.append("</table>")
    return "".join(out)


_EQUATIONS = """
<h2>The equations</h2>
<p><b>Kernel</b> (Eq. 2): K<sub>i</sub>(x) = α<sub>i</sub> · exp(−‖A<sub>i</sub><sup>T</sup>(x −
μ<sub>i</sub>)‖²),
so Σ<sub>i</sub> = A<sub>i</sub>A<sub>i</sub><sup>T</sup> is the ellipse drawn in view 4.</p>
<p><b>Gate</b> (softmax): w<sub>i</sub>(x) = K<sub>i</sub>(x) / Σ<sub>j</sub> K<sub>j</sub>(x), the
weight map shown
when a kernel is clicked.</p>
<p><b>Model</b>: L(x) = Σ<sub>i</sub> w<sub>i</sub>(x) · m<sub>i</sub>, with a constant expert
m<sub>i</sub> per
kernel: view 5.</p>
<p><b>Importance score</b> (Eq. 6-8): a segment far from its two nearest segments scores high;
λ weighs the distance to other-direction segments, 1 − λ the distance to same-direction ones.</p>
<p><b>Placement, edge method</b> (Sec. III-C): two kernels at c ± (Δμ/2)·n across each reduced
segment,
A = I/(√2·Δμ).</p>
<p><b>Steering, S-SMoE</b>: a kernel at the centroid of its part of a superpixel, with A
A<sup>T</sup> = C<sup>−1</sup>/2
for the covariance C of the part's pixel coordinates. <b>AS-SMoE</b>: each superpixel fitted by its
own SMoE
with an L0 gate per kernel; the kernels kept form the initial model.</p>
<p><b>Expert refinement</b> (Eq. 12, convergent sign): m ← m + η (L[μ] − L̂[μ]).</p>
<p><b>Training</b> (Sec. III-E): Adam on the MSE, tile by tile with the penalty (Σ α<sub>i</sub>)²,
then
the whole image; PSNR = 10 · log<sub>10</sub>(1 / MSE) dB.</p>
"""


def _shortcuts() -> str:
    rows = [
        (shortcut_text(a), a.text.replace("&", "").rstrip("…"), a.tooltip)
        for a in ACTIONS
        if a.kind == "action" and a.shortcut
    ]
    body = "".join(
        f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(t)}</td>"
        f"<td><small>{html.escape(tip)}</small></td></tr>"
        for k, t, tip in rows
    )
    return (
        "<h2>Shortcuts</h2><p>The training keys (Space, Esc, F5) work wherever the focus is, "
        "except in a field you are typing in: there Esc first puts back the value the app "
        f"holds.</p><table cellpadding='3'>{body}</table>"
    )


def _lecture(method: str) -> str:
    order = [method] + [m for m in LECTURES if m != method]
    parts = []
    for m in order:
        items = "".join(
            f"<li><b>{html.escape(step.title)}</b>: {html.escape(step.caption)}</li>"
            for step in lecture_steps(m)
        )
        selected = " — the method selected" if m == method else ""
        parts.append(
            f"<h3>{html.escape(METHOD_TEXT.get(m, m))}{selected}</h3><ul>{items}</ul>"
        )  # titles numbered
    return (
        "<h2>Lecture mode</h2><p>View → Lecture mode (F9) gives the lecture of the method chosen "
        "in the "
        "method selector, revealing its stages one at a time with a caption; Page Down or N: next; "
        "Page Up or B: back. F11: full screen.</p>" + "".join(parts)
    )


def guide_html(theme: Theme, method: str | None = None) -> str:
    """The whole guide as rich text (colours of ``theme``; ``method``'s lecture first)."""
    return (
        "<h1>smoe-gui guide</h1><p>Steered Mixture-of-Experts with edge-aligned kernels "
        "(Determann &amp; Fleig), compared with a regular grid and the segmentation-based S-SMoE "
        "and AS-SMoE initialisations: from an image to its stages, kernels and a trained "
        "model.</p>"
        + _views(theme)
        + _sliders()
        + _EQUATIONS
        + _shortcuts()
        + _lecture(METHODS[0] if method is None else method)
    )


class GuideDialog(QDialog):
    """A non-modal dialog showing :func:`guide_html` in a :class:`QTextBrowser`."""

    def __init__(
        self, theme: Theme, parent: QWidget | None = None, method: str | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("guide")
        self.setWindowTitle("smoe-gui guide")
        self.browser = QTextBrowser()
        self.browser.setObjectName("guide-text")
        self.browser.setOpenExternalLinks(False)
        self.browser.setHtml(guide_html(theme, method))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        screen = parent.screen().availableGeometry() if parent is not None else None
        if screen is not None:
            self.resize(min(760, int(screen.width() * 0.8)), min(820, int(screen.height() * 0.85)))
