"""The last point of a run's curves, for the training summary line (Qt-free)."""

from __future__ import annotations

from dataclasses import dataclass

from ...core.metrics import format_psnr
from ...core.train.messages import format_seconds

__all__ = ["TrainingPoint"]


@dataclass(frozen=True)
class TrainingPoint:
    """The last point of one run's curves (for the summary line).

    Attributes
    ----------
    step : int
    psnr_db : float
    n_kernels : int
    elapsed_s : float
        Training time so far (s, pauses left out).
    budget_s : float or None
        The run's time budget (s), as the CLI shows it ("9.3 / 20 s").
    """

    step: int
    psnr_db: float
    n_kernels: int
    elapsed_s: float = 0.0
    budget_s: float | None = None

    def text(self, label: str) -> str:
        return (
            f"{label}: {format_psnr(self.psnr_db)}, {self.n_kernels} kernels, "
            f"{self.step} steps, {format_seconds(self.elapsed_s, self.budget_s)}"
        )
