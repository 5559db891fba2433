"""Benchmark of the image loader on hostile and ordinary inputs.

Prints, each measured in a fresh Python process (so that the peak memory is the
load's own):

1. A PNG decompression bomb: a 1.6 MB file (zlib of zeros) whose header declares
   40000x40000 8-bit pixels (1.6 GB decoded), loaded with and without
   ``max_size``: the wall time until the refusal (median of 3 calls, and the first
   call, which imports Pillow's plugins) and the growth of the peak RSS during the
   calls.  Target: refused within 1 s and 200 MB.
2. The same with a tiny file (one compressed row) declaring the same size.
3. An ordinary file, parrots (768x512 RGB PNG), for comparison: the median load time
   over ``--runs`` loads, and the peak RSS growth of one load.

Usage: ``python benchmarks/bench_inputs.py [--runs 10] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MEASURE = r"""
import json, resource, statistics, sys, time
from smoe_gui.core.io.image import load_image
path, max_size, runs = sys.argv[1], (int(sys.argv[2]) or None), int(sys.argv[3])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times, outcome = [], ""
for _ in range(runs):
    start = time.perf_counter()
    try:
        image = load_image(path, max_size=max_size)
        outcome = f"loaded {image.shape[1]}x{image.shape[0]}"
    except ValueError as exc:
        outcome = "refused: " + str(exc).split(": ", 1)[1]
    times.append(time.perf_counter() - start)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"median_s": statistics.median(times), "first_s": times[0],
                  "rss_growth_mib": grown / 1024, "outcome": outcome}))
"""


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png_bomb(path: Path, width: int, height: int, full: bool) -> Path:
    """An 8-bit gray PNG declaring ``width`` x ``height``; ``full``: every row's data
    present (zlib of zeros, about 1/1000 of the decoded size), else one row."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    if full:
        comp = zlib.compressobj(9)
        row_block = b"\0" * ((width + 1) * 256)
        parts = [comp.compress(row_block) for _ in range(height // 256)]
        parts.append(comp.compress(b"\0" * ((width + 1) * (height % 256))))
        parts.append(comp.flush())
        idat = b"".join(parts)
    else:
        idat = zlib.compress(b"\0" * (width + 1), 9)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )
    return path


def measure(path: Path, max_size: int | None, runs: int) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), str(max_size or 0), str(runs)],
        capture_output=True, text=True, env=env, check=True, cwd=ROOT,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="loads of the ordinary file")
    parser.add_argument("--keep", type=Path, help="write the generated files here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        full = write_png_bomb(folder / "bomb-40000.png", 40000, 40000, full=True)
        tiny = write_png_bomb(folder / "bomb-40000-tiny.png", 40000, 40000, full=False)
        parrots = ROOT / "resources" / "samples" / "parrots.png"
        cases = [
            (f"bomb 40000x40000, {full.stat().st_size / 1e6:.1f} MB file", full, None, 3),
            ("same, --max-size 1024", full, 1024, 3),
            (f"bomb 40000x40000, {tiny.stat().st_size} B file", tiny, None, 3),
            ("parrots 768x512 RGB PNG", parrots, None, args.runs),
        ]
        print(f"{'input':42} {'median':>9} {'first':>9} {'peak RSS +':>11}  outcome")
        for label, path, max_size, runs in cases:
            r = measure(path, max_size, runs)
            print(
                f"{label:42} {float(r['median_s']) * 1e3:7.1f} ms "
                f"{float(r['first_s']) * 1e3:7.1f} ms "
                f"{float(r['rss_growth_mib']):8.1f} MiB  {r['outcome']}"  # type: ignore[arg-type]
            )
        print("target: a bomb is refused within 1 s and 200 MB")


if __name__ == "__main__":
    main()
