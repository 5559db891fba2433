"""Where work runs: threads of this process, local processes or a Dask cluster.

One home for the executors of the AS-SMoE local fits
(:class:`smoe_gui.core.methods.segment.local_fit.LocalFitRunner`) and of the
experiment's sweep (:mod:`smoe_gui.core.experiment.run`).  Processes are always
started with ``spawn`` (no forked torch or numba state; the same on Linux,
macOS and Windows).  Qt-free; imports nothing of smoe-gui, so every layer of the
core may use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from typing import Any, TypeVar

__all__ = ["dask_map", "dask_worker", "pool_map", "spawn_pool", "stop_pool", "thread_map"]

T = TypeVar("T")
R = TypeVar("R")


def dask_worker() -> Any:
    """The Dask worker this code runs in, or None (no Dask installed, or not in a task)."""
    try:
        from distributed import get_worker
    except ImportError:
        return None
    try:
        return get_worker()
    except ValueError:
        return None


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
        max_workers=workers, mp_context=get_context("spawn"), initializer=initializer,
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


def thread_map(fn: Callable[[T], R], items: Iterable[T], threads: int) -> list[R]:
    """``[fn(item) for item in items]`` on ``threads`` threads of this process, in order."""
    with ThreadPoolExecutor(max_workers=max(1, int(threads))) as pool:
        return list(pool.map(fn, items))


def pool_map(executor: Executor, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(item) for item in items]`` on ``executor``, in order."""
    return list(executor.map(fn, items))


def dask_map(client: Any, fn: Callable[[T], R], items: Sequence[T], prefix: str) -> list[R]:
    """``[fn(item) for item in items]`` as Dask tasks of ``client`` (keys
    ``prefix-0``, ``prefix-1``, ...; ``pure=False``), gathered in order."""
    keys = [f"{prefix}-{i}" for i in range(len(items))]
    futures = client.map(fn, list(items), pure=False, key=keys)
    return list(client.gather(futures))
