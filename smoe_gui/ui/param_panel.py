"""The parameter panel, generated from :data:`smoe_gui.core.params.PARAM_SPECS`.

Each numeric parameter gets a slider (logarithmic where the table says so) and
a spin box that holds the value (``objectName`` ``param-<name>``); each boolean
a check box.  Tooltips are :meth:`ParamSpec.tooltip` (help, range, paper ref).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core import registry
from ..core.params import (
    METHODS,
    PARAM_SPECS,
    Params,
    ParamSpec,
    Value,
    check_method,
    param_users,
)
from .control.init_status import short_name

__all__ = [
    "GROUP_METHODS",
    "GROUP_TITLES",
    "INIT_GROUPS",
    "ParamPanel",
    "SliderScale",
    "group_title",
    "unused_note",
]

#: Panel group titles, in the pipeline's order.
GROUP_TITLES: dict[str, str] = {
    "edges": "1  Canny edges",
    "reduction": "2-3  Segments and reduction",
    "placement": "4  Kernel placement",
    "segments": "Superpixels (S-SMoE, AS-SMoE)",
    "experts": "5  Experts",
    "training": "6  Training",
    "general": "General",
}

class _GroupMethods(Mapping[str, tuple[str, ...]]):
    """:data:`GROUP_METHODS`, read from each method's ``param_groups``."""

    def _table(self) -> dict[str, tuple[str, ...]]:
        table: dict[str, list[str]] = {}
        for method in registry.all():
            for group in getattr(method, "param_groups", ()):
                table.setdefault(group, []).append(method.name)
        return {group: tuple(users) for group, users in table.items()}

    def __getitem__(self, group: str) -> tuple[str, ...]:
        return self._table()[group]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


#: The methods whose initialisation a group's parameters change (groups no
#: method lists serve every method): each method's ``param_groups``.  The grid
#: places as many kernels as the edge method would, so the edge stages'
#: parameters change it too.
GROUP_METHODS: Mapping[str, tuple[str, ...]] = _GroupMethods()


def group_title(group: str, method: str) -> str:
    """The title of parameter group ``group`` while ``method`` is selected: it
    says when the group does not change that method's initialisation (its
    values still serve a Compare with a method that uses them)."""
    title = GROUP_TITLES.get(group, group)
    users = GROUP_METHODS.get(group)
    return title if users is None or method in users else f"{title}  (not used by {method})"


def unused_note(name: str, method: str) -> str:
    """One line saying that ``method`` does not read parameter ``name`` and
    which methods do (:func:`~smoe_gui.core.params.param_users`); ``""`` when
    ``method`` reads it or every method does."""
    users = param_users(name)
    if users is None or method in users:
        return ""
    who = " and ".join(short_name(u) for u in users) or "no registered method"
    return (
        f"Not read by {short_name(method)}: only {who} "
        f"use{'s' if len(users) == 1 else ''} it."
    )


class _MethodText(Mapping[str, str]):
    """:data:`METHOD_TEXT`, read from each method's ``label``."""

    def __getitem__(self, name: str) -> str:
        if name not in registry.names():
            raise KeyError(name)
        return str(getattr(registry.get(name), "label", "") or name)

    def __iter__(self) -> Iterator[str]:
        return iter(registry.names())

    def __len__(self) -> int:
        return len(registry.names())


#: The method selector's texts (each method's ``label``).
METHOD_TEXT: Mapping[str, str] = _MethodText()

#: The Gray/Colour switch: the ``channels`` parameter's values and their button texts.
CHANNEL_TEXT: dict[str, str] = {"gray": "Gray", "rgb": "Colour"}

#: Groups whose parameters change the initialisation (the stage views).
INIT_GROUPS = frozenset({"edges", "reduction", "placement", "segments", "experts", "general"})

SLIDER_STEPS = 1000


