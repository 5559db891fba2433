"""Bounds on what a sweep waits for and leaves behind: the Dask connection and
the lifetime of local worker processes.

* :func:`connect_dask` -- a Dask client within :data:`DASK_CONNECT_TIMEOUT_S`,
  or one line saying why not (nothing else is printed, nothing is written).
* :func:`follow_parent` -- called in a worker process: it ends when the
  process that started it ends, also when that one is killed outright.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from typing import Any

from ..errors import one_line

__all__ = ["DASK_CONNECT_TIMEOUT_S", "PARENT_CHECK_S", "connect_dask", "follow_parent"]

#: Seconds to wait for a Dask scheduler to answer (the TCP connect, then the handshake).
DASK_CONNECT_TIMEOUT_S = 15.0
_DASK_ADDRESS = re.compile(
    r"(?:(?:tcp|tls)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})/?"
)


def connect_dask(scheduler: Any) -> Any:
    """A ``distributed.Client`` on ``scheduler``, within :data:`DASK_CONNECT_TIMEOUT_S`.

    A TCP address (``tcp://HOST:PORT``, ``tls://HOST:PORT``, ``HOST:PORT``) is
    checked for its form, then for a listening port (one TCP connect); then the client connects in a
    helper thread that is given up after the timeout (a port that answers but is
    not a scheduler, such as its HTTP dashboard, never completes the handshake).
    Anything else (a ``LocalCluster``) is passed to ``Client`` as it is.

    Raises
    ------
    ValueError
        One line: Dask distributed is not installed, the address has no
        ``HOST:PORT`` form, nothing listens there, or no scheduler answered
        in time.
    """
    try:
        from distributed import Client
    except ImportError:
        raise ValueError(
            "running on a Dask cluster needs Dask distributed: pip install 'smoe-gui[cluster]'"
        ) from None
    timeout = float(DASK_CONNECT_TIMEOUT_S)
    other_scheme = isinstance(scheduler, str) and re.match(
        r"(?!tcp://|tls://)[a-z]+://.", scheduler
    )
    if isinstance(scheduler, str) and not other_scheme:  # inproc://, ucx://: Dask's own checks
        match = _DASK_ADDRESS.fullmatch(scheduler.strip())
        if match is None or not 0 < int(match.group("port")) < 65536:
            raise ValueError(
                f"{scheduler!r} is not a Dask scheduler address (expected tcp://HOST:PORT, "
                "e.g. tcp://10.0.0.5:8786)"
            )
        host = match.group("host").strip("[]")
        try:
            socket.create_connection((host, int(match.group("port"))), timeout=timeout).close()
        except OSError as exc:
            raise ValueError(
                f"cannot reach the Dask scheduler at {scheduler}: {one_line(exc)}"
            ) from None
    box: dict[str, Any] = {}

    def connect() -> None:
        try:
            box["client"] = Client(scheduler, timeout=f"{timeout}s", set_as_default=False)
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    helper = threading.Thread(target=connect, name="smoe-dask-connect", daemon=True)
    helper.start()
    helper.join(timeout + 1.0)
    if helper.is_alive():
        raise ValueError(
            f"cannot reach the Dask scheduler at {scheduler}: no scheduler answered within "
            f"{timeout:g} s (a scheduler listens on 8786 by default; 8787 is its dashboard)"
        )
    if "error" in box:
        error = box["error"]
        if isinstance(error, (OSError, TimeoutError, ValueError)):
            raise ValueError(
                f"cannot reach the Dask scheduler at {scheduler}: {one_line(error)}"
            ) from None
        raise error
    return box["client"]


#: Seconds between a worker's checks that its parent still runs.
PARENT_CHECK_S = 0.5


def follow_parent(parent: int) -> None:
    """End this worker process when ``parent`` ends, also by SIGKILL.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, at once.  Everywhere: a
    daemon thread that checks every :data:`PARENT_CHECK_S` whether the parent
    changed (a process whose parent died is adopted by another) and then exits
    with ``os._exit``.  Without workers holding it open, the multiprocessing
    resource tracker ends too.
    """
    if os.getppid() != parent:
        os._exit(1)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="smoe-parent-watch", daemon=True).start()
