"""Every code block of README.md and docs/ runs (the rule is in docs/architecture.md).

* A fence must name its language: ``python``, ``sh`` or ``text``.
* ``python`` blocks run as a script in a fresh Python process.
* ``sh`` blocks hold ``smoe ...`` commands (or ``.venv/bin/smoe ...``, the script in
  the checkout's environment); each runs as ``python -m smoe_gui.cli ...`` and must
  exit with status 0.  ``source .venv/bin/activate`` (what a reader types first) is
  allowed and does nothing here: the test already runs the checkout's code.  Any
  other command in a ``sh`` block fails the test unless the block is marked as
  shown only.
* ``text`` blocks (usage synopses, printed output, trees) are never run.
* A block right after a line ``<!-- not run: REASON -->`` is shown only (the reason is
  required): the desktop app, ``make`` targets, runs of many minutes.

The blocks of one document run in order, in one temporary folder that holds a link
``resources`` to the checkout's resources (so ``resources/samples/parrots.png``
works), with the checkout on ``PYTHONPATH``; a block may read what an earlier block
of the same document wrote.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = ("python", "sh", "text")
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(\S.*?)\s*-->$")
TIMEOUT_S = 600
#: How a reader runs the command line of a checkout: on PATH after activating, or by its path.
SMOE_NAMES = ("smoe", ".venv/bin/smoe")
#: Activating the checkout's environment (a no-op in the test, which runs the checkout's code).
ACTIVATE = (["source", ".venv/bin/activate"], [".", ".venv/bin/activate"])


@dataclass(frozen=True)
class Block:
    """One fenced code block of a document."""

    document: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    not_run: str | None  # the reason, when marked as shown only

    def where(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def code_blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = re.match(r"^(\s*)(```+)\s*(\S*)", lines[i])
        if not fence:
            i += 1
            continue
        marker = NOT_RUN.match(lines[i - 1].strip()) if i > 0 else None
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence.group(2)):
            body.append(lines[i])
            i += 1
        i += 1
        blocks.append(
            Block(path, start + 1, fence.group(3), "\n".join(body) + "\n",
                  marker.group(1) if marker else None)
        )
    return blocks


def sh_commands(code: str) -> list[list[str]]:
    """The commands of a ``sh`` block: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", code)
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(words)
    return commands


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.setdefault("MPLBACKEND", "Agg")
    return env


def run_block(block: Block, cwd: Path) -> None:
    """Run one block in ``cwd``; fails the test with the block's place and output."""
    env = _environment()
    if block.language == "python":
        runs = [[sys.executable, "-c", block.code]]
    else:
        runs = []
        for words in sh_commands(block.code):
            if words in ACTIVATE:
                continue
            if words[0] not in SMOE_NAMES:
                pytest.fail(
                    f"{block.where()}: `{' '.join(words)}` is not a `smoe` command: mark the "
                    "block `<!-- not run: REASON -->` or make it a `text` block"
                )
            runs.append([sys.executable, "-m", "smoe_gui.cli", *words[1:]])
    for argv in runs:
        done = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
        )
        if done.returncode != 0:
            shown = block.code if block.language == "python" else " ".join(argv[3:])
            pytest.fail(
                f"{block.where()}: exit status {done.returncode}\n{shown}\n"
                f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
            )


def test_every_fence_names_a_known_language() -> None:
    bad = [
        f"{b.where()}: ```{b.language}"
        for doc in DOCUMENTS for b in code_blocks(doc) if b.language not in LANGUAGES
    ]
    assert not bad, "fences must say python, sh or text:\n" + "\n".join(bad)


def test_the_rules_find_blocks_of_every_kind() -> None:
    """The parser sees what the documents hold (a guard against a parser that finds nothing)."""
    blocks = [b for doc in DOCUMENTS for b in code_blocks(doc)]
    runnable = [b for b in blocks if b.not_run is None and b.language != "text"]
    assert {b.language for b in runnable} == {"python", "sh"}
    assert any(b.not_run for b in blocks)
    readme = [b for b in code_blocks(ROOT / "README.md") if b.language == "python"]
    assert readme and "render(model)" in readme[0].code


def test_the_parser_splits_commands() -> None:
    code = (
        "smoe fit a.png \\\n   --out o   # a comment\n\n"
        "# only a comment\nsmoe init b.png --out 'x y'\n"
    )
    assert sh_commands(code) == [
        ["smoe", "fit", "a.png", "--out", "o"],
        ["smoe", "init", "b.png", "--out", "x y"],
    ]
    text = "intro\n<!-- not run: starts a window -->\n```sh\nsmoe-gui\n```\n```text\nusage\n```\n"
    path = ROOT / "tests" / "_docs_parser_probe.md"
    try:
        path.write_text(text, encoding="utf-8")
        blocks = code_blocks(path)
    finally:
        path.unlink()
    assert [(b.language, b.not_run) for b in blocks] == [("sh", "starts a window"), ("text", None)]


def test_the_readme_says_how_to_reach_the_commands() -> None:
    """After `make run` / `make test` the commands are in .venv/bin, not on PATH: the
    README says so right after the make block, and its first command-line example
    activates the environment (the docs test treats that line as a no-op)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after_make = text[text.index("make test"):text.index("## The desktop application")]
    assert "source .venv/bin/activate" in after_make and ".venv/bin/smoe" in after_make
    assert "command not found" in after_make
    first_cli = next(b for b in code_blocks(ROOT / "README.md")
                     if b.language == "sh" and b.not_run is None)
    commands = sh_commands(first_cli.code)
    assert commands[0] in ACTIVATE and all(c[0] in SMOE_NAMES for c in commands[1:])
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert ".venv" in makefile  # the environment the README names is the one make builds


def _runnable(document: Path) -> list[Block]:
    return [b for b in code_blocks(document) if b.language != "text" and b.not_run is None]


#: documents with at least one block to run (the others hold only text blocks)
RUNNABLE = [d for d in DOCUMENTS if _runnable(d)]


def test_the_docs_have_blocks_to_run() -> None:
    assert any(d.name == "README.md" for d in RUNNABLE)


@pytest.mark.parametrize("document", RUNNABLE, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_blocks_run(document: Path, tmp_path: Path) -> None:
    blocks = _runnable(document)
    (tmp_path / "resources").symlink_to(ROOT / "resources", target_is_directory=True)
    for block in blocks:
        run_block(block, tmp_path)
