"""Events streamed by :func:`smoe_gui.core.fit` and the stop token that ends it.

The CLI progress bar, the GUI worker and the experiment runner all consume the
same :class:`FitEvent` stream.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass, field

from .model import SmoeModel

__all__ = ["FitEvent", "PHASES", "StopToken"]

#: Phases of a fit, in order.
PHASES = ("tiles", "merge", "finetune")


@dataclass(frozen=True)
class FitEvent:
    """One step (or milestone) of a fit.

    Attributes
    ----------
    phase : str
        ``"tiles"``, ``"merge"`` or ``"finetune"``.
    step : int
        Global step count since the fit started (all phases together).
    loss : float
        Loss of this step (MSE, plus the penalty during tile training).
    psnr : float
        PSNR in dB of what the step optimised: of the current tile's loss window
        during ``tiles`` (a per-tile figure, see :attr:`tile_psnr`), of the whole
        image from ``merge`` on.  The headline is :attr:`image_psnr`.
    n_kernels : int
        Number of kernels of the whole model now.
    elapsed_s : float
        Wall-clock seconds since the fit started.
    model : SmoeModel or None
        A snapshot of the whole model (numpy copies), every so often and always
        on the last event.
    tile : int or None
        Index of the tile during ``tiles``.
    n_tiles : int
        Number of tiles.
    message : str or None
        Something worth telling the user (a diverging step undone, the learning
        rate lowered, convergence reached, the budget spent).
    final : bool
        True on the last event of the fit; its ``model`` is the result.
    lr_scale : float
        Factor applied to every learning rate of the table now (1 until a
        diverging step has been undone, then halved each time).
    phase_times_s : dict of str to float or None
        Wall-clock seconds spent in each phase; on the final event only.
    image_psnr : float or None
        Whole-image PSNR in dB, on every event of every phase: from ``merge``
        on that of the model now (equal to ``psnr``); during ``tiles`` the
        latest measurement of the whole model (the tiles trained so far with
        the initial kernels elsewhere), rendered in full every ~0.3 s and at
        the start (``image_psnr_fresh`` says whether it was measured on this
        event).  None only on events made elsewhere (tests, replays).
    image_psnr_fresh : bool
        Whether :attr:`image_psnr` was measured on this event (always True
        from ``merge`` on).
    tiles_psnr : float or None
        On the ``merge`` event: PSNR in dB of the tiles' reconstructions
        stitched together, each as its own training left it (the tile's
        pixels only); the merge costs ``tiles_psnr - psnr`` dB.  None elsewhere
        or when no tile trained.
    """

    phase: str
    step: int
    loss: float
    psnr: float
    n_kernels: int
    elapsed_s: float
    model: SmoeModel | None = None
    tile: int | None = None
    n_tiles: int = 1
    message: str | None = None
    final: bool = False
    lr_scale: float = 1.0
    phase_times_s: dict[str, float] | None = None
    image_psnr: float | None = None
    image_psnr_fresh: bool = True
    tiles_psnr: float | None = None

    @property
    def tile_psnr(self) -> float | None:
        """PSNR in dB of the tile being trained (``tiles`` only, else None)."""
        return self.psnr if self.phase == "tiles" else None


@dataclass(eq=False)  # compared and hashed by identity (a WeakSet holds children)
class StopToken:
    """Cooperative stop and pause requests, safe to set from another thread.

    The fit checks it before every step, so stopping takes effect within one
    step; the fit then yields a final event with the best model so far.  While
    paused, the fit waits before its next step, and the time paused does not
    count against the time budget (``params.time_budget`` counts training
    time, not pauses) nor in the events' ``elapsed_s``.

    A token's :meth:`child` tokens follow its stop, pause and resume (a study's
    token and the token of the fit it runs now), and not the other way round.
    """

    _event: threading.Event = field(default_factory=threading.Event)
    _running: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _paused_since: float | None = None
    _paused_total: float = 0.0
    _children: weakref.WeakSet[StopToken] = field(default_factory=weakref.WeakSet)

    def __post_init__(self) -> None:
        self._running.set()

    def child(self) -> StopToken:
        """A new token that this one's :meth:`stop`, :meth:`pause` and
        :meth:`resume` also reach (a paused or stopped token gives a paused or
        stopped child); stopping or pausing the child leaves this one as it is."""
        token = StopToken()
        with self._lock:
            self._children.add(token)
            paused = self._paused_since is not None
        if self.stopped:
            token.stop()
        elif paused:
            token.pause()
        return token

    def _each_child(self) -> list[StopToken]:
        with self._lock:
            return list(self._children)

    def stop(self) -> None:
        """Ask the fit to stop (a paused fit stops too)."""
        self._event.set()
        self._running.set()
        for token in self._each_child():
            token.stop()

    @property
    def stopped(self) -> bool:
        """Whether a stop was asked for."""
        return self._event.is_set()

    def pause(self) -> None:
        """Hold the fit before its next step until :meth:`resume` (or :meth:`stop`)."""
        with self._lock:
            if self._paused_since is None:
                self._paused_since = time.perf_counter()
                self._running.clear()
        for token in self._each_child():
            token.pause()

    def resume(self) -> None:
        """Let a paused fit go on."""
        with self._lock:
            if self._paused_since is not None:
                self._paused_total += time.perf_counter() - self._paused_since
                self._paused_since = None
            self._running.set()
        for token in self._each_child():
            token.resume()

    @property
    def paused(self) -> bool:
        """Whether a pause is in effect."""
        return self._paused_since is not None

    def paused_s(self) -> float:
        """Seconds spent paused so far (including a pause going on now)."""
        with self._lock:
            since = self._paused_since
            ongoing = 0.0 if since is None else time.perf_counter() - since
            return self._paused_total + ongoing

    def wait_while_paused(self) -> None:
        """Block the calling thread while paused and not stopped."""
        while not self._running.wait(0.1):
            pass
