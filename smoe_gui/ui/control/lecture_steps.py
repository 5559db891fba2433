"""The lecture of each initialisation method, as data, and the Qt-free state
that walks through it (:class:`LectureState`).

Each method has its own lecture (:data:`LECTURES`), kept in the method's own
module (its ``lecture``, :class:`smoe_gui.core.registry.Method`): the edge
method's stages (Canny edges, segments, reduction, kernel pairs), the grid
baseline's single placement, S-SMoE's superpixels, kernels per segment and
steering from the segment's shape, and AS-SMoE's superpixels, per-segment fits
with kernel sparsification and their export into one global model; every
lecture ends with the reconstruction and the training (``docs/paper-readings.md``).
The window's lecture mode (:mod:`smoe_gui.ui.lecture`) applies a step to the
views; this module imports no Qt, so the lectures are tested without a window.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping

from ...core import registry
from ...core.registry import STAGE_VIEWS, LectureStep

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
VIEW_NAMES: tuple[str, ...] = STAGE_VIEWS

#: Titles of the stage views (the edge method's stages: the default).
STAGE_TITLES: dict[str, str] = {
    "edges": "1  Canny edges",
    "segments": "2  Raw segments",
    "reduced": "3  Reduced segments",
    "kernels": "4  Kernels",
    "reconstruction": "5  Reconstruction",
}


def stage_titles(method: str) -> dict[str, str]:
    """Titles of the five stage views for a result of ``method`` (the views
    that have no meaning for a method say so in their captions,
    :func:`smoe_gui.ui.control.session.view_captions`)."""
    own = getattr(registry.get(method), "stage_titles", {}) if method in registry.names() else {}
    return {**STAGE_TITLES, **own}


class _Lectures(Mapping[str, tuple[LectureStep, ...]]):
    """Each registered method's lecture (its ``lecture``), read from the registry."""

    def __getitem__(self, name: str) -> tuple[LectureStep, ...]:
        try:
            steps = tuple(getattr(registry.get(name), "lecture", ()))
        except ValueError:
            raise KeyError(name) from None
        if not steps:
            raise KeyError(name)
        return steps

    def __iter__(self) -> Iterator[str]:
        return iter(m.name for m in registry.all() if getattr(m, "lecture", ()))

    def __len__(self) -> int:
        return sum(1 for _ in self)


#: The lecture of each method (every entry of :data:`smoe_gui.core.params.METHODS`
#: that has one; each method's module holds its own).
LECTURES: Mapping[str, tuple[LectureStep, ...]] = _Lectures()

#: The default method's lecture (the paper's method).
LECTURE_STEPS: tuple[LectureStep, ...] = LECTURES[registry.default()]


def lecture_steps(method: str) -> tuple[LectureStep, ...]:
    """The lecture of ``method``.

    Raises
    ------
    ValueError
        For a method without a lecture.
    """
    steps = LECTURES.get(method) if isinstance(method, str) else None
    if steps is None:
        raise ValueError(
            f"no lecture for method {method!r}; expected one of {', '.join(LECTURES)}"
        )
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

    def __init__(self, method: str | None = None) -> None:
        method = registry.default() if method is None else method
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
        keys = []  # only the keys that do something at this step
        if self.step < len(self.steps) - 1:
            keys.append("Page Down / N: next")
        if self.step > 0:
            keys.append("Page Up / B: back")
        hint = f"  <small>[{' · '.join(keys)}]</small>" if keys else ""
        return (
            f"<b>{html.escape(self.method, quote=False)} · "
            f"{html.escape(step.title, quote=False)}</b> ({self.step + 1}/{len(self.steps)}) — "
            f"{html.escape(step.caption, quote=False)}{hint}"
        )
