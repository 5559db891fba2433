"""`smoe --help` and the sub-commands' help describe every method, from the method table."""

from __future__ import annotations

import argparse
import re

import pytest

import smoe_gui.cli as cli
from smoe_gui.core.params import METHODS


def _sub_help(parser: argparse.ArgumentParser) -> dict[str, str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: sub.format_help() for name, sub in action.choices.items()}


def _flat(text: str) -> str:
    """One line; a name argparse wrapped at its hyphen ("s-" / "smoe") joined again."""
    return re.sub(r"-\s+", "-", " ".join(text.split()))


def test_help_lists_every_method() -> None:
    parser = cli.build_parser()
    top = _flat(parser.format_help())
    subs = {k: _flat(v) for k, v in _sub_help(parser).items()}
    for method in METHODS:
        assert method in top
        for command in ("init", "fit", "experiment", "tune"):
            assert method in subs[command], (command, method)
    # no longer says init is the edge method only, nor that experiment compares two
    assert "run the edge-aligned initialisation" not in top
    assert "edge and grid" not in top and "edge and grid" not in subs["experiment"]
    assert "(edge-aligned or grid)" not in subs["fit"]


def test_help_follows_the_method_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """The help texts read the method names from the table, none is written in them."""
    monkeypatch.setattr(cli, "METHODS", (*METHODS, "new-method"))
    assert cli.methods_text().endswith("or new-method")
    parser = cli.build_parser()
    top = _flat(parser.format_help())
    subs = {k: _flat(v) for k, v in _sub_help(parser).items()}
    assert top.count("new-method") >= 2  # the description and the init and experiment lines
    for command in ("init", "fit", "experiment", "tune"):
        assert "new-method" in subs[command], command
