"""The parameter table: validation, JSON round trip, CLI assignments."""

from __future__ import annotations

import dataclasses
import json

import pytest

from smoe_gui.core.params import PARAM_SPECS, Params, spec


def test_defaults_match_table_and_issue() -> None:
    p = Params()
    for s in PARAM_SPECS:
        assert getattr(p, s.name) == s.default
        assert s.help and s.ref and s.label
    assert p.lam == 0.1 and p.expert_eta == 0.1
    for name in ("canny_sigma", "canny_low", "canny_high", "lam", "max_pts", "delta_mu",
                 "expert_eta", "expert_iters", "seed"):
        spec(name)


def test_frozen_and_replace() -> None:
    p = Params()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.lam = 0.5  # type: ignore[misc]
    q = p.replace(lam=0.5, max_pts=42)
    assert (q.lam, q.max_pts) == (0.5, 42)
    assert p.lam == 0.1


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"lam": 1.5}, ["lam", "1.5", "[0, 1]"]),
        ({"canny_low": -0.1}, ["canny_low", "-0.1"]),
        ({"max_pts": 0}, ["max_pts", "0", "[1, 100000]"]),
        ({"max_pts": 2.5}, ["max_pts", "2.5"]),
        ({"delta_mu": float("nan")}, ["delta_mu", "nan"]),
        ({"canny_low": 0.5, "canny_high": 0.3}, ["canny_low", "canny_high"]),
        ({"background_kernels": "maybe"}, ["background_kernels"]),
    ],
)
def test_bad_value_names_parameter_value_and_range(changes: dict, words: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        Params().replace(**changes)
    for word in words:
        assert word in str(info.value)


def test_unknown_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown parameter 'sigma'"):
        Params().replace(sigma=1.0)


def test_json_round_trip_text_and_file(tmp_path) -> None:
    p = Params().replace(lam=0.25, max_pts=123, background_kernels=False, seed=7)
    assert Params.from_json(p.to_json()) == p
    path = tmp_path / "p.json"
    path.write_text(p.to_json())
    assert Params.from_json(path) == p
    assert Params.from_json(str(path)) == p
    assert list(json.loads(p.to_json())) == [s.name for s in PARAM_SPECS]


def test_partial_json_takes_defaults() -> None:
    assert Params.from_json('{"lam": 0.3}') == Params(lam=0.3)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ('{"lam": 0.3', "malformed JSON"),
        ('{"nope": 1}', "unknown parameter 'nope'"),
        ('{"lam": 7}', "'lam'"),
        ('{"max_pts": "many"}', "'max_pts'"),
    ],
)
def test_bad_json(text: str, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        Params.from_json(text)


def test_missing_and_list_json(tmp_path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        Params.from_json(tmp_path / "missing.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        Params.from_json(tmp_path / "list.json")


def test_assignments_parse_types() -> None:
    p = Params().with_assignments(["max_pts=300", "lam=0.5", "background_kernels=false"])
    assert p.max_pts == 300 and isinstance(p.max_pts, int)
    assert p.lam == 0.5 and p.background_kernels is False
    with pytest.raises(ValueError, match="NAME=VALUE"):
        Params().with_assignments(["max_pts"])
    with pytest.raises(ValueError, match="unknown parameter"):
        Params().with_assignments(["foo=1"])


def test_digest_changes_with_values() -> None:
    assert Params().digest() == Params().digest()
    assert Params().digest() != Params(lam=0.2).digest()


def test_tooltip_has_help_range_and_reference() -> None:
    tip = spec("lam").tooltip()
    assert spec("lam").help in tip and "[0, 1]" in tip and "Eq." in tip


def test_every_parameter_says_what_it_visibly_changes() -> None:
    from smoe_gui.core.params import PARAM_SPECS

    for s in PARAM_SPECS:
        assert s.effect, s.name
        assert s.tooltip().startswith(
            s.effect
        )  # the visible effect first, then range and reference
        assert s.range_text() in s.tooltip() and s.ref in s.tooltip()


def test_each_method_declares_the_parameters_it_reads() -> None:
    from smoe_gui.core import registry
    from smoe_gui.core.params import param_users

    groups = {s.name: s.group for s in PARAM_SPECS}
    for method in registry.all():
        for name in method.reads:  # names of the table, in the method's own groups
            assert groups[name] in method.param_groups, (method.name, name)
    assert param_users("as_steps") == ("as-smoe",)  # S-SMoE never reads the local fits
    assert param_users("superpixel_threshold") == ("s-smoe", "as-smoe")
    assert param_users("segment_steering") == ("edge",)  # the grid only counts the edge kernels
    assert param_users("canny_sigma") == ("edge", "grid")
    assert param_users("lr_mu") is None and param_users("n_kernels") is None  # every method's
    with pytest.raises(ValueError, match="unknown parameter"):
        param_users("nope")


def test_a_method_reading_a_parameter_outside_its_groups_is_refused() -> None:
    from smoe_gui.core.methods.base import BaseMethod

    def place(*_args: object) -> None:
        raise AssertionError("never placed")

    with pytest.raises(ValueError, match="reads canny_sigma, not parameters of its groups"):
        BaseMethod(name="odd", label="odd", place=place, param_groups=("segments",),  # type: ignore[arg-type]
                   reads=("canny_sigma",))
