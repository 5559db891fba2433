"""The ``smoe`` command: ``init``, ``fit``, ``render``, ``experiment``.

Each sub-command lives in its own module with a ``register(subparsers)``
function that adds its parser and sets ``func``.  Errors in the input (files,
parameters, values) print one line to stderr and exit with status 2; Ctrl-C
exits with status 130, SIGTERM (what ``timeout`` and cluster schedulers send)
does what Ctrl-C does and exits with status 143.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from ..core.params import METHODS, PARAM_SPECS, Params, spec

__all__ = [
    "EXIT_TERMINATED",
    "add_param_options",
    "fail",
    "interrupted_status",
    "main",
    "methods_text",
    "note_signal",
    "params_from_args",
    "print_note",
    "run",
]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: Exit status after SIGTERM (128 + 15, as a shell reports a process ended by it).
EXIT_TERMINATED = 143

_signals_received: list[int] = []


def note_signal(signum: int) -> None:
    """Remember that ``signum`` (SIGINT or SIGTERM) asked the command to stop."""
    _signals_received.append(signum)


def interrupted_status() -> int:
    """The exit status of a command stopped by a signal: 143 after SIGTERM, else 130."""
    return EXIT_TERMINATED if signal.SIGTERM in _signals_received else EXIT_INTERRUPTED


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM as Ctrl-C: a KeyboardInterrupt where the program is, remembered for the status."""
    note_signal(signum)
    raise KeyboardInterrupt

_COMMAND_MODULES = ("init_cmd", "fit_cmd", "experiment_cmd", "tune_cmd")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.removeprefix("smoe").strip()  # "smoe: error: fit: ..." names it once
        fail(f"{command}: {message}" if command else message)


def fail(message: str) -> None:
    """Print ``smoe: error: message`` on stderr (one line, paths shown safely)
    and exit with status 2."""
    from ..core.errors import show_text

    line = " ".join(show_text(str(message)).split())
    print(f"smoe: error: {line}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def methods_text() -> str:
    """The initialisation methods for help texts, from
    :data:`smoe_gui.core.params.METHODS` (``"edge, grid, s-smoe or as-smoe"``)."""
    names = list(METHODS)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def max_size_option(value: object) -> int | None:
    """``--max-size`` checked by the one rule (:func:`smoe_gui.core.io.image.check_max_size`);
    a bad value exits with a one-line error naming the option."""
    from ..core.io.image import check_max_size

    try:
        return check_max_size(value)
    except ValueError as exc:
        fail(f"--max-size: {exc}")
        raise  # unreachable: fail() exits


def print_note(message: str) -> None:
    """Print ``smoe: note: message`` on stderr (how an input was mapped, a downscale;
    paths shown safely)."""
    from ..core.errors import show_text

    line = " ".join(show_text(str(message)).split())
    print(f"smoe: note: {line}", file=sys.stderr)


def add_param_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--params FILE.json``, ``--set NAME=VALUE`` and ``--kernels N`` to a sub-command."""
    names = ", ".join(s.name for s in PARAM_SPECS)
    parser.add_argument("--params", metavar="FILE.json", help="parameter file (JSON)")
    parser.add_argument(
        "--kernels", metavar="N", default=None,
        help="kernel budget: initialise between 0.95*N and N kernels, whatever the method "
        "(the parameter n_kernels; 0: off)",
    )
    parser.add_argument(
        "--channels", choices=("gray", "rgb"), default=None,
        help="gray: model the luma (the paper); rgb: colour, one gate and three experts per "
        "kernel (sets the parameter channels)",
    )
    parser.add_argument(
        "--set",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help=f"override one parameter (repeatable); names: {names}",
    )


def params_from_args(args: argparse.Namespace) -> Params:
    """Params from ``--params``, then ``--set``, then ``--kernels`` (raises ValueError on bad "
    "input)."""
    params = Params.from_json(Path(args.params)) if args.params else Params()
    try:
        params = params.with_assignments(args.set)
    except ValueError as exc:
        raise ValueError(f"--set: {exc}") from None
    kernels = getattr(args, "kernels", None)
    if kernels is not None:
        try:
            params = params.replace(n_kernels=spec("n_kernels").coerce(kernels))
        except ValueError:
            raise ValueError(
                f"--kernels: {kernels!r} is not a kernel budget; expected a whole number "
                f"in {spec('n_kernels').range_text()}"
            ) from None
    if getattr(args, "channels", None) is not None:
        params = params.replace(channels=args.channels)
    return params


def build_parser() -> argparse.ArgumentParser:
    """The ``smoe`` parser with every sub-command registered."""
    from .. import __version__

    parser = _Parser(
        prog="smoe",
        description=(
            "Steered Mixture-of-Experts image modelling: initialise a model of an image "
            f"({methods_text()}), train it, render it, compare the methods and tune "
            "their parameters."
        ),
    )
    parser.add_argument("--version", action="version", version=f"smoe-gui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def run() -> NoReturn:
    """The ``smoe`` program: :func:`main`, then exit with its status.

    Before the interpreter's shutdown every object is frozen out of the
    garbage collector (``gc.freeze``): the shutdown then frees the memory
    without searching the whole heap of torch, numba and the fit for cycles,
    about 2 s at load 6 after a fit (``smoe tune``: 3 % of its trials' time).
    """
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()
    gc.disable()
    sys.exit(status)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``smoe`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _signals_received.clear()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        status = args.func(args)
    except (ValueError, OSError, MemoryError) as exc:
        from ..core.errors import one_line

        fail(one_line(exc))
    except KeyboardInterrupt:
        print(
            "smoe: interrupted" + (" (SIGTERM)" if signal.SIGTERM in _signals_received else ""),
            file=sys.stderr,
        )
        return interrupted_status()
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    if status == EXIT_INTERRUPTED:
        return interrupted_status()
    return int(status or 0)