class SliderScale:
    """Maps a parameter's value to an integer slider position ``0..SLIDER_STEPS``.

    Linear, or logarithmic when ``spec.log_scale``.  A logarithmic range that
    starts at 0 keeps position 0 for the value 0 and spreads positions
    ``1..N`` logarithmically from a small positive value to ``high``.
    """

    def __init__(self, spec: ParamSpec, steps: int = SLIDER_STEPS) -> None:
        self.spec = spec
        self.steps = steps
        self.low = float(spec.low)
        self.high = float(spec.high)
        self.log = bool(spec.log_scale) and self.high > 0
        if self.log:
            if self.low > 0:
                self.log_low = self.low
                self.zero_slot = False
            else:
                d = float(spec.default)
                self.log_low = d / 1000.0 if d > 0 else self.high * 1e-6
                self.zero_slot = True

    def to_position(self, value: float) -> int:
        v = float(value)
        if not self.log:
            span = self.high - self.low
            return int(round((v - self.low) / span * self.steps)) if span > 0 else 0
        if self.zero_slot:
            if v <= 0:
                return 0
            first, n = 1, self.steps - 1
        else:
            first, n = 0, self.steps
        v = min(max(v, self.log_low), self.high)
        frac = (math.log(v) - math.log(self.log_low)) / (
            math.log(self.high) - math.log(self.log_low)
        )
        return int(round(first + frac * n))

    def to_value(self, position: int) -> float:
        p = int(position)
        if not self.log:
            v = self.low + (self.high - self.low) * p / self.steps
        elif self.zero_slot and p <= 0:
            v = 0.0
        else:
            first, n = (1, self.steps - 1) if self.zero_slot else (0, self.steps)
            frac = (p - first) / n
            v = math.exp(
                math.log(self.log_low) + frac * (math.log(self.high) - math.log(self.log_low))
            )
            v = float(f"{v:.3g}")  # round to 3 significant digits: readable values
        if self.spec.kind is int:
            v = float(round(v))
        return min(max(v, self.low), self.high)


