"""How often the window draws a training's live frames (no Qt here).

A live frame (views 4-5 during a training) costs CPU twice: its render job
(:func:`~smoe_gui.ui.control.jobs.compute_snapshot`, in a thread of its own
below the training's priority) and
its drawing in the GUI thread.  Both are taken from the training: on two
cores, frames drawn at every snapshot (10 per second) with the overlay's gate
shares every 0.3 s kept the training at about three quarters of a plain
``fit()`` loop's speed.  :class:`LiveFrames` paces them by what they cost:

* at most one frame is in flight (submitted, not yet drawn); a snapshot that
  arrives meanwhile waits, and a newer one replaces it (only the newest model
  is ever rendered);
* frames are at least ``cost / LIVE_CPU_SHARE`` seconds apart, where ``cost``
  is the mean CPU seconds of the recent frames (job and drawing), within
  :data:`FRAME_MIN_S` .. :data:`FRAME_MAX_S` (5 to 10 frames per second);
* a frame carries the kernel overlay (gate shares or territories, the dear
  part of the job) at most every :data:`~smoe_gui.ui.control.session.OVERLAY_INTERVAL_S`
  seconds, and less often when the overlay's frames cost more than
  :data:`OVERLAY_CPU_SHARE` of a core at that rate.
"""

from __future__ import annotations

import math

__all__ = [
    "FRAME_MAX_S",
    "FRAME_MIN_S",
    "LIVE_CPU_SHARE",
    "OVERLAY_CPU_SHARE",
    "LiveFrames",
]

#: Seconds between live frames, at least / at most (10 and 5 frames per second).
FRAME_MIN_S = 0.1
FRAME_MAX_S = 0.2
#: Share of one core that the live frames may take (job and drawing together).
LIVE_CPU_SHARE = 0.08
#: Share of one core that the overlay frames' extra cost may take.
OVERLAY_CPU_SHARE = 0.03
#: Weight of the newest frame in the running mean of the frames' cost.
_EMA = 0.3


class LiveFrames:
    """When to submit the next live frame, and whether it carries the overlay.

    Parameters
    ----------
    overlay_interval_s : float
        Seconds between overlay frames at the least.
    cpu_share, overlay_share : float
        Shares of one core for the frames and for the overlay's extra cost
        (default :data:`LIVE_CPU_SHARE`, :data:`OVERLAY_CPU_SHARE`; ``inf``:
        the shortest intervals whatever the cost).

    Attributes
    ----------
    interval_s : float
        Seconds between frames now.
    overlay_s : float
        Seconds between overlay frames now.
    frame_cpu_s, overlay_cpu_s : float
        Running means of a frame's CPU seconds, without and with the overlay
        (NaN before the first).
    """

    def __init__(
        self,
        overlay_interval_s: float,
        cpu_share: float = LIVE_CPU_SHARE,
        overlay_share: float = OVERLAY_CPU_SHARE,
    ) -> None:
        self.overlay_interval_s = float(overlay_interval_s)
        self.cpu_share = float(cpu_share)
        self.overlay_share = float(overlay_share)
        self.interval_s = FRAME_MIN_S
        self.overlay_s = self.overlay_interval_s
        self.frame_cpu_s = math.nan
        self.overlay_cpu_s = math.nan
        self.reset()

    def reset(self) -> None:
        """Forget the frame in flight and the times (a new training)."""
        self._in_flight: int | None = None
        self._submitted_at = -math.inf
        self._overlay_at = -math.inf

    def due(self, now: float) -> bool:
        """Whether a frame may be submitted at ``now`` (seconds): none is in
        flight (every frame job reports its end, drawn, dropped, cancelled or
        failed, through :meth:`done`, at any age: a slow frame is drawn late,
        never replaced by one that would be as slow) and the interval has passed."""
        if self._in_flight is not None:
            return False
        return now - self._submitted_at >= self.interval_s

    def overlay_due(self, now: float) -> bool:
        """Whether the frame submitted at ``now`` should carry the overlay."""
        return now - self._overlay_at >= self.overlay_s

    def submitted(self, rid: int, now: float, overlay: bool) -> None:
        """Frame ``rid`` was submitted at ``now``, with the overlay or not."""
        self._in_flight = rid
        self._submitted_at = now
        if overlay:
            self._overlay_at = now

    def overlay_now(self) -> None:
        """The next frame carries the overlay (the kernel view's mode changed)."""
        self._overlay_at = -math.inf

    def superseded(self) -> None:
        """Another render was requested: the frame in flight will not be drawn."""
        self._in_flight = None

    def done(self, rid: int, cpu_s: float, overlay: bool) -> bool:
        """Frame ``rid`` was drawn (or dropped) after ``cpu_s`` CPU seconds in all;
        returns whether it was the frame in flight (the pace is then updated)."""
        if rid != self._in_flight:
            return False
        self._in_flight = None
        if not (math.isfinite(cpu_s) and cpu_s >= 0.0):
            return True
        if overlay:
            self.overlay_cpu_s = _mean(self.overlay_cpu_s, cpu_s)
        else:
            self.frame_cpu_s = _mean(self.frame_cpu_s, cpu_s)
        base = self.frame_cpu_s if math.isfinite(self.frame_cpu_s) else cpu_s
        self.interval_s = min(FRAME_MAX_S, max(FRAME_MIN_S, base / self.cpu_share))
        if math.isfinite(self.overlay_cpu_s):
            plain = self.frame_cpu_s if math.isfinite(self.frame_cpu_s) else 0.0
            extra = max(0.0, self.overlay_cpu_s - plain)
            self.overlay_s = max(self.overlay_interval_s, extra / self.overlay_share)
        return True


def _mean(old: float, new: float) -> float:
    return new if not math.isfinite(old) else (1.0 - _EMA) * old + _EMA * new
