"""Fuzzing: every parameter across its whole range, awkward images, through
``initialize()`` and 20 steps of ``fit()``.

The promise to a classroom pushing every slider to its end: no exception but a
clear :class:`ValueError` (one line that names what is wrong), and never a NaN
in the model, the events or the reconstruction.

What is held small so that a case takes about a second: ``max_steps`` (1-20,
the fine-tuning steps) and ``time_budget`` (its low end, 0.01 s, up to 0.5 s;
it also bounds ``tile_steps``, which spans its whole range); images are at most
32x32, or 8-9 pixels by at most 256.  Every other parameter is drawn from its
whole range in :data:`~smoe_gui.core.params.PARAM_SPECS`, its two ends and its
default included.  ``benchmarks/bench_fuzz.py`` runs more cases on larger
images.

Which ``ValueError`` is expected is decided from the input before the call:

* a side below :data:`~smoe_gui.core.io.image.MIN_SIDE` -> ``initialize`` and
  ``fit`` refuse the image, naming the minimum size;
* ``tile_size`` larger than the image is no error: ``fit`` clamps it to the
  image's longer side and says so in its ``merge`` event;
* a ``prune_threshold`` so high that the tile phase prunes every kernel ->
  ``fit`` stops with "every kernel was pruned", naming ``prune_threshold``.

Anything else must succeed.  The number of cases run is printed in the pytest
summary ("fuzz cases run: N").
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smoe_gui.core.io.image import MIN_SIDE
from smoe_gui.core.methods.pipeline import SEGMENT_METHODS
from smoe_gui.core.params import METHODS, PARAM_SPECS, Params, ParamSpec, spec

#: Outcomes of the cases run in this session (printed in the terminal summary).
OUTCOMES: Counter[str] = Counter()

#: Parameters held small to bound the time of a case, with their fuzzed range.
# the cost of a case stays small: AS-SMoE local fits and kernel budgets are bounded here
BOUNDED = {
    "max_steps": (1, 20),
    "time_budget": (0.01, 0.5),
    "as_steps": (1, 20),
    "as_doublings": (0, 2),
    "as_initial_kernels": (1, 8),
    "n_kernels": (0, 400),
}

IMAGE_KINDS = ("constant", "noise", "disc", "stripes", "ramp", "checker")


@dataclass(frozen=True)
class ImageCase:
    """A fuzzed image: how it is made, its size and its random seed."""

    kind: str
    height: int
    width: int
    level: float
    seed: int

    def make(self) -> np.ndarray:
        """The (height, width) float32 image in [0, 1]."""
        return make_image(self.kind, self.height, self.width, self.level, self.seed)


def make_image(kind: str, height: int, width: int, level: float, seed: int) -> np.ndarray:
    """A synthetic gray image of shape (height, width), float32 in [0, 1].

    ``level`` is the value of a constant image and the contrast of the others.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    if kind == "constant":
        img = np.full((height, width), level)
    elif kind == "noise":
        img = rng.random((height, width))
    elif kind == "disc":
        r = max(1.0, min(height, width) / 3)
        img = np.where((xx - width / 2) ** 2 + (yy - height / 2) ** 2 < r * r, level, 1 - level)
    elif kind == "stripes":
        img = ((xx + yy) // max(1, min(height, width) // 4) % 2) * level
    elif kind == "ramp":
        img = level * xx / max(1, width - 1)
    elif kind == "checker":
        img = ((xx // 2 + yy // 2) % 2).astype(np.float64)
    else:
        raise ValueError(f"unknown image kind {kind!r}")
    return np.clip(img, 0.0, 1.0).astype(np.float32)


# --- strategies -----------------------------------------------------------------------


def value_strategy(s: ParamSpec) -> st.SearchStrategy[Any]:
    """Values of one parameter: its ends and default often, anything in range otherwise."""
    low, high = BOUNDED.get(s.name, (s.low, s.high))
    if s.kind is bool:
        return st.booleans()
    if s.kind is str:
        return st.sampled_from(s.choices)
    ends = st.sampled_from(sorted({low, high, min(max(s.default, low), high)}))
    if s.kind is int:
        inner = st.integers(int(low), int(high))
        if s.log_scale and high / max(low, 1) > 100:
            inner = st.floats(math.log(max(low, 1)), math.log(high)).map(
                lambda v: int(min(high, max(low, round(math.exp(v)))))
            )
        return st.one_of(ends.map(int), inner)
    inner_f = st.floats(low, high, allow_nan=False, allow_infinity=False)
    if s.log_scale and low > 0:
        inner_f = st.floats(math.log(low), math.log(high)).map(
            lambda v: min(high, max(low, math.exp(v)))
        )
    elif s.log_scale:  # range starts at 0: zero, or log-uniform from 1e-9 of the top
        inner_f = st.one_of(
            st.just(0.0),
            st.floats(math.log(high) - 20, math.log(high)).map(lambda v: min(high, math.exp(v))),
        )
    return st.one_of(ends.map(float), inner_f)


@st.composite
def params_strategy(draw: st.DrawFn) -> Params:
    """A valid Params with every field drawn (``canny_low <= canny_high`` kept)."""
    values = {s.name: draw(value_strategy(s)) for s in PARAM_SPECS}
    if values["canny_low"] > values["canny_high"]:
        values["canny_low"], values["canny_high"] = values["canny_high"], values["canny_low"]
    return Params(**values)


@st.composite
def image_strategy(draw: st.DrawFn) -> ImageCase:
    """Constant, noise and edge images: tiny, small, thin, or below the minimum size."""
    kind = draw(st.sampled_from(IMAGE_KINDS))
    shape_kind = draw(st.sampled_from(["tiny", "small", "thin", "too-small"]))
    if shape_kind == "tiny":
        h = w = draw(st.integers(MIN_SIDE, MIN_SIDE + 4))
    elif shape_kind == "small":
        h, w = draw(st.integers(MIN_SIDE, 32)), draw(st.integers(MIN_SIDE, 32))
    elif shape_kind == "thin":
        h, w = draw(st.integers(MIN_SIDE, MIN_SIDE + 1)), draw(st.integers(64, 256))
    else:  # 1-pixel wide and other sizes below MIN_SIDE on one side
        h, w = draw(st.integers(1, MIN_SIDE - 1)), draw(st.integers(1, 64))
    if draw(st.booleans()):
        h, w = w, h
    level = draw(st.sampled_from([0.0, 1.0, 0.5]) | st.floats(0.0, 1.0))
    return ImageCase(kind, h, w, level, draw(st.integers(0, 2**16)))


@st.composite
def case_strategy(draw: st.DrawFn) -> tuple[ImageCase, Params, str]:
    """An image, parameters and a method.

    ``tile_size`` spans its whole range one time in four; otherwise, when the
    image allows, it is drawn from the sizes that fit the image (its smallest
    value and the image's longer side included), so that most cases train.
    """
    case = draw(image_strategy())
    params = draw(params_strategy())
    longest = max(case.height, case.width)
    tile = spec("tile_size")
    if longest >= tile.low and draw(st.integers(0, 3)) > 0:
        size = draw(st.sampled_from([int(tile.low), longest]) | st.integers(int(tile.low), longest))
        params = params.replace(tile_size=size)
    return case, params, draw(st.sampled_from(METHODS))


# --- the check --------------------------------------------------------------------------


def _assert_clear(exc: ValueError, *needles: str) -> None:
    message = str(exc)
    assert message and "\n" not in message, f"unclear ValueError: {message!r}"
    assert any(n in message for n in needles), f"ValueError does not say why: {message!r}"


def _assert_finite_model(model: Any, where: str) -> None:
    assert model is not None, f"{where}: no model"
    for name in ("mu", "A", "m", "log_alpha"):
        arr = np.asarray(getattr(model, name))
        assert np.all(np.isfinite(arr)), f"{where}: NaN/inf in {name}"
    assert model.n_kernels >= 1


def run_case(image: np.ndarray, params: Params, method: str = "edge") -> str:
    """Run one case through ``initialize`` and ``fit``; returns the outcome's name.

    Raises
    ------
    AssertionError
        When an unexpected ValueError, a vague message or a NaN shows up; any
        other exception propagates as it is.
    """
    from smoe_gui.core import fit, initialize
    from smoe_gui.core.rendering.culled import render

    h, w = image.shape
    if min(h, w) < MIN_SIDE:
        for call in (
            lambda: initialize(image, params, method),
            lambda: next(iter(fit(image, params))),
        ):
            try:
                call()
            except ValueError as exc:
                _assert_clear(exc, f"{MIN_SIDE}x{MIN_SIDE}")
            else:
                raise AssertionError(f"a {w}x{h} image was accepted")
        return "image refused"

    try:
        init = initialize(image, params, method)
    except ValueError as exc:
        # a kernel budget the edge/grid planner cannot meet (too small for the
        # image's background kernels, or under one pair) is a clear refusal
        if not (params.n_kernels and method not in SEGMENT_METHODS and "budget" in str(exc)):
            raise
        _assert_clear(exc, "budget")
        return "budget refused"
    _assert_finite_model(init.model, "initialize")
    assert init.model.height == h and init.model.width == w
    assert not any(math.isnan(v) for v in init.expert_psnr), "NaN in the expert PSNR history"

    events = []
    try:
        for event in fit(image, params, init, snapshot_interval_s=0.0):
            assert not math.isnan(event.loss), f"NaN loss at step {event.step} ({event.phase})"
            assert not math.isnan(event.psnr), f"NaN PSNR at step {event.step} ({event.phase})"
            if event.model is not None:
                _assert_finite_model(event.model, f"fit step {event.step}")
            events.append(event)
    except ValueError as exc:
        # a prune threshold near its top can remove every kernel: a clear refusal
        if "every kernel was pruned" not in str(exc):
            raise
        _assert_clear(exc, "prune_threshold")
        assert all(e.phase == "tiles" for e in events)
        return "all kernels pruned"
    assert events and events[-1].final, "fit ended without its final event"
    if params.tile_size > max(h, w):
        merge = [e for e in events if e.phase == "merge" and not e.final]
        assert merge and "clamped" in (merge[0].message or ""), "tile size clamped silently"
    finetune = [e for e in events if e.phase == "finetune" and not e.final]
    assert len(finetune) <= params.max_steps
    final = events[-1].model
    _assert_finite_model(final, "fit result")
    recon = render(final)
    assert recon.shape == ((h, w) if params.channels == "gray" else (h, w, 3))
    assert np.all(np.isfinite(recon)), "NaN/inf in the reconstruction"
    return "fitted"


# --- the tests ------------------------------------------------------------------------------

_LOW = {
    s.name: BOUNDED.get(s.name, (s.low, s.high))[0] for s in PARAM_SPECS if s.kind in (int, float)
}
_HIGH = {
    s.name: BOUNDED.get(s.name, (s.low, s.high))[1] for s in PARAM_SPECS if s.kind in (int, float)
}
_HIGH["canny_low"] = 1.0


def _ends(values: dict[str, float], **extra: Any) -> Params:
    """Params with every numeric field at ``values`` (low or high ends), then ``extra``."""
    defaults = Params().to_dict()
    fields: dict[str, Any] = {
        k: (int(v) if isinstance(defaults[k], int) else v) for k, v in values.items()
    }
    fields.update(extra)
    return Params(**fields)


MAX_EXAMPLES = int(os.environ.get("SMOE_FUZZ_EXAMPLES", "40"))


@pytest.fixture(scope="module", autouse=True)
def _report_count(request: pytest.FixtureRequest) -> None:
    """Print the number of fuzz cases in the terminal summary."""

    class _Summary:
        def pytest_terminal_summary(self, terminalreporter: Any) -> None:
            total = sum(OUTCOMES.values())
            detail = ", ".join(f"{k}: {v}" for k, v in sorted(OUTCOMES.items()))
            terminalreporter.write_line(f"fuzz cases run: {total} ({detail})")

    plugin = _Summary()
    if not request.config.pluginmanager.is_registered(plugin):
        request.config.pluginmanager.register(plugin, "smoe-fuzz-summary")


@pytest.mark.slow
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("SMOE_FUZZ_RANDOM") is None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(drawn=case_strategy())
@example(drawn=(ImageCase("constant", 8, 8, 0.0, 0), _ends(_LOW, tile_size=16), "edge"))
@example(
    drawn=(ImageCase("constant", 16, 16, 1.0, 0), _ends(_LOW, background_kernels=False), "edge")
)
@example(drawn=(ImageCase("noise", 16, 16, 1.0, 1), _ends(_HIGH, tile_size=16), "edge"))
@example(
    drawn=(ImageCase("disc", 8, 200, 1.0, 2), _ends(_HIGH, tile_size=200, expert_iters=40), "edge")
)
@example(drawn=(ImageCase("noise", 1, 40, 1.0, 3), Params(), "edge"))
@example(
    drawn=(
        ImageCase("disc", 300, 9, 0.0, 4),
        Params(max_steps=20, time_budget=0.2, tile_size=16),
        "grid",
    )
)
def test_fuzz_initialize_and_fit(drawn: tuple[ImageCase, Params, str]) -> None:
    case, params, method = drawn
    outcome = run_case(case.make(), params, method)
    OUTCOMES[outcome] += 1


@pytest.mark.parametrize("shape", [(1, 1), (1, 64), (64, 1), (7, 7), (7, 300), (0, 10)])
def test_too_small_image_is_a_clear_value_error(shape: tuple[int, int]) -> None:
    from smoe_gui.core import initialize

    with pytest.raises(ValueError, match=f"at least {MIN_SIDE}x{MIN_SIDE}"):
        initialize(np.zeros(shape, np.float32), Params())


@pytest.mark.parametrize(
    "bad",
    [
        np.full((16, 16), np.nan, np.float32),
        np.full((16, 16), 2.0),
        np.zeros((16, 16, 4)),
        np.zeros(16),
    ],
    ids=["nan", "out-of-range", "four-channels", "1-d"],
)
def test_bad_arrays_are_clear_value_errors(bad: np.ndarray) -> None:
    from smoe_gui.core import fit, initialize

    with pytest.raises(ValueError) as info:
        initialize(bad, Params())
    _assert_clear(info.value, "image")
    with pytest.raises(ValueError):
        next(iter(fit(bad, Params())))


def test_every_out_of_range_value_is_refused() -> None:
    """The sliders' ends are the table's ends: one step past either is a clear error."""
    for s in PARAM_SPECS:
        if s.kind is bool:
            continue
        step = 1 if s.kind is int else max(abs(s.high), 1.0) * 1e-6
        for bad in (s.low - step, s.high + step, float("nan")):
            with pytest.raises(ValueError, match=s.name):
                Params().replace(**{s.name: bad})