class FloatSpinBox(QDoubleSpinBox):
    """A double spin box that shows values with ``%g`` (so 1e-07 is readable)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(12)

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt override)
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 (Qt override)
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:  # type: ignore[override]
        stripped = text.strip()
        try:
            value = float(stripped)
        except ValueError:
            ok = stripped in ("", "-", "+", ".") or stripped.lower().endswith(("e", "e-", "e+"))
            state = QValidator.State.Intermediate if ok else QValidator.State.Invalid
            return (state, text, pos)
        if self.minimum() <= value <= self.maximum():
            return (QValidator.State.Acceptable, text, pos)
        return (QValidator.State.Intermediate, text, pos)


def _linear_step(spec: ParamSpec) -> float:
    span = float(spec.high) - float(spec.low)
    return 10.0 ** math.floor(math.log10(span / 100.0)) if span > 0 else 1.0


class ParamPanel(QWidget):
    """Sliders, spin boxes and check boxes for every parameter, plus the method.

    Signals
    -------
    params_changed(object, str, bool)
        The new :class:`Params`, the name of the parameter that changed, and
        whether a slider is still being dragged.
    method_changed(str)
        The method selected (one of ``METHODS``).
    """

    params_changed = Signal(object, str, bool)
    method_changed = Signal(str)

    def __init__(self, params: Params | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("param-panel")
        self._params = params if params is not None else Params()
        self._widgets: dict[str, QWidget] = {}
        self._sliders: dict[str, QSlider] = {}
        self._scales: dict[str, SliderScale] = {}
        self._syncing = False
        self._group_boxes: dict[str, QGroupBox] = {}
        #: Each parameter's row (label, slider, field) and its tooltip.
        self._rows: dict[str, tuple[QWidget, ...]] = {}
        self._tips: dict[str, str] = {}

        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)

        top = QHBoxLayout()
        top.addWidget(QLabel("Initialisation"))
        self.method_combo = QComboBox()
        self.method_combo.setObjectName("param-method")
        for method in METHODS:
            self.method_combo.addItem(METHOD_TEXT.get(method, method), method)
        self.method_combo.setToolTip(
            "How the kernels are placed: edge-aligned pairs (the paper, Sec. III), a\n"
            "regular grid with the same kernel budget (the baseline it is compared with),\n"
            "S-SMoE (one kernel per DBSCAN superpixel) or AS-SMoE (per-superpixel fits)."
        )
        self.method_combo.currentIndexChanged.connect(self._on_method)
        top.addWidget(self.method_combo, 1)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setObjectName("param-reset")
        self.reset_button.setToolTip("Set every parameter to its default value")
        self.reset_button.clicked.connect(self.reset_to_defaults)
        top.addWidget(self.reset_button)
        outer.addLayout(top)

        # The Gray/Colour switch: the `channels` parameter (its one home is
        # Params; the General group's combo shows the same value).
        colour_row = QHBoxLayout()
        colour_row.addWidget(QLabel("Image"))
        self.channel_buttons = QButtonGroup(self)
        self.channel_buttons.setExclusive(True)
        for i, (value, text) in enumerate(CHANNEL_TEXT.items()):
            button = QPushButton(text)
            button.setObjectName(f"channels-{value}")
            button.setCheckable(True)
            button.setToolTip(
                "Gray: model the BT.601 luma (the paper).\n"
                "Colour: one gate, three experts (R, G, B) per kernel; views 4-5 and the\n"
                "exports in colour, PSNR over all channels. Edges and superpixels use the luma."
            )
            # as wide as the text: both stay in view in the narrow panel at 1280x720
            # (a push button's size hint is wider, and the panel scrolls sideways)
            button.setFixedWidth(button.fontMetrics().horizontalAdvance(text) + 22)
            self.channel_buttons.addButton(button, i)
            colour_row.addWidget(button)
        colour_row.addStretch(1)
        self.channel_buttons.idClicked.connect(self._on_channel_button)
        outer.addLayout(colour_row)

        groups: dict[str, list[ParamSpec]] = {}
        for s in PARAM_SPECS:
            groups.setdefault(s.group, []).append(s)
        for group, title in GROUP_TITLES.items():
            if group not in groups:
                continue
            box = QGroupBox(title)
            box.setObjectName(f"param-group-{group}")
            self._group_boxes[group] = box
            grid = QGridLayout(box)
            grid.setContentsMargins(6, 4, 6, 4)
            grid.setVerticalSpacing(2)
            grid.setColumnStretch(1, 1)
            for row, s in enumerate(groups[group]):
                self._add_row(grid, row, s)
            outer.addWidget(box)
        for name, title in (
            (g, GROUP_TITLES.get(g, g)) for g in groups if g not in GROUP_TITLES
        ):  # groups the table may add later
            box = QGroupBox(title)
            grid = QGridLayout(box)
            for row, s in enumerate(groups[name]):
                self._add_row(grid, row, s)
            outer.addWidget(box)
        outer.addStretch(1)
        self.set_params(self._params, emit=False)
        self._show_method_groups()

    def _show_method_groups(self) -> None:
        """Say in the group titles which groups the selected method does not
        use, and disable each parameter it does not read
        (:func:`~smoe_gui.core.params.param_users`), its tooltip naming the
        methods that read it."""
        method = self.method()
        for group, box in self._group_boxes.items():
            box.setTitle(group_title(group, method))
            users = GROUP_METHODS.get(group)
            box.setToolTip(
                ""
                if users is None or method in users
                else f"These parameters do not change the {method} initialisation; they serve "
                f"{' and '.join(users)} (choose one of them to set them, e.g. for a Compare)."
            )
        for name, widgets in self._rows.items():
            note = unused_note(name, method)
            tip = self._tips[name] if not note else f"{note}\n{self._tips[name]}"
            for widget in widgets:
                widget.setEnabled(not note)
                widget.setToolTip(tip)

    # -- building ----------------------------------------------------------------
    def _add_row(self, grid: QGridLayout, row: int, s: ParamSpec) -> None:
        tip = s.tooltip()
        # no "(kernels)" after "initial kernels": the unit only where the label does not say it
        unit = f" ({s.unit})" if s.unit and s.unit != "1" and s.unit not in s.label.lower() else ""
        if s.kind is bool:
            box = QCheckBox(s.label)
            box.setObjectName(f"param-{s.name}")
            box.setToolTip(tip)
            box.toggled.connect(lambda _checked, n=s.name: self._on_value(n))
            grid.addWidget(box, row, 0, 1, 3)
            self._widgets[s.name] = box
            self._rows[s.name], self._tips[s.name] = (box,), tip
            return
        if s.kind is str:  # a choice: a combo box of the table's values
            choice_label = QLabel(s.label)
            choice_label.setToolTip(tip)
            combo = QComboBox()
            combo.setObjectName(f"param-{s.name}")
            combo.setToolTip(tip)
            for value in s.choices:
                combo.addItem(value, value)
            combo.currentIndexChanged.connect(lambda _i, n=s.name: self._on_value(n))
            grid.addWidget(choice_label, row, 0)
            grid.addWidget(combo, row, 1, 1, 2)
            self._widgets[s.name] = combo
            self._rows[s.name], self._tips[s.name] = (choice_label, combo), tip
            return
        label = QLabel(s.label + unit)
        label.setToolTip(tip)
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setObjectName(f"slider-{s.name}")
        slider.setRange(0, SLIDER_STEPS)
        slider.setToolTip(tip)
        slider.setMinimumWidth(70)
        spin: QAbstractSpinBox
        if s.kind is int:
            ispin = QSpinBox()
            ispin.setRange(int(s.low), int(s.high))
            if s.log_scale:
                ispin.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
            ispin.valueChanged.connect(lambda _v, n=s.name: self._on_value(n))
            spin = ispin
        else:
            fspin = FloatSpinBox()
            fspin.setRange(float(s.low), float(s.high))
            if s.log_scale:
                fspin.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
                fspin.setSingleStep(0.1)
            else:
                fspin.setSingleStep(_linear_step(s))
            fspin.valueChanged.connect(lambda _v, n=s.name: self._on_value(n))
            spin = fspin
        spin.setObjectName(f"param-{s.name}")
        spin.setToolTip(tip)
        spin.setKeyboardTracking(False)
        spin.setFixedWidth(92)
        spin.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        slider.valueChanged.connect(lambda pos, n=s.name: self._on_slider(n, pos))
        slider.sliderReleased.connect(lambda n=s.name: self._emit(n, dragging=False))
        grid.addWidget(label, row, 0)
        grid.addWidget(slider, row, 1)
        grid.addWidget(spin, row, 2)
        self._widgets[s.name] = spin
        self._rows[s.name], self._tips[s.name] = (label, slider, spin), tip
        self._sliders[s.name] = slider
        self._scales[s.name] = SliderScale(s)

    # -- access ----------------------------------------------------------------------
    def params(self) -> Params:
        """The parameters the panel shows."""
        return self._params

    def method(self) -> str:
        """The selected initialisation method (one of ``METHODS``)."""
        return str(self.method_combo.currentData())

    def widget(self, name: str) -> QWidget:
        """The widget holding the value of parameter ``name``."""
        return self._widgets[name]

    def slider(self, name: str) -> QSlider:
        """The slider of numeric parameter ``name``."""
        return self._sliders[name]

    def set_method(self, method: str, emit: bool = True) -> None:
        """Select one of :data:`smoe_gui.core.params.METHODS` (ValueError otherwise)."""
        index = self.method_combo.findData(check_method(method))
        if not emit:
            self.method_combo.blockSignals(True)
        self.method_combo.setCurrentIndex(index)
        self.method_combo.blockSignals(False)
        self._show_method_groups()

    def set_params(self, params: Params, emit: bool = True) -> None:
        """Show ``params``; emit one ``params_changed`` (name ``"*"``) when asked."""
        self._syncing = True
        try:
            for s in PARAM_SPECS:
                if s.name in self._widgets:
                    self._show_value(s, getattr(params, s.name))
        finally:
            self._syncing = False
        self._params = params
        if emit:
            self.params_changed.emit(params, "*", False)

    def reset_to_defaults(self) -> None:
        """Set every parameter to its default (one recompute)."""
        self.set_params(Params(), emit=True)

    # -- syncing ---------------------------------------------------------------------------
    def _show_value(self, s: ParamSpec, value: Value) -> None:
        w = self._widgets[s.name]
        w.blockSignals(True)
        shown = ""
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QComboBox):
            w.setCurrentIndex(w.findData(value))
        elif isinstance(w, QSpinBox):
            w.setValue(int(value))
            shown = w.textFromValue(w.value())
        elif isinstance(w, QDoubleSpinBox):
            w.setValue(float(value))
            shown = w.textFromValue(w.value())
        if isinstance(w, (QSpinBox, QDoubleSpinBox)) and w.cleanText() != shown:
            w.lineEdit().setText(shown)  # text typed but not taken: show the value held
        w.blockSignals(False)
        if s.name in self._sliders:
            sl = self._sliders[s.name]
            sl.blockSignals(True)
            sl.setValue(self._scales[s.name].to_position(float(value)))
            sl.blockSignals(False)
        if s.name == "channels":
            self._show_channels(str(value))

    def _show_channels(self, value: str) -> None:
        """Check the Gray/Colour button of ``value``."""
        button = (
            self.channel_buttons.button(list(CHANNEL_TEXT).index(value))
            if value in CHANNEL_TEXT
            else None
        )
        if button is not None and not button.isChecked():
            button.setChecked(True)

    def _on_channel_button(self, index: int) -> None:
        """A Gray/Colour button: set ``channels`` as its combo would."""
        combo = self._widgets["channels"]
        assert isinstance(combo, QComboBox)
        combo.setCurrentIndex(combo.findData(list(CHANNEL_TEXT)[index]))  # emits through _on_value

    def channels(self) -> str:
        """The Gray/Colour switch's value (``params().channels``)."""
        return self._params.channels

    def _read(self, name: str) -> Value:
        w = self._widgets[name]
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QComboBox):
            return str(w.currentData())
        if isinstance(w, QSpinBox):
            return int(w.value())
        assert isinstance(w, QDoubleSpinBox)
        return float(w.value())

    def _on_slider(self, name: str, position: int) -> None:
        if self._syncing:
            return
        value = self._scales[name].to_value(position)
        w = self._widgets[name]
        w.blockSignals(True)
        if isinstance(w, QSpinBox):
            w.setValue(int(value))
        elif isinstance(w, QDoubleSpinBox):
            w.setValue(value)
        w.blockSignals(False)
        self._commit(name, dragging=self._sliders[name].isSliderDown())

    def _on_value(self, name: str) -> None:
        if self._syncing:
            return
        if name in self._sliders:
            sl = self._sliders[name]
            sl.blockSignals(True)
            sl.setValue(self._scales[name].to_position(float(self._read(name))))
            sl.blockSignals(False)
        self._commit(name, dragging=False)

    def _commit(self, name: str, dragging: bool) -> None:
        changes: dict[str, Value] = {name: self._read(name)}
        # Keep Canny's hysteresis thresholds ordered: move the other one along.
        if name == "canny_low" and float(changes[name]) > self._params.canny_high:
            changes["canny_high"] = changes[name]
        elif name == "canny_high" and float(changes[name]) < self._params.canny_low:
            changes["canny_low"] = changes[name]
        try:
            params = self._params.replace(**changes)
        except ValueError:
            self._show_value(
                next(s for s in PARAM_SPECS if s.name == name), getattr(self._params, name)
            )
            return
        for other in changes:
            if other != name:
                self._syncing = True
                self._show_value(next(s for s in PARAM_SPECS if s.name == other), changes[other])
                self._syncing = False
        if name == "channels":
            self._show_channels(str(changes[name]))
        if params == self._params:
            return
        self._params = params
        self.params_changed.emit(params, name, dragging)

    def _emit(self, name: str, dragging: bool) -> None:
        self.params_changed.emit(self._params, name, dragging)

    def _on_method(self, _index: int) -> None:
        self._show_method_groups()
        self.method_changed.emit(self.method())
