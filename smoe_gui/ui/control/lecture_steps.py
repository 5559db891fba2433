"""The lecture of each initialisation method, as data, and the Qt-free state
that walks through it (:class:`LectureState`).

Each method has its own lecture (:data:`LECTURES`): the edge method's stages
(Canny edges, segments, reduction, kernel pairs), the grid baseline's single
placement, S-SMoE's superpixels, kernels per segment and steering from the
segment's shape, and AS-SMoE's superpixels, per-segment fits with kernel
sparsification and their export into one global model; every lecture ends
with the reconstruction and the training.  The texts describe what
:mod:`smoe_gui.core.methods.pipeline`, :mod:`smoe_gui.core.methods.edge.placement` and
:mod:`smoe_gui.core.methods.segment.segment_init` implement (``docs/paper-readings.md``).
The window's lecture mode (:mod:`smoe_gui.ui.lecture`) applies a step to the
views; this module imports no Qt, so the lectures are tested without a window.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from ...core.methods.segment.segment_init import AS_PATCH
from ...core.params import METHODS

__all__ = [
    "LECTURES",
    "LECTURE_STEPS",
    "STAGE_TITLES",
    "VIEW_NAMES",
    "LectureState",
    "LectureStep",
    "lecture_steps",
    "stage_titles",
]

#: The five stage views (names of :data:`smoe_gui.ui.views.stage_views.STAGES`), in order.
VIEW_NAMES: tuple[str, ...] = ("edges", "segments", "reduced", "kernels", "reconstruction")

#: Titles of the stage views (the edge method's stages: the default).
STAGE_TITLES: dict[str, str] = {
    "edges": "1  Canny edges",
    "segments": "2  Raw segments",
    "reduced": "3  Reduced segments",
    "kernels": "4  Kernels",
    "reconstruction": "5  Reconstruction",
}

#: Titles that differ from :data:`STAGE_TITLES` for a method's result: view 2
#: shows the segment methods' superpixel map, not edge segments.
_METHOD_TITLES: dict[str, dict[str, str]] = {
    "s-smoe": {"segments": "2  Superpixels"},
    "as-smoe": {"segments": "2  Superpixels"},
}


def stage_titles(method: str) -> dict[str, str]:
    """Titles of the five stage views for a result of ``method`` (the views
    that have no meaning for a method say so in their captions,
    :data:`smoe_gui.ui.control.session.NO_STAGE_TEXT`)."""
    return {**STAGE_TITLES, **_METHOD_TITLES.get(method, {})}


@dataclass(frozen=True)
class LectureStep:
    """One step of a lecture.

    Attributes
    ----------
    title : str
    caption : str
        One or two sentences for the class (plain text).
    views : tuple of str
        Stage views shown (names of :data:`VIEW_NAMES`); the others are empty frames.
    training : bool
        Whether the training controls and plots are shown.
    kernel_mode : str or None
        What view 4 draws during the step (one of
        :data:`smoe_gui.ui.control.geometry.KERNEL_MODES`); None keeps the user's choice.
    """

    title: str
    caption: str
    views: tuple[str, ...]
    training: bool = False
    kernel_mode: str | None = None


_ALL = VIEW_NAMES
_SEGMENT_VIEWS = ("segments", "kernels", "reconstruction")

_TRAINING = (
    "Gradient descent moves, shapes and weighs the kernels: press F5 and watch the PSNR rise "
    "(Space pauses, Esc stops)."
)

_SUPERPIXELS = (
    "from seeds taken row by row, a pixel joins a segment while its gray level stays close to the "
    "seed's and its neighbour's; small segments merge into their most similar neighbour."
)

EDGE_STEPS: tuple[LectureStep, ...] = (
    LectureStep(
        "1 Canny edges",
        "Canny marks the pixels where the brightness changes fastest: the edges the kernels will "
        "follow.",
        _ALL[:1],
    ),
    LectureStep(
        "2 Raw segments",
        "Edge pixels are scanned in four directions; each straight run becomes a segment "
        "(colour = direction).",
        _ALL[:2],
    ),
    LectureStep(
        "3 Reduced segments",
        "Too many segments: the most important ones stay (magenta), the rest are merged by DBSCAN "
        "into cluster means (cyan).",
        _ALL[:3],
    ),
    LectureStep(
        "4 Kernels",
        "Each reduced segment gets a pair of kernels, one on each side of the edge; flat regions "
        "get background kernels.",
        _ALL[:4],
    ),
    LectureStep(
        "5 Reconstruction",
        "Each pixel is a softmax-weighted mix of the kernels' gray levels: the initial model, "
        "before any training.",
        _ALL,
    ),
    LectureStep("6 Training", _TRAINING, _ALL, training=True),
)

GRID_STEPS: tuple[LectureStep, ...] = (
    LectureStep(
        "1 Grid kernels",
        "The baseline: as many kernels as the edge method would place (or the budget N), spread "
        "evenly row by row, all round and alike (standard deviation half their spacing): blind "
        "to the image's content.",
        ("kernels",),
        kernel_mode="ellipses",
    ),
    LectureStep(
        "2 Reconstruction",
        "Each expert starts from the image at its kernel's centre and is refined (eq. 12); each "
        "pixel is a softmax-weighted mix of the experts: the initial model, before any training.",
        ("kernels", "reconstruction"),
    ),
    LectureStep("3 Training", _TRAINING, ("kernels", "reconstruction"), training=True),
)

S_SMOE_STEPS: tuple[LectureStep, ...] = (
    LectureStep(
        "1 Superpixels",
        "S-SMoE starts from DBSCAN superpixels, not edges: " + _SUPERPIXELS,
        ("segments",),
    ),
    LectureStep(
        "2 Kernels per segment",
        "Each superpixel gets a kernel at its centroid. With a kernel budget N the rest goes to "
        "large, busy segments; a segment with n kernels is cut into n parts along its principal "
        "axis, one kernel per part.",
        ("segments", "kernels"),
        kernel_mode="centres",
    ),
    LectureStep(
        "3 Steering from the segment's shape",
        "Each kernel's steering matrix comes from the covariance C of its part's pixel coordinates "
        "(A Aᵀ = C⁻¹/2): a long, thin segment gives a long, thin ellipse along it.",
        ("segments", "kernels"),
        kernel_mode="ellipses",
    ),
    LectureStep(
        "4 Experts and reconstruction",
        "Each expert starts from its part's mean value and is refined like every method's (eq. "
        "12); each pixel is a softmax-weighted mix of the experts: the initial model, before any "
        "training.",
        _SEGMENT_VIEWS,
    ),
    LectureStep("5 Training", _TRAINING, _SEGMENT_VIEWS, training=True),
)

AS_SMOE_STEPS: tuple[LectureStep, ...] = (
    LectureStep(
        "1 Superpixels",
        "AS-SMoE starts from the same DBSCAN superpixels: " + _SUPERPIXELS,
        ("segments",),
    ),
    LectureStep(
        "2 Per-segment SMoE fits",
        "Kernels start where S-SMoE puts them. Each segment (big ones in pieces) is cut out with "
        f"a margin, resized to {AS_PATCH}×{AS_PATCH} and fitted by a small SMoE (Adam) with its "
        "neighbours' kernels fixed; far-apart pieces go together, in rounds; a fit stays only if "
        "it lowers the error.",
        ("segments", "kernels"),
        kernel_mode="centres",
    ),
    LectureStep(
        "3 Kernel sparsification",
        "An L0 (hard-concrete) gate on every kernel switches off the kernels a segment does not "
        "need: the fits decide each segment's kernel count, positions and steering. View 4: the "
        "kernels kept.",
        ("segments", "kernels"),
        kernel_mode="ellipses",
    ),
    LectureStep(
        "4 One global model",
        "The kept kernels of all segments, mapped back to the image (α = their gate), form one "
        "initial model; with a budget N the worst-fitting ones are split until there are N; its "
        "experts are refined (eq. 12). View 5: before any training.",
        _SEGMENT_VIEWS,
    ),
    LectureStep("5 Training", _TRAINING, _SEGMENT_VIEWS, training=True),
)

#: The lecture of each method (every entry of :data:`smoe_gui.core.params.METHODS`).
LECTURES: dict[str, tuple[LectureStep, ...]] = {
    "edge": EDGE_STEPS,
    "grid": GRID_STEPS,
    "s-smoe": S_SMOE_STEPS,
    "as-smoe": AS_SMOE_STEPS,
}

#: The edge method's lecture (the paper's method).
LECTURE_STEPS: tuple[LectureStep, ...] = EDGE_STEPS


def lecture_steps(method: str) -> tuple[LectureStep, ...]:
    """The lecture of ``method``.

    Raises
    ------
    ValueError
        For a method without a lecture.
    """
    steps = LECTURES.get(method)
    if steps is None:
        raise ValueError(f"no lecture for method {method!r}; expected one of {METHODS}")
    return steps


class LectureState:
    """Where a lecture stands: active or not, the method and the step.

    Parameters
    ----------
    method : str
        The method whose lecture is given (:func:`lecture_steps`).

    Attributes
    ----------
    active : bool
    method : str
    step : int
        Index of the step shown (0-based).
    """

    def __init__(self, method: str = METHODS[0]) -> None:
        lecture_steps(method)
        self.active = False
        self.method = method
        self.step = 0

    @property
    def steps(self) -> tuple[LectureStep, ...]:
        """The steps of the current method's lecture."""
        return lecture_steps(self.method)

    def start(self, method: str | None = None) -> None:
        """Enter the lecture (of ``method`` when given) at its first step."""
        if method is not None:
            lecture_steps(method)
            self.method = method
        self.active = True
        self.step = 0

    def stop(self) -> None:
        """Leave the lecture."""
        self.active = False
        self.step = 0

    def next(self) -> bool:
        """Go to the next step; returns whether the step changed."""
        if self.active and self.step < len(self.steps) - 1:
            self.step += 1
            return True
        return False

    def back(self) -> bool:
        """Go back one step; returns whether the step changed."""
        if self.active and self.step > 0:
            self.step -= 1
            return True
        return False

    def set_method(self, method: str) -> bool:
        """Follow the method selector: another method's lecture starts at its
        first step; returns whether anything changed."""
        lecture_steps(method)
        if method == self.method:
            return False
        self.method = method
        self.step = 0
        return self.active

    def current(self) -> LectureStep | None:
        """The step shown, or None outside the lecture."""
        return self.steps[self.step] if self.active else None

    def views(self) -> tuple[str, ...]:
        """The stage views shown: the step's, or all five outside the lecture."""
        step = self.current()
        return step.views if step is not None else VIEW_NAMES

    def caption_html(self) -> str:
        """The caption line of the step shown ("" outside the lecture)."""
        step = self.current()
        if step is None:
            return ""
        return (
            f"<b>{html.escape(self.method, quote=False)} · "
            f"{html.escape(step.title, quote=False)}</b> ({self.step + 1}/{len(self.steps)}) — "
            f"{html.escape(step.caption, quote=False)}  <small>[Page Down / N: next · Page Up / B: "
            "back]</small>"
        )
