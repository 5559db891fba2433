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


def _readme_synopsis() -> dict[str, str]:
    """The README's ``smoe COMMAND ...`` synopsis block (its ``text`` fence), per command."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Command line", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    out: dict[str, str] = {}
    command = ""
    for line in block.splitlines():
        m = re.match(r"smoe (\w+)", line)
        if m:
            command = m.group(1)
        if command:
            out[command] = out.get(command, "") + " " + line
    return out


def test_the_readme_synopsis_matches_the_parsers() -> None:
    """Every option the README's synopsis shows exists, every command is there, and
    the options its own examples use (``--max-size`` for fit and tune) are shown."""
    synopsis = _readme_synopsis()
    subs = {k: v for k, v in _sub_help(cli.build_parser()).items()}
    assert set(synopsis) == set(subs)
    for command, text in synopsis.items():
        for option in set(re.findall(r"--[a-z][a-z-]*", text)):
            assert re.search(rf"{option}\b", subs[command]), (command, option)
    for command in ("init", "fit", "tune", "experiment"):
        assert "--max-size" in synopsis[command], command
