"""The models a fit went through: a light, bounded history of snapshots.

:class:`ModelHistory` keeps the model snapshots that a fit's events carry
(:attr:`smoe_gui.core.events.FitEvent.model`, every ``snapshot_interval_s``
seconds of training, and always the merge and final events), evenly spread
over the run and bounded in number and in bytes: when a bound is passed,
every other snapshot is dropped (the first and the newest are kept) and the
spacing between the snapshots kept from then on doubles.  The snapshots are
the events' own (read-only) models, so recording costs no copy.

:func:`smoe_gui.core.train.runs.run_fit` records one for every run
(:attr:`~smoe_gui.core.train.runs.FitResult.snapshots`), starting with the
initial model at step 0; the training video (:mod:`smoe_gui.core.train.video`)
is drawn from it.  Qt-free.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..events import FitEvent
from ..model import SmoeModel

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_SNAPSHOTS", "ModelHistory", "Snapshot"]

#: Largest number of snapshots a :class:`ModelHistory` keeps by default.
DEFAULT_MAX_SNAPSHOTS = 240
#: Largest memory (bytes of the models' arrays) a :class:`ModelHistory` keeps by default.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Snapshot:
    """One model of a fit.

    Attributes
    ----------
    step : int
        Global step count of the fit when the model was taken (0: the initial model).
    elapsed_s : float
        Training seconds since the fit started (s).
    phase : str
        ``"init"`` (the initial model), ``"tiles"``, ``"merge"`` or ``"finetune"``.
    model : SmoeModel
        The whole model then (read-only arrays).
    """

    step: int
    elapsed_s: float
    phase: str
    model: SmoeModel

    @property
    def nbytes(self) -> int:
        """Bytes of the model's arrays."""
        m = self.model
        return int(m.mu.nbytes + m.A.nbytes + m.m.nbytes + m.log_alpha.nbytes)


class ModelHistory:
    """Snapshots of a fit's model, evenly spread over the run, bounded in memory.

    Parameters
    ----------
    max_snapshots : int
        Most snapshots kept (at least 2).
    max_bytes : int
        Most bytes of model arrays kept (the newest snapshot is always kept,
        whatever its size).

    Raises
    ------
    ValueError
        For ``max_snapshots < 2`` or ``max_bytes < 1``.
    """

    def __init__(
        self, max_snapshots: int = DEFAULT_MAX_SNAPSHOTS, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        if int(max_snapshots) < 2:
            raise ValueError(f"max_snapshots must be at least 2, got {max_snapshots!r}")
        if int(max_bytes) < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes!r}")
        self.max_snapshots = int(max_snapshots)
        self.max_bytes = int(max_bytes)
        self._items: list[Snapshot] = []
        self._nbytes = 0
        #: Least training seconds between two kept snapshots (0 until the first thinning).
        self.spacing_s = 0.0

    # -- building ------------------------------------------------------------------
    def add(self, step: int, elapsed_s: float, phase: str, model: SmoeModel,
            final: bool = False) -> bool:
        """Record ``model``; returns whether it was kept.

        A snapshot closer than :attr:`spacing_s` to the previous one is skipped,
        except a ``final`` one, which replaces that previous one (unless it is
        the first).
        """
        snap = Snapshot(int(step), float(elapsed_s), str(phase), model)
        if self._items:
            last = self._items[-1]
            if snap.elapsed_s - last.elapsed_s < self.spacing_s:
                if not final:
                    return False
                if len(self._items) > 1:
                    self._nbytes -= self._items.pop().nbytes
        self._items.append(snap)
        self._nbytes += snap.nbytes
        while len(self._items) > 2 and (
            len(self._items) > self.max_snapshots or self._nbytes > self.max_bytes
        ):
            self._thin()
        return True

    def add_event(self, event: FitEvent) -> bool:
        """Record the model an event carries (None: nothing); returns whether it was kept."""
        if event.model is None:
            return False
        return self.add(event.step, event.elapsed_s, event.phase, event.model, final=event.final)

    def _thin(self) -> None:
        """Drop every other snapshot (the first and the newest kept); double the spacing."""
        items = self._items
        kept = items[:-1:2] + [items[-1]]
        self._items = kept
        self._nbytes = sum(s.nbytes for s in kept)
        gaps = [b.elapsed_s - a.elapsed_s for a, b in zip(kept[:-1], kept[1:], strict=True)]
        typical = sorted(gaps)[len(gaps) // 2] if gaps else 0.0
        self.spacing_s = max(2.0 * self.spacing_s, typical)

    # -- views ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Snapshot]:
        return iter(list(self._items))

    def __getitem__(self, index: int) -> Snapshot:
        return self._items[index]

    @property
    def snapshots(self) -> list[Snapshot]:
        """The snapshots kept, oldest first (a new list)."""
        return list(self._items)

    @property
    def nbytes(self) -> int:
        """Bytes of the models' arrays kept."""
        return self._nbytes

    def __repr__(self) -> str:
        return f"ModelHistory({len(self)} snapshots, {self._nbytes / 2**20:.1f} MiB)"
