"""Where work runs: threads of this process, local processes or a Dask cluster.

One home for the executors of the AS-SMoE local fits
(:class:`smoe_gui.core.methods.segment.local_fit.LocalFitRunner`) and of the
experiment's sweep (:mod:`smoe_gui.core.experiment.run`), and of the window's tuning study
(:mod:`smoe_gui.core.tune.child`).  Processes are always
started with ``spawn`` (no forked torch or numba state; the same on Linux,
macOS and Windows).  Qt-free; imports nothing of smoe-gui, so every layer of the
core may use it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from multiprocessing import get_context
from typing import Any, TypeVar

__all__ = [
    "collect", "dask_map", "dask_worker", "pool_map", "spawn_context", "spawn_pool", "stop_pool",
    "thread_map",
]

T = TypeVar("T")
R = TypeVar("R")


def dask_worker() -> Any:
    """The Dask worker this code runs in, or None (no Dask installed, or not in a task).

    A Dask worker has imported ``distributed`` already; elsewhere it is not
    imported here (its import takes 0.3-3 s and holds the GIL, which delayed a
    cancel of the first AS-SMoE local fits by as much)."""
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import get_worker
    except ImportError:
        return None
    try:
        return get_worker()
    except ValueError:
        return None


def spawn_context() -> Any:
    """The ``spawn`` start method's context: its ``Process``, ``Pipe``, ``Queue``
    (a study in a child process, :mod:`smoe_gui.core.tune.child`)."""
    return get_context("spawn")


def spawn_pool(
    workers: int,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes (each runs ``initializer(*initargs)`` first).

    Raises
    ------
    ValueError
        For fewer than one worker.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=spawn_context(), initializer=initializer,
        initargs=initargs,
    )


def stop_pool(executor: ProcessPoolExecutor, join_s: float = 5.0) -> None:
    """Stop ``executor`` at once (after Ctrl-C or an error): drop the waiting work,
    terminate its processes and wait up to ``join_s`` seconds for each."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=join_s)


def collect(
    futures: Sequence[Future[R]],
    on_done: Callable[[int], None] | None = None,
    poll: Callable[[], None] | None = None,
    abort: threading.Event | None = None,
) -> list[R]:
    """The results of ``futures`` in order, reporting each as it ends.

    Parameters
    ----------
    futures : sequence of Future
    on_done : callable ``(index) -> None``, optional
        Called in the calling thread as future ``index`` ends.
    poll : callable ``() -> None``, optional
        Called every 0.1 s while waiting; it stops the wait by raising (e.g. a
        cancel).
    abort : threading.Event, optional
        Set on any exception (a chunk's error, ``poll``'s, Ctrl-C in the waiting
        thread), so that running work that watches it stops; the futures not
        started are cancelled before the exception propagates.
    """
    index = {id(f): i for i, f in enumerate(futures)}
    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()  # raises the work's error here
                if on_done is not None:
                    on_done(index[id(future)])
            if pending and poll is not None:
                poll()
    except BaseException:
        if abort is not None:
            abort.set()
        for future in futures:
            future.cancel()
        raise
    return [f.result() for f in futures]


def thread_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    threads: int,
    on_done: Callable[[int], None] | None = None,
    poll: Callable[[], None] | None = None,
    abort: threading.Event | None = None,
) -> list[R]:
    """``[fn(item) for item in items]`` on ``threads`` threads of this process,
    in order (``on_done``, ``poll``, ``abort``: :func:`collect`)."""
    with ThreadPoolExecutor(max_workers=max(1, int(threads))) as pool:
        return collect([pool.submit(fn, item) for item in items], on_done, poll, abort)


def pool_map(
    executor: Executor,
    fn: Callable[[T], R],
    items: Iterable[T],
    on_done: Callable[[int], None] | None = None,
    poll: Callable[[], None] | None = None,
) -> list[R]:
    """``[fn(item) for item in items]`` on ``executor``, in order (``on_done``,
    ``poll``: :func:`collect`)."""
    return collect([executor.submit(fn, item) for item in items], on_done, poll)


def dask_map(
    client: Any,
    fn: Callable[[T], R],
    items: Sequence[T],
    prefix: str,
    on_done: Callable[[int], None] | None = None,
    poll: Callable[[], None] | None = None,
) -> list[R]:
    """``[fn(item) for item in items]`` as Dask tasks of ``client`` (keys
    ``prefix-0``, ``prefix-1``, ...; ``pure=False``), gathered in order;
    ``poll`` is called once before, ``on_done`` for every item after the gather."""
    if poll is not None:
        poll()
    keys = [f"{prefix}-{i}" for i in range(len(items))]
    futures = client.map(fn, list(items), pure=False, key=keys)
    results = list(client.gather(futures))
    if on_done is not None:
        for i in range(len(results)):
            on_done(i)
    return results
