"""The registry of initialisation methods: one protocol, one table, plug-ins by entry point.

Qt-free and light: this module imports nothing of smoe-gui but
:mod:`smoe_gui.core.errors`, so the parameter
vocabulary (:mod:`smoe_gui.core.params`) reads the method names from it
without pulling in any method's code.  A method is one module (or package)
that builds one object satisfying :class:`Method` and names it ``METHOD``;
the registry imports the built-in ones on first use, in the order of
:data:`BUILTIN_MODULES` (the first is the default method), as pytest imports
its own built-in plug-ins by name.  Third-party methods are found through the
entry-point group :data:`ENTRY_POINT_GROUP` (the convention of pytest plug-ins
and napari manifests); each entry point names a :class:`Method` object (or a
callable returning one).  A plug-in that fails to load gives a
:class:`RuntimeWarning` naming it and is skipped; it never stops the program.

The protocol's types (:class:`~smoe_gui.core.methods.base.Initialization`,
:class:`~smoe_gui.core.params.Params`, :class:`~smoe_gui.core.methods.budget.KernelPlan`)
are named for the type checker only.  :class:`smoe_gui.core.methods.base.BaseMethod`
implements the protocol with the shared stages (input checks, kernel-budget
planning, experts); ``docs/architecture.md`` ("Adding a method") shows a
method built on it.
"""

from __future__ import annotations

import importlib
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, overload, runtime_checkable

from .errors import one_line

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .methods.base import Initialization
    from .methods.budget import KernelPlan
    from .params import Params

__all__ = [
    "BUILTIN_MODULES",
    "ENTRY_POINT_GROUP",
    "KernelKind",
    "LectureStep",
    "Method",
    "MethodNames",
    "STAGE_VIEWS",
    "TRAINING_TEXT",
    "all",
    "default",
    "get",
    "load_entry_points",
    "names",
    "register",
    "unregister",
]

#: Modules of the built-in methods, in the order every selector offers them;
#: each defines ``METHOD``.  The first is the default method (the paper's).
BUILTIN_MODULES: tuple[str, ...] = (
    "smoe_gui.core.methods.edge.method",
    "smoe_gui.core.methods.grid",
    "smoe_gui.core.methods.segment.s_smoe",
    "smoe_gui.core.methods.segment.as_smoe",
)
#: Entry-point group of third-party methods.
ENTRY_POINT_GROUP = "smoe_gui.methods"
#: The window's five stage views, in order (what a lecture step shows).
STAGE_VIEWS: tuple[str, ...] = ("edges", "segments", "reduced", "kernels", "reconstruction")
#: The last lecture step's text, the same for every method.
TRAINING_TEXT = (
    "Gradient descent shapes the kernels; the least useful ones move to where the error is. "
    "F5 starts (Space pauses, Esc stops): watch the PSNR rise."
)


