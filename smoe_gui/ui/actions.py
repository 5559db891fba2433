"""Menus and shortcuts as data.

:data:`ACTIONS` lists every menu entry of the window in menu order: its id
(the ``QAction``'s object name is ``action-<id>``), text, shortcut, menu
path, the window method it calls and its tooltip.  :func:`build_menus` turns
the table into menus, so a shortcut or a menu entry is changed in one place,
and the Help guide lists the shortcuts from the same table (as napari's
``_qt/_qapp_model/qactions`` keep their actions as data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu

from .theme import COLOR_SCHEMES
from .video_export import video_exporter
from .views.stage_views import BACKGROUND_MODES, STAGES

#: Names of the stage grid's six cells in the Focus menu (keys 1-6).
FOCUS_TITLES = (*(t.split("  ", 1)[-1] for t in STAGES.values()), "Expert initialisation plot")

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["ACTIONS", "ActionSpec", "Handler", "build_menus", "shortcut_text"]

#: Given the window, the callable a menu entry runs.
Handler = Callable[["MainWindow"], Callable[..., object]]


@dataclass(frozen=True)
class ActionSpec:
    """One menu entry.

    Attributes
    ----------
    id : str
        Unique; the action's object name is ``action-<id>``.
    text : str
        Menu text (``&`` marks the mnemonic).
    menu : str
        Menu path, ``/``-separated (``"&File/&Export"``).
    handler : callable or None
        Given the window, the callable the entry runs
        (``lambda w: w.files.open_image_dialog``: a direct reference that mypy
        checks against :class:`~smoe_gui.ui.main_window.MainWindow`); None for a
        separator or a submenu.
    shortcut : str
        A ``QKeySequence`` string (``"Ctrl+L"``) or the name of a
        ``QKeySequence.StandardKey`` (``"Open"``); several separated by ``;``
        (the first is shown in the menu); empty for none.
    tooltip : str
    arg : str or None
        Argument passed to the handler.
    checkable : bool
    group : str
        Actions sharing a group name are exclusive.
    kind : str
        ``"action"``, ``"separator"`` or ``"submenu"`` (an empty submenu the
        window fills, e.g. recent files; its object name is ``menu-<id>``).
    training : bool
        A training control (Space, Esc, ...): its shortcut works wherever the
        focus is, except in a field being typed in (see the window's event filter).
    """

    id: str
    text: str
    menu: str
    handler: Handler | None = None
    shortcut: str = ""
    tooltip: str = ""
    arg: str | None = None
    checkable: bool = False
    group: str = ""
    kind: str = "action"
    training: bool = False


def _separator(menu: str, n: int) -> ActionSpec:
    return ActionSpec(f"sep-{menu}-{n}", "", menu, kind="separator")


_FILE = "&File"
_EXPORT = "&File/&Export"

#: Every menu entry, in menu order.
ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        "open",
        "&Open image…",
        _FILE,
        lambda w: w.files.open_image_dialog,
        "Open",
        "Open an image (PNG, JPEG, TIFF, …); large images can be downscaled",
    ),
    ActionSpec("recent", "Open &recent", _FILE, kind="submenu"),
    ActionSpec("samples", "&Samples", _FILE, kind="submenu"),
    _separator(_FILE, 1),
    ActionSpec(
        "load-model",
        "&Load model…",
        _FILE,
        lambda w: w.files.load_model_dialog,
        "Ctrl+L",
        "Show a saved model (.npz) over the image it was made for",
    ),
    ActionSpec(
        "save-model",
        "&Save model…",
        _FILE,
        lambda w: w.files.save_model_dialog,
        "Save",
        "Save the trained (or initial) model as .npz",
    ),
    ActionSpec(
        "load-params",
        "Load &parameters…",
        _FILE,
        lambda w: w.files.load_params_dialog,
        "Ctrl+Shift+O",
        "Load every parameter from a JSON file",
    ),
    ActionSpec(
        "save-params",
        "Save p&arameters…",
        _FILE,
        lambda w: w.files.save_params_dialog,
        "Ctrl+Shift+S",
        "Save every parameter to a JSON file (the CLI's --params reads it)",
    ),
    _separator(_FILE, 2),
    *(
        ActionSpec(
            f"export-{name}",
            f"Stage view '{name}' as PNG…",
            _EXPORT,
            lambda w: w.files.export_stage_dialog,
            tooltip=f"The '{name}' view at the image's resolution, overlays included",
            arg=name,
        )
        for name in STAGES
    ),
    ActionSpec(
        "export-stages",
        "All stage views to a folder…",
        _EXPORT,
        lambda w: w.files.export_all_stages_dialog,
        tooltip="Every stage view as stage-<name>.png at the image's resolution",
    ),
    *(
        ActionSpec(
            f"export-scale-{k}",
            f"Stage views at {k}× the image's resolution",
            _EXPORT,
            lambda w: w.files.set_export_scale,
            arg=str(k),
            checkable=True,
            group="export-scale",
            tooltip="1×: one pixel per image pixel; 2× and 4× for slides",
        )
        for k in (1, 2, 4)
    ),
    _separator(_EXPORT, 1),
    ActionSpec(
        "export-reconstruction",
        "Reconstruction as PNG…",
        _EXPORT,
        lambda w: w.files.export_reconstruction_dialog,
        "Ctrl+E",
        "The reconstruction alone, one pixel per image pixel",
    ),
    ActionSpec(
        "export-psnr-png", "PSNR curve as PNG…", _EXPORT, lambda w: w.files.export_psnr_png_dialog
    ),
    ActionSpec(
        "export-psnr-csv", "PSNR curve as CSV…", _EXPORT, lambda w: w.files.export_psnr_csv_dialog
    ),
    _separator(_EXPORT, 2),
    ActionSpec(
        "export-video",
        "Training as video (MP4, GIF)…",
        _EXPORT,
        lambda w: lambda layout: video_exporter(w).export_dialog(layout),
        tooltip="The last training run: its reconstruction beside the kernel centres and the "
        "PSNR curve, one frame per model the run kept (for slides)",
        arg="full",
    ),
    ActionSpec(
        "export-video-reconstruction",
        "Training as video, reconstruction only…",
        _EXPORT,
        lambda w: lambda layout: video_exporter(w).export_dialog(layout),
        tooltip="The last training run's reconstruction alone, as MP4 or GIF",
        arg="reconstruction",
    ),
    _separator(_FILE, 3),
    ActionSpec("quit", "&Quit", _FILE, lambda w: w.close, "Quit"),
    *(
        ActionSpec(
            f"view-{mode}",
            f"Show {mode}",
            "&View",
            lambda w: w.set_view_mode,
            f"Ctrl+{i + 1}",
            arg=mode,
            checkable=True,
            group="view-mode",
        )
        for i, mode in enumerate(BACKGROUND_MODES)
    ),
    _separator("&View", 1),
    ActionSpec(
        "fit",
        "Fit views to image",
        "&View",
        lambda w: w.fit_views,
        "Ctrl+0",
        "Zoom every view to the whole image",
    ),
    *(
        ActionSpec(
            f"focus-{i + 1}",
            f"{i + 1}  {title}",
            "&View/F&ocus",
            lambda w: w.stage_focus.toggle_key,
            str(i + 1),
            f"{title} over the whole stage area, or back to the grid (double-click a view; "
            "Esc goes back)",
            arg=str(i + 1),
        )
        for i, title in enumerate(FOCUS_TITLES)
    ),
    ActionSpec(
        "focus-back",
        "Back to the grid",
        "&View/F&ocus",
        lambda w: w.stage_focus.back,
        "Esc",
        "Every stage view in its cell again (also a double-click on the focused view)",
    ),
    ActionSpec(
        "panel",
        "&Parameter panel",
        "&View",
        lambda w: w.panel_strip.toggle,
        "Ctrl+\\",
        "Show the parameter panel, or fold it to a narrow strip (its button unfolds it)",
        checkable=True,
    ),
    _separator("&View", 2),
    ActionSpec(
        "lecture",
        "&Lecture mode",
        "&View",
        lambda w: w.toggle_lecture,
        "F9",
        "Reveal the selected method's stages one at a time with a caption, then its "
        "training",
        checkable=True,
    ),
    ActionSpec(
        "lecture-next",
        "Lecture: next step",
        "&View",
        lambda w: w.lecture.next,
        "PgDown;N",
        "Reveal the next stage",
    ),
    ActionSpec(
        "lecture-back",
        "Lecture: previous step",
        "&View",
        lambda w: w.lecture.back,
        "PgUp;B",
        "Hide the last stage shown",
    ),
    ActionSpec(
        "presentation",
        "P&resentation layout",
        "&View",
        lambda w: w.presentation.toggle,
        "F8",
        "The current stage large (the lecture's step, else the focused view or view 4) with "
        "the previous one beside it, the panel folded, large text (on in lecture mode)",
        checkable=True,
    ),
    ActionSpec(
        "full-screen",
        "&Full screen",
        "&View",
        lambda w: w.toggle_full_screen,
        "F11",
        "Use the whole screen (a projector)",
        checkable=True,
    ),
    *(
        ActionSpec(
            f"theme-{scheme}",
            f"{scheme.capitalize()} colours",
            "&View/&Theme",
            lambda w: w.set_color_scheme,
            arg=scheme,
            checkable=True,
            group="theme",
            tooltip="The desktop's colours" if scheme == "system" else f"A {scheme} palette",
        )
        for scheme in COLOR_SCHEMES
    ),
    ActionSpec(
        "start",
        "&Start",
        "&Train",
        lambda w: w.start_training,
        "F5",
        "Train the model from the current initialisation",
        training=True,
    ),
    ActionSpec(
        "pause",
        "&Pause / resume",
        "&Train",
        lambda w: w.toggle_pause,
        "Space",
        "Pause or resume training (paused time does not count against the time budget)",
        training=True,
    ),
    ActionSpec(
        "stop",
        "S&top",
        "&Train",
        lambda w: w.stop_training,
        "Esc",
        "Stop training and keep the best model so far (while a view is focused, Esc goes back "
        "to the grid first)",
        training=True,
    ),
    ActionSpec(
        "compare",
        "&Compare two methods",
        "&Train",
        lambda w: w.start_compare,
        "Ctrl+K",
        "Train the selected initialisation and the one chosen after 'vs' one after the other",
        training=True,
    ),
    _separator("&Train", 1),
    ActionSpec(
        "reset",
        "&Reset parameters",
        "&Train",
        lambda w: w.panel.reset_to_defaults,
        "Ctrl+R",
        "Set every parameter to its default",
    ),
    ActionSpec(
        "guide",
        "&Guide",
        "&Help",
        lambda w: w.show_guide,
        "F1",
        "What each view shows and its colours, what each slider changes, the equations, the "
        "shortcuts",
    ),
    ActionSpec("about", "&About smoe-gui", "&Help", lambda w: w.about),
)


def _key(shortcut: str) -> QKeySequence:
    standard = getattr(QKeySequence.StandardKey, shortcut, None)
    return QKeySequence(standard) if standard is not None else QKeySequence(shortcut)


def shortcut_text(spec: ActionSpec) -> str:
    """The shortcuts of ``spec`` as the user reads them (``"Ctrl+O"``,
    ``"PgDown, N"``), or ``""``."""
    return ", ".join(
        _key(k).toString(QKeySequence.SequenceFormat.NativeText)
        for k in spec.shortcut.split(";")
        if k
    )


def build_menus(
    window: MainWindow, specs: tuple[ActionSpec, ...] = ACTIONS
) -> tuple[dict[str, QAction], dict[str, QMenu]]:
    """Build ``specs`` into the menu bar of ``window``.

    Returns
    -------
    actions : dict id -> QAction
    submenus : dict id -> QMenu
        The ``"submenu"`` entries, for the window to fill.
    """
    menus: dict[str, QMenu] = {}
    groups: dict[str, QActionGroup] = {}
    actions: dict[str, QAction] = {}
    submenus: dict[str, QMenu] = {}
    bar = window.menuBar()

    def menu_at(path: str) -> QMenu:
        if path not in menus:
            parent, _, title = path.rpartition("/")
            menus[path] = menu_at(parent).addMenu(title) if parent else bar.addMenu(title)
        return menus[path]

    for spec in specs:
        menu = menu_at(spec.menu)
        if spec.kind == "separator":
            menu.addSeparator()
            continue
        if spec.kind == "submenu":
            sub = menu.addMenu(spec.text)
            sub.setObjectName(f"menu-{spec.id}")
            submenus[spec.id] = sub
            continue
        action = QAction(spec.text, window)
        action.setObjectName(f"action-{spec.id}")
        if spec.shortcut:
            action.setShortcuts([_key(k) for k in spec.shortcut.split(";") if k])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if spec.tooltip:
            action.setToolTip(spec.tooltip)
            action.setStatusTip(spec.tooltip)
        if spec.checkable:
            action.setCheckable(True)
        if spec.group:
            group = groups.get(spec.group)
            if group is None:
                group = groups[spec.group] = QActionGroup(window)
            group.addAction(action)
        if spec.handler is None:
            raise ValueError(f"menu entry {spec.id!r} has no handler")
        handler = spec.handler(window)
        if spec.arg is None:
            action.triggered.connect(lambda _checked=False, h=handler: h())
        else:
            action.triggered.connect(lambda _checked=False, h=handler, a=spec.arg: h(a))
        menu.addAction(action)
        window.addAction(action)
        actions[spec.id] = action
    return actions, submenus
