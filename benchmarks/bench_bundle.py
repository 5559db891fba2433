"""Bundle benchmark: size of the PyInstaller bundle and its start-up time.

Prints the size of ``dist/smoe-gui`` (and its largest parts), the time from
starting ``dist/smoe-gui/smoe-gui`` to its main window's first paint
(offscreen; several runs, the first one after a page-cache drop when that is
allowed), the same time for the source tree's Python for comparison, and the
result and duration of ``smoe-gui --self-test`` and ``smoe --version`` run from
the bundle.

    make bundle && .venv/bin/python benchmarks/bench_bundle.py [--runs 3] [--bundle dist/smoe-gui]

Without a bundle it says so and exits 0 (``make bench`` runs it); exits 1 when
the bundle fails a check.  Timings are
noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE_TAG = "SMOE_GUI_FIRST_PAINT"


def tree_size(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` (links not followed)."""
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            p = Path(dirpath) / name
            if not p.is_symlink():
                total += p.stat().st_size
    return total


def largest_parts(internal: Path, n: int = 6) -> list[tuple[str, int]]:
    """The ``n`` largest entries directly under the bundle's ``_internal`` folder."""
    sizes = []
    for p in internal.iterdir():
        sizes.append(
            (p.name, tree_size(p) if p.is_dir() else (0 if p.is_symlink() else p.stat().st_size))
        )
    return sorted(sizes, key=lambda item: -item[1])[:n]


def time_to_first_paint(command: list[str], timeout_s: float = 180.0) -> tuple[float, str]:
    """Seconds from starting ``command`` to its first painted main window, and the
    resource folder it used.

    Raises
    ------
    RuntimeError
        If the program exits or times out without painting.
    """
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", SMOE_GUI_STARTUP_PROBE="1")
    start = time.time()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    for line in out.splitlines():
        if line.startswith(PROBE_TAG):
            _tag, stamp, folder = line.split(" ", 2)
            return float(stamp) - start, folder
    raise RuntimeError(
        f"{command[0]} never painted its window (exit {proc.returncode}): {err.strip()[-500:]}"
    )


def drop_page_cache() -> bool:
    """Ask the kernel to drop clean caches (root only); True when it worked."""
    try:
        os.sync()
        with open(
            "/proc/sys/vm/drop_caches", "w", encoding="ascii"
        ) as handle:  # atomic-ok: kernel control file
            handle.write("1\n")
        return True
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "dist" / "smoe-gui")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-cold", action="store_true", help="do not drop the page cache first")
    args = parser.parse_args(argv)
    exe = args.bundle / "smoe-gui"
    if not exe.is_file():
        print(f"bundle benchmark skipped: no bundle at {args.bundle} (run 'make bundle' first)")
        return 0
    ok = True

    size = tree_size(args.bundle)
    n_files = sum(len(f) for _d, _s, f in os.walk(args.bundle))
    print(f"bundle {args.bundle}: {size / 2**20:.0f} MiB in {n_files} files")
    internal = args.bundle / "_internal"
    if internal.is_dir():
        parts = ", ".join(f"{name} {b / 2**20:.0f}" for name, b in largest_parts(internal))
        print(f"  largest parts (MiB): {parts}")

    cold = None
    if not args.no_cold and drop_page_cache():
        cold, folder = time_to_first_paint([str(exe)])
        print(f"start-up to first drawn window, bundle, cold page cache: {cold:.2f} s")
    warm = []
    folder = ""
    for _ in range(max(1, args.runs)):
        seconds, folder = time_to_first_paint([str(exe)])
        warm.append(seconds)
    print(
        f"start-up to first drawn window, bundle, warm: median {statistics.median(warm):.2f} s "
        f"(runs: {', '.join(f'{s:.2f}' for s in warm)})"
    )
    print(f"  resources found at: {folder}")
    if "_internal" not in folder and "_MEI" not in folder:
        print("  FAIL: the bundle did not use its own resources")
        ok = False

    source = []
    for _ in range(max(1, args.runs)):
        seconds, _folder = time_to_first_paint(
            [sys.executable, str(ROOT / "packaging" / "launcher.py")]
        )
        source.append(seconds)
    print(
        f"start-up to first drawn window, source tree (.venv python): median "
        f"{statistics.median(source):.2f} s"
    )

    t0 = time.perf_counter()
    result = subprocess.run(
        [str(exe), "--self-test"],
        capture_output=True,
        text=True,
        env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
        timeout=900,
    )
    status = "passed" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
    print(f"bundle --self-test: {status} in {time.perf_counter() - t0:.1f} s")
    for line in result.stdout.splitlines():
        print("  | " + line)
    if result.returncode != 0:
        print("  | " + result.stderr.strip()[-800:])
        ok = False

    cli = args.bundle / "smoe"
    if cli.exists():
        result = subprocess.run(
            [str(cli), "--version"], capture_output=True, text=True, timeout=120
        )
        print(f"bundle smoe --version: {result.stdout.strip() or result.stderr.strip()[-300:]}")
        ok = ok and result.returncode == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