@dataclass(frozen=True)
class LectureStep:
    """One step of a method's lecture (the window's lecture mode).

    Attributes
    ----------
    title : str
    caption : str
        One or two sentences for the class (plain text).
    views : tuple of str
        Stage views shown (names of
        :data:`smoe_gui.ui.control.lecture_steps.VIEW_NAMES`); the others are empty frames.
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


@dataclass(frozen=True)
class KernelKind:
    """A kind of kernel an initial model of a method holds (how view 4 draws it).

    Attributes
    ----------
    key : str
        Category name (also the colour key of the window's theme).
    label : str
        What it is, for the legend, the hover label and the kernel panel.
    hue : int
        Hue in degrees (0-359) of its markers; the palette sets the lightness.
    minor : bool
        Drawn with smaller markers and hidden with the background kernels
        (kernels that tile the image rather than follow its content).
    """

    key: str
    label: str
    hue: int
    minor: bool = False


@runtime_checkable
class Method(Protocol):
    """What every initialisation method provides (one object per method).

    Attributes
    ----------
    name : str
        Identifier used by ``--method``, the parameter files, the model files
        and the experiment records (lower case, no spaces or commas).
    label : str
        The method selector's text.
    stages : tuple of str
        Stage names in order; the keys of ``Initialization.timings_ms``.
    param_groups : tuple of str
        Parameter-table groups (``ParamSpec.group``) whose parameters change
        this method's placement; the groups no method lists serve every method.
    reads : tuple of str
        The parameters of its ``param_groups`` that it reads (names of
        :data:`smoe_gui.core.params.PARAM_SPECS`); empty: every one of them.
        The window disables the others while the method is selected
        (:func:`smoe_gui.core.params.param_users`).
    lecture : tuple of LectureStep
        The method's lecture, ending with the reconstruction and the training.
    stage_titles : mapping of str to str
        Titles of the stage views that differ from the edge method's.
    kernel_kinds : tuple of KernelKind
        The kinds of kernel of its initial models, in drawing order.
    legend : tuple of str
        The stage-view legend entries its results use (keys of
        :data:`smoe_gui.ui.views.legend.ENTRIES`).
    hue : int
        Hue (degrees) of its training curves in the window.
    plot_style : mapping of str to str
        Matplotlib ``color`` / ``marker`` of its points in experiment figures.

    Optional (read with ``getattr``; :class:`~smoe_gui.core.methods.base.BaseMethod`
    has them): ``long_name`` (its name in running text, "AS-SMoE") and
    ``reports_progress`` (a long initialisation that reports its progress
    through :mod:`smoe_gui.core.work`, so the window shows it and a Cancel button).
    """

    name: str
    label: str
    stages: tuple[str, ...]
    param_groups: tuple[str, ...]
    reads: tuple[str, ...]
    lecture: tuple[LectureStep, ...]
    stage_titles: Mapping[str, str]
    kernel_kinds: tuple[KernelKind, ...]
    legend: tuple[str, ...]
    hue: int
    plot_style: Mapping[str, str]

    def initialize(
        self, image: NDArray[Any], params: Params | None = None, *, workers: int | None = None
    ) -> Initialization:
        """Initialise a model of ``image``
        (see :func:`smoe_gui.core.methods.pipeline.initialize`)."""
        ...

    def plan(self, image: NDArray[Any], params: Params, budget: int) -> KernelPlan:
        """Parameters for at most ``budget`` initial kernels (``budget.plan_budget``)."""
        ...

    def caption(self, view: str, stages: str, counts: Mapping[str, int]) -> str:
        """Caption of stage view ``view`` ("edges", "segments", "reduced") for a
        result whose stages are called ``stages``; ``counts`` holds e.g. ``superpixels``."""
        ...

    def summary_text(self, init: Initialization) -> str:
        """The status bar's counts of a result (one line, no colour note)."""
        ...


_REQUIRED = ("name", "label", "stages", "initialize", "plan")
_lock = threading.RLock()
_methods: dict[str, Method] = {}
_loaded = {"builtins": False, "plugins": False}


def _check(method: object) -> Method:
    missing = [a for a in _REQUIRED if not hasattr(method, a)]
    if missing:
        raise TypeError(f"{method!r} is not a method: it lacks {', '.join(missing)}")
    name = getattr(method, "name", None)
    if not isinstance(name, str) or not name or any(c in name for c in ", \t\n"):
        raise ValueError(f"a method name must be a non-empty word without commas, got {name!r}")
    return method  # type: ignore[return-value]


def register(method: Method, *, replace: bool = False) -> Method:
    """Add ``method`` to the registry (after the methods already there); returns it.

    Raises
    ------
    TypeError
        When ``method`` lacks the protocol's ``name``, ``label``, ``stages``,
        ``initialize`` or ``plan``.
    ValueError
        For a bad name, or a name already registered (unless ``replace``).
    """
    method = _check(method)
    with _lock:
        if method.name in _methods and not replace and _methods[method.name] is not method:
            raise ValueError(f"a method named {method.name!r} is already registered")
        _methods[method.name] = method
    return method


def unregister(name: str) -> None:
    """Remove method ``name`` (nothing when it is not registered)."""
    with _lock:
        _methods.pop(name, None)


def _load_builtins() -> None:
    with _lock:
        if _loaded["builtins"]:
            return
        _loaded["builtins"] = True
        earlier = dict(_methods)
        _methods.clear()
        for path in BUILTIN_MODULES:
            register(importlib.import_module(path).METHOD)
        for method in earlier.values():  # registered before the first look-up: after them
            register(method, replace=True)


def _entry_points() -> Sequence[Any]:
    from importlib.metadata import entry_points

    return tuple(entry_points(group=ENTRY_POINT_GROUP))


def load_entry_points() -> list[str]:
    """Register the methods of the entry-point group :data:`ENTRY_POINT_GROUP`.

    Runs once on the first look-up; call it again to pick up plug-ins installed
    since.  A plug-in that cannot be imported, is not a method, or reuses a
    registered name is skipped with a :class:`RuntimeWarning`.

    Returns
    -------
    list of str
        The names registered by this call.
    """
    _load_builtins()
    added: list[str] = []
    with _lock:
        _loaded["plugins"] = True
        for ep in _entry_points():
            try:
                obj = ep.load()
                method = obj() if callable(obj) and not hasattr(obj, "name") else obj
                method = _check(method)
                if _methods.get(method.name) is method:
                    continue
                register(method)
            except Exception as exc:  # a broken plug-in must not stop the program
                warnings.warn(
                    f"method plug-in {getattr(ep, 'name', ep)!r} "
                    f"({getattr(ep, 'value', '?')}) skipped: {type(exc).__name__}: "
                    f"{one_line(exc)}",
                    RuntimeWarning,
                    stacklevel=2,
                )
                continue
            added.append(method.name)
    return added


def _ensure_loaded() -> None:
    if not _loaded["builtins"]:
        _load_builtins()
    if not _loaded["plugins"]:
        load_entry_points()


def names() -> tuple[str, ...]:
    """The registered method names: the built-in ones first, the default first of all."""
    _ensure_loaded()
    return tuple(_methods)


def all() -> tuple[Method, ...]:  # noqa: A001 - the registry's own vocabulary
    """Every registered method, in the order of :func:`names`."""
    _ensure_loaded()
    return tuple(_methods.values())


def default() -> str:
    """The default method's name (the first built-in one: the paper's)."""
    return names()[0]


def get(name: object) -> Method:
    """The method called ``name``.

    Raises
    ------
    ValueError
        One line naming the known methods.
    """
    _ensure_loaded()
    method = _methods.get(name) if isinstance(name, str) else None
    if method is None:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(_methods)}")
    return method


class MethodNames(Sequence[str]):
    """A live, read-only view of :func:`names` (what ``params.METHODS`` is):
    indexing, ``in``, ``len`` and iteration read the registry each time, so a
    method registered later is offered everywhere.

    Parameters
    ----------
    where : callable, optional
        ``where(method) -> bool``: only the methods it accepts (e.g. the
        segment methods, ``pipeline.SEGMENT_METHODS``).
    """

    def __init__(self, where: Callable[[Method], bool] | None = None) -> None:
        self._where = where

    def _names(self) -> tuple[str, ...]:
        if self._where is None:
            return names()
        return tuple(m.name for m in all() if self._where(m))

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, item: object) -> bool:
        return item in self._names()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return self._names() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._names())

    def __repr__(self) -> str:
        return repr(self._names())
