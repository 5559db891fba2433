"""Where the stage cells go: the grid, one cell focused, or the presentation
layout of a lecture step (Qt-free rules; :mod:`smoe_gui.ui.focus` moves the
widgets).

The stage grid has six cells (:data:`CELLS`: the five stage views and the
expert-initialisation plot, keys 1-6) in two rows of three.  A
:class:`Placement` says which cells are shown and where, as
``(row, column, row span, column span)`` of that grid, and how the columns
share the width.

The presentation layout (:func:`presentation_placement`) shows the current
step's stage large and the previous one beside it when that costs the large
one little (the image's aspect against the stage area's), for a projector:
text sizes from :func:`presentation_fonts` (at least 20 px for captions and
titles at 1280x720).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .lecture_steps import VIEW_NAMES, LectureStep

__all__ = [
    "BESIDE_SHARE",
    "CELLS",
    "KEEP_SCALE",
    "Placement",
    "PresentationFonts",
    "presentation_fonts",
    "presentation_placement",
    "step_cells",
]

#: The stage grid's cells, in key order (1-6): the five stage views, then the
#: expert-initialisation plot.
CELLS: tuple[str, ...] = (*VIEW_NAMES, "expert")

#: Width share of the cell beside the large one in the presentation layout.
BESIDE_SHARE = 0.36

#: The previous stage is shown beside the current one only if the current
#: one's image keeps at least this fraction of the scale it has alone.
KEEP_SCALE = 0.8

Cell = tuple[int, int, int, int]


@dataclass(frozen=True)
class Placement:
    """Cells shown and where (see the module).

    Attributes
    ----------
    cells : dict name -> (row, column, row span, column span)
        The cells shown; the others are hidden (with ``is_grid``: every cell
        at its home place).
    column_stretch : (3,) int
        Stretch factors of the grid's three columns.
    linked : bool
        Whether the shown views keep their linked zoom (cells of different
        sizes side by side are fitted each on its own).
    main : str
        The cell to fit the zoom through, ``""`` for the grid.
    is_grid : bool
    """

    cells: dict[str, Cell] = field(default_factory=dict)
    column_stretch: tuple[int, int, int] = (1, 1, 1)
    linked: bool = True
    main: str = ""
    is_grid: bool = False

    @staticmethod
    def grid() -> Placement:
        """The six cells in two rows of three."""
        return Placement(is_grid=True)

    @staticmethod
    def focus(name: str) -> Placement:
        """Cell ``name`` over the whole stage area.

        Raises
        ------
        ValueError
            For an unknown cell.
        """
        if name not in CELLS:
            raise ValueError(f"unknown stage cell {name!r}; expected one of {CELLS}")
        return Placement(cells={name: (0, 0, 2, 3)}, main=name)


def step_cells(step: LectureStep) -> tuple[str, str | None]:
    """The current and the previous stage of a lecture step: the stage it
    reveals (its last view) and the one before; a training step shows the
    reconstruction with the kernels beside it."""
    views = tuple(v for v in step.views if v in VIEW_NAMES)
    if not views:
        raise ValueError(f"lecture step {step.title!r} shows no stage view")
    if step.training and "reconstruction" in views:
        return "reconstruction", "kernels" if "kernels" in views else None
    current = views[-1]
    previous = views[-2] if len(views) > 1 else None
    return current, previous


def presentation_placement(
    step: LectureStep, area: tuple[float, float], image: tuple[int, int] | None
) -> Placement:
    """The presentation layout of ``step``.

    Parameters
    ----------
    step : LectureStep
    area : (width, height)
        The stage area in screen pixels.
    image : (height, width) or None
        The image's size in pixels (None: none open; the previous stage is
        then shown if there is one).

    Returns
    -------
    Placement
        The current stage alone over the whole area, or with the previous
        stage beside it (:data:`BESIDE_SHARE` of the width) when the current
        image keeps at least :data:`KEEP_SCALE` of its scale alone.
    """
    current, previous = step_cells(step)
    alone = Placement(cells={current: (0, 0, 2, 3)}, linked=False, main=current)
    if previous is None:
        return alone
    if image is not None:
        w, h = max(float(area[0]), 1.0), max(float(area[1]), 1.0)
        ih, iw = max(int(image[0]), 1), max(int(image[1]), 1)
        scale_alone = min(w / iw, h / ih)
        scale_pair = min((1.0 - BESIDE_SHARE) * w / iw, h / ih)
        if scale_pair < KEEP_SCALE * scale_alone:
            return alone
    big = round(100 * (1.0 - BESIDE_SHARE))
    return Placement(
        cells={current: (0, 0, 2, 1), previous: (0, 1, 2, 1)},
        column_stretch=(big, 100 - big, 0),
        linked=False,
        main=current,
    )


@dataclass(frozen=True)
class PresentationFonts:
    """Pixel sizes of the presentation layout's text.

    Attributes
    ----------
    caption_px, title_px, legend_px : int
    """

    caption_px: int
    title_px: int
    legend_px: int


def presentation_fonts(window_height: float) -> PresentationFonts:
    """Text sizes (px) for a window ``window_height`` px high: readable from
    the back of a room, at least 20 px for captions and titles (22 and 20 at
    720 px), growing with the window."""
    h = max(float(window_height), 1.0)
    return PresentationFonts(
        caption_px=max(22, round(0.032 * h)),
        title_px=max(20, round(0.028 * h)),
        legend_px=max(16, round(0.022 * h)),
    )
