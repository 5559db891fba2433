"""The window while its Tune panel runs a sweep: event-loop stalls and slider latency.

    python benchmarks/bench_tune_gui.py [IMAGE] [--trials 4] [--budget 4] [--probe-only]
        [--compare] [--compare-thread] [--compare-hold]

Drives the real window offscreen as ``benchmarks/bench_gui.py`` does (the same
event-loop waits, the same 5 ms QTimer probe, the same "every stage view shows
the newest result, painted" condition) and starts a grid sweep in the Tune
panel (``delta_mu`` over ``--trials`` points, ``--budget`` training seconds
each; the whole study runs in a spawned child process, the window's GUI thread
polls its messages).  While the sweep runs it prints:

* the largest event-loop stall (the probe's longest gap beyond its 5 ms;
  target <= 50 ms), with the idle window's gap as the machine's baseline and
  the three longest stalls with what happened around them (a trial result
  arriving, the sweep's end: its figures);
* the p95 latency from a parameter change (a spin box value set, as the user
  does) to all five stage views painted with the new result (target <= 100
  ms), the changes made one after another for as long as the sweep runs;
* how long Start held the GUI thread, which of Optuna, SQLAlchemy and
  matplotlib the window's process imported during the sweep, the CPU time of
  the window's process (every thread of it; a figure the load barely moves) and
  how long Stop took to end the study (a second, short sweep stopped during its
  second trial).

``--compare-hold`` first runs the same sweep with the window not holding the
study's running fit while it computes and draws the stages (as before the
panel did), then the panel's own, side by side under the same load.
``--compare-thread`` then runs the same sweep the way the panel did before
(the study's loop on a thread of the window's process, its trials in a worker
process), so that both are measured side by side under the same load.

The machine is shared: a trial's worker process takes a core, so the
latencies include waiting for the CPU.  Say the load.
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STALL_TARGET_MS = 50.0
LATENCY_TARGET_MS = 100.0
HEAVY = ("optuna", "sqlalchemy", "matplotlib")


class ThreadStudy:
    """The panel's study as it ran before the child process, for ``--compare-thread``:
    ``run_tune`` on a thread of the window's process, its trials in a worker process,
    its reports queued for the panel's poll (:class:`smoe_gui.core.tune.StudyProcess`'s
    interface and messages)."""

    def __init__(self, config: Any, out: Path) -> None:
        from smoe_gui.core.events import StopToken

        self.config, self.out = replace(config, processes=True), out
        self.messages: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.token = StopToken()
        self.thread: threading.Thread | None = None
        self.final = False
        self.pid = os.getpid()

    @property
    def running(self) -> bool:
        return self.thread is not None and not self.final

    def start(self) -> None:
        from smoe_gui.core.errors import one_line
        from smoe_gui.core.tune.study import TuneObserver

        put = self.messages.put

        class Observer(TuneObserver):
            def start(self, total: int, done: int, workers: int) -> None:
                put(("start", {"total": total, "done": done, "workers": workers}))

            def trial_finished(self, row: dict[str, Any]) -> None:
                put(("trial", dict(row)))

            def note(self, text: str) -> None:
                put(("note", text))

        def work() -> None:
            from smoe_gui.core.tune import run_tune

            try:
                put(("done", run_tune(self.config, self.out, observer=Observer(),
                                      stop=self.token)))
            except Exception as exc:  # noqa: BLE001
                put(("error", one_line(exc)))

        self.thread = threading.Thread(target=work, name="smoe-tune", daemon=True)
        self.thread.start()

    def poll(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                break
        self.final = self.final or any(kind in ("done", "error") for kind, _ in out)
        return out

    def stop(self) -> None:
        self.token.stop()

    def close(self, timeout_s: float = 5.0) -> None:
        self.stop()
        if self.thread is not None:
            self.thread.join(timeout_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "image", nargs="?", default=str(ROOT / "resources" / "samples" / "parrots.png"))
    parser.add_argument("--trials", type=int, default=4, help="grid points (default 4)")
    parser.add_argument("--budget", type=float, default=4.0,
                        help="training seconds per trial (default 4)")
    parser.add_argument("--probe-only", action="store_true",
                        help="no parameter changes during the sweep (the stalls alone)")
    parser.add_argument("--compare", action="store_true",
                        help="first a sweep with the worker at full priority on every core "
                             "(as before the panel lowered it), then the panel's own")
    parser.add_argument("--compare-thread", action="store_true",
                        help="after the panel's sweep the same with the study's loop on a "
                             "thread of the window's process (as before the child process)")
    parser.add_argument("--compare-hold", action="store_true",
                        help="first a sweep with the window not holding the study while it "
                             "draws the stages (as before), then the panel's own")
    args = parser.parse_args(argv)
    if args.trials < 2:
        parser.error("--trials must be at least 2")

    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from smoe_gui.ui import create_main_window

    tmp = tempfile.mkdtemp(prefix="smoe-bench-tune-gui-")
    settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
    window = create_main_window(args.image, settings=settings)
    app = QApplication.instance()
    window.resize(1600, 1000)
    window.show()
    panel = window.tune_panel
    panel.out_root = Path(tmp) / "tune"

    def spin(cond, timeout: float) -> bool:
        """Run the event loop idle (as app.exec() does) until ``cond()``."""
        if cond():
            return True
        loop = QEventLoop()
        check = QTimer()
        check.setInterval(1)
        check.timeout.connect(lambda: loop.quit() if cond() else None)
        deadline = QTimer()
        deadline.setSingleShot(True)
        deadline.timeout.connect(loop.quit)
        check.start()
        deadline.start(int(timeout * 1000))
        loop.exec()
        check.stop()
        deadline.stop()
        return bool(cond())

    def all_shown() -> bool:
        rid = window.latest_request
        return rid > 0 and all(v.shown_id == rid for v in window.stages.views.values())

    def wait_shown(timeout: float) -> bool:
        """Run the event loop until the newest stages are shown, then paint them."""
        if not all_shown():
            loop = QEventLoop()

            def on_shown(_rid: int) -> None:
                if all_shown():
                    loop.quit()

            window.stages_shown.connect(on_shown)
            deadline = QTimer()
            deadline.setSingleShot(True)
            deadline.timeout.connect(loop.quit)
            deadline.start(int(timeout * 1000))
            loop.exec()
            deadline.stop()
            window.stages_shown.disconnect(on_shown)
        app.processEvents()  # the paint events of the five views
        return all_shown()

    if not spin(all_shown, 300):
        print("the first stages never arrived:", window.last_error)
        return 1
    h, w = window.image.shape
    print(f"image {Path(args.image).name} {w}x{h}; {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}")

    gaps: list[float] = []
    stamps: list[tuple[float, float]] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1e3)
        stamps.append((now, gaps[-1]))
        last[0] = now

    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(tick)
    last[0] = time.perf_counter()
    probe.start()
    spin(lambda: False, 2.0)
    probe.stop()
    idle = sorted(gaps)
    print(f"idle window (machine load baseline): max timer gap {idle[-1]:.0f} ms, "
          f"p99 {idle[int(0.99 * (len(idle) - 1))]:.0f} ms over {len(idle)} ticks")

    from smoe_gui.ui import tune_panel

    widgets = [("canny_sigma", [1.4, 1.6]), ("lam", [0.15, 0.1]), ("max_pts", [480, 500])]

    def changes(count: int, until=None) -> list[float]:
        """Latencies (ms) of parameter changes, ``count`` of them or while ``until()``."""
        out: list[float] = []
        i = 0
        while (until() if until is not None else i < count):
            name, values = widgets[i % len(widgets)]
            t0 = time.perf_counter()
            window.panel.widget(name).setValue(values[(i // len(widgets)) % 2])
            if not wait_shown(60):
                print("a stage result never arrived:", window.last_error)
                break
            out.append((time.perf_counter() - t0) * 1e3)
            i += 1
            spin(lambda: False, 0.2)  # a user does not move a slider without a pause
        return out

    def p95(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]

    if not args.probe_only:
        changes(2)  # warm-up
        quiet = changes(15)
        print(f"parameter change -> all 5 stage views, no sweep: median "
              f"{statistics.median(quiet):.0f} ms, p95 {p95(quiet):.0f} ms")

    def sweep(label: str, steps: int | None = None, stop_in_trial: int = 0) -> None:
        """One sweep; ``stop_in_trial`` > 0: Stop once that trial (1-based) started."""
        arrivals: list[float] = []
        panel.bridge.trial_finished.connect(lambda _row: arrivals.append(time.perf_counter()))
        ended: list[float] = []
        panel.bridge.ended.connect(lambda *_a: ended.append(time.perf_counter()))
        panel.first.combo.setCurrentText("delta_mu")
        panel.first.low.setValue(2.0)
        panel.first.high.setValue(5.0)
        panel.sampler.setCurrentText("grid")
        panel.steps.setValue(steps or args.trials)
        panel.budget.setValue(args.budget)
        gaps.clear()
        stamps.clear()
        modules = set(sys.modules)
        cpu_start = time.process_time()  # every thread of the window's process
        t_start = time.perf_counter()
        if not panel.start():
            raise SystemExit(f"the sweep did not start: {panel.status.text()}")
        start_ms = (time.perf_counter() - t_start) * 1e3
        last[0] = time.perf_counter()
        probe.start()
        if stop_in_trial:
            spin(lambda: (panel.progress or {}).get("trial", -1) >= stop_in_trial - 1
                 or not panel.running, 600)
            t_stop = time.perf_counter()
            panel.stop()
            spin(lambda: not panel.running, 120)
            probe.stop()
            print(f"{label}: Stop during trial {stop_in_trial} -> study ended (finished "
                  f"trials kept, figures written) in {time.perf_counter() - t_stop:.2f} s; "
                  f"{panel.status.text()}")
            return
        if args.probe_only:
            latencies: list[float] = []
            spin(lambda: not panel.running, 600)
        else:
            latencies = changes(0, until=lambda: panel.running)
        spin(lambda: bool(ended), 120)
        probe.stop()
        t_end = time.perf_counter()
        cpu_s = time.process_time() - cpu_start
        app.processEvents()
        rows = panel.rows
        done = sum(r["state"] == "complete" for r in rows)
        print(f"{label}: sweep of {done}/{len(rows)} trials complete of {args.trials}, "
              f"{args.budget:g} s each, in {t_end - t_start:.1f} s; {panel.status.text()}")
        stall = max(gaps) - 5.0 if gaps else float("nan")
        ordered = sorted(gaps)
        ok = "met" if stall <= STALL_TARGET_MS else "MISSED"
        print(f"event loop while the sweep runs: max stall {stall:.0f} ms (target <= "
              f"{STALL_TARGET_MS:g} ms: {ok}), p99 timer gap "
              f"{ordered[int(0.99 * (len(ordered) - 1))]:.0f} ms over {len(ordered)} ticks")
        marks = [(t, "a trial result") for t in arrivals] + [(t, "the sweep's end") for t in ended]
        for when, gap in sorted(stamps, key=lambda sg: -sg[1])[:3]:
            near = min(marks, key=lambda m: abs(m[0] - when), default=None)
            where = f", {abs(near[0] - when) * 1e3:.0f} ms from {near[1]}" if near else ""
            print(f"  stall {gap - 5.0:.0f} ms at t = {when - t_start:.2f} s{where}")
        if latencies:
            ok = "met" if p95(latencies) <= LATENCY_TARGET_MS else "MISSED"
            print(f"parameter change -> all 5 stage views while the sweep runs: "
                  f"{len(latencies)} changes, median {statistics.median(latencies):.0f} ms, "
                  f"p95 {p95(latencies):.0f} ms (target <= {LATENCY_TARGET_MS:g} ms: {ok})")
        heavy = sorted({m.split(".")[0] for m in set(sys.modules) - modules} & set(HEAVY))
        pid = getattr(panel.process, "pid", None)
        where = "the window's process" if pid == os.getpid() else f"child process {pid}"
        print(f"  the study ran in {where}; Start held the GUI thread {start_ms:.0f} ms; "
              f"imported in the window's process during the sweep: "
              f"{', '.join(heavy) if heavy else 'none of ' + ', '.join(HEAVY)}")
        wall_s = t_end - t_start
        print(f"  CPU time of the window's process (all its threads) during the sweep: "
              f"{cpu_s:.1f} s, {100 * cpu_s / wall_s:.0f} % of its {wall_s:.1f} s")

    if args.compare:
        panel_settings = tune_panel.worker_settings
        tune_panel.worker_settings = lambda: (os.cpu_count() or 1, 0)
        try:
            sweep("worker at full priority on every core")
        finally:
            tune_panel.worker_settings = panel_settings
    if args.compare_hold:
        window.session.busy_listeners.remove(panel.window_busy)
        try:
            sweep("study not held while the window draws the stages (before)")
        finally:
            window.session.busy_listeners.append(panel.window_busy)
    threads, nice = tune_panel.worker_settings()
    held = "held while the window draws the stages"
    sweep(f"the panel's study process ({threads} thread(s), nice {nice}, {held})")
    if args.compare_thread:  # after it: this one imports Optuna into the window's process
        child = tune_panel.StudyProcess
        tune_panel.StudyProcess = ThreadStudy
        try:
            sweep("study loop in a thread of the window (before)")
        finally:
            tune_panel.StudyProcess = child
    sweep("Stop", steps=4, stop_in_trial=2)
    print(f"load at the end {os.getloadavg()[0]:.1f}")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
