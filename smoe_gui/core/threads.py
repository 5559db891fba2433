"""Thread counts of the two compute libraries: torch (training) and numba (rendering,
initialisation kernels).

One home for the thread set-up that the CLI, the experiments, the window and the
benchmarks share:

* :func:`default_threads` -- the cores this process may run on (its CPU affinity,
  as ``os.sched_getaffinity``; ``os.cpu_count()`` where that is missing).
* :func:`set_threads` -- torch's intra-op thread count (process-wide) and numba's
  thread count for the calling thread.
* :func:`set_numba_threads` -- numba's count alone, for the calling thread (numba
  keeps it per thread, so a render thread and the training thread can differ).
"""

from __future__ import annotations

import os

__all__ = ["default_threads", "set_numba_threads", "set_threads"]


def default_threads() -> int:
    """Number of cores this process may run on (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores)


def _check(n: int | None) -> int:
    if n is None:
        return default_threads()
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"threads must be a whole number >= 0 (0: every core), got {n!r}")
    return default_threads() if n == 0 else n


def set_numba_threads(n: int | None = None) -> int:
    """Set numba's thread count for the calling thread.

    Parameters
    ----------
    n : int or None
        Threads; None or 0 means :func:`default_threads`.  Clamped to numba's
        pool size (``NUMBA_NUM_THREADS``).

    Returns
    -------
    int
        The count set.

    Raises
    ------
    ValueError
        For a negative or non-integer ``n``.
    """
    import numba

    wanted = _check(n)
    available = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    count = max(1, min(wanted, available))
    numba.set_num_threads(count)
    return count


def set_threads(n: int | None = None) -> int:
    """Set torch's thread count (process-wide) and numba's (calling thread).

    Parameters
    ----------
    n : int or None
        Threads; None or 0 means :func:`default_threads`.

    Returns
    -------
    int
        The torch thread count set.

    Raises
    ------
    ValueError
        For a negative or non-integer ``n``.
    """
    import torch

    count = _check(n)
    # numba first: starting its OpenMP pool resets the OpenMP thread count that
    # torch reads, so torch's setting must come after it
    set_numba_threads(count)
    torch.set_num_threads(count)
    return count
