"""Kernels that no longer serve, and where their budget goes.

Two rules (issue 22), applied at the merge and during fine-tuning, where the
whole image is seen:

* **pruned**: a kernel whose centre lies outside the image and that governs
  (almost) no pixel -- its gate share, the mean of its gate weight over the
  image, is at most :data:`~smoe_gui.core.train.window.PRUNE_MAX_SHARE`.
  (Seen: ``μ = (162.8, 513.4)`` on a 512-high image, negative experts, 0 %
  share, kept.)  Like the α rule, a kernel that still governs part of the image
  is spared whatever its position.
* **re-placed**: the kernels pruned (by either rule) are replaced by as many new
  ones where the residual is largest, so that a fit that starts with ``N``
  kernels ends with ``N``: error-guided placement, as Image-GS grows its
  Gaussians where the error is (Zhang et al., *Image-GS*, SIGGRAPH 2025).

A third rule keeps the budget at work during fine-tuning:

* **the least useful re-placed**: every ``replace_every`` fine-tuning steps,
  until :data:`REPLACE_UNTIL` of the time (or step) budget, the
  ``replace_share`` of the kernels whose removal alone costs the least squared
  error (:func:`smoe_gui.core.rendering.territories.removal_costs`) are removed
  and as many new ones placed where the residual is largest
  (:func:`least_useful`, :func:`replacement_kernels`).  Gradient descent moves
  kernels only a little; this moves the ones that serve least to where the
  error is, as Image-GS prunes by contribution and grows by error.  Peppers at
  <= 2,000 kernels in 60 s: 34.84 -> 35.10 dB (``docs/training.md``).

See ``docs/paper-readings.md`` ("Pruned kernels are re-placed", "The least
useful kernels are re-placed").
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from .window import KernelArrays

__all__ = [
    "QUIET_START",
    "REPLACE_UNTIL",
    "least_useful",
    "outside_image",
    "replacement_kernels",
    "residual_cells",
    "replacement_due",
]

#: A re-placed kernel starts with ``log α`` this much below the median of the others
#: (its gate weight ``e^-4`` ≈ 2 % of a typical neighbour's at the same distance), so it
#: does not take a region over before training has fitted it; Adam on ``log α`` raises it
#: where it helps.  At the median itself, the 7 kernels re-placed at the merge of a peppers
#: fit (2,000 kernels) cost 0.6 dB at once; started quiet, 0.1 dB.
QUIET_START = 4.0

#: Share of the time budget (and of ``max_steps``) after which no more kernels are
#: re-placed by usefulness: the last re-placed kernels need time to be trained.
REPLACE_UNTIL = 0.7


def replacement_due(step: int, every: int, share: float, elapsed_s: float, budget_s: float,
                    max_steps: int) -> bool:
    """Whether fine-tuning step ``step`` (1-based) re-places the least useful kernels:
    ``every > 0`` and ``share > 0``, ``step`` a multiple of ``every``, and both
    the time (``elapsed_s`` of ``budget_s``) and the steps (of ``max_steps``)
    before :data:`REPLACE_UNTIL` of their budget."""
    return (
        every > 0 and share > 0.0 and step > 0 and step % every == 0
        and elapsed_s < REPLACE_UNTIL * budget_s and step < REPLACE_UNTIL * max_steps
    )


def least_useful(costs: NDArray[np.floating], n: int) -> NDArray[np.bool_]:
    """``(K,)`` bool: the ``n`` kernels of lowest removal cost (ties: the lower index).

    Parameters
    ----------
    costs : (K,) float
        What removing each kernel alone costs
        (:func:`smoe_gui.core.rendering.territories.removal_costs`).
    n : int
        At most ``K - 1`` are chosen, so that one kernel always stays.
    """
    c = np.asarray(costs, dtype=np.float64)
    c = np.where(np.isnan(c), np.inf, c)
    chosen = np.zeros(c.shape[0], dtype=bool)
    n = max(0, min(int(n), c.shape[0] - 1))
    chosen[np.argsort(c, kind="stable")[:n]] = True
    return chosen


def outside_image(mu: NDArray[np.float64], height: int, width: int) -> NDArray[np.bool_]:
    """Whether each kernel centre lies outside the image.

    Parameters
    ----------
    mu : (K, 2) float64
        Centres (x, y) in pixels; pixel ``(i, j)`` covers ``[j - 0.5, j + 0.5)``
        by ``[i - 0.5, i + 0.5)``.
    height, width : int

    Returns
    -------
    (K,) bool
    """
    x, y = mu[:, 0], mu[:, 1]
    return (x < -0.5) | (x >= width - 0.5) | (y < -0.5) | (y >= height - 0.5)


def residual_cells(
    error: NDArray[np.floating], n: int, cell: int
) -> NDArray[np.intp]:
    """The ``n`` pixels of largest error, at most one per ``cell`` x ``cell`` block.

    Parameters
    ----------
    error : (H, W) float
        Squared error per pixel (summed over channels).
    n : int
        How many pixels are wanted.
    cell : int
        Side of the blocks in pixels (>= 1); blocks are ranked by their summed
        error, and the pixel of largest error in each of the best ``n`` blocks
        is taken, so that the picks spread over distinct regions.

    Returns
    -------
    (m, 2) intp
        ``(row, column)`` of the picks, best first; ``m = min(n, number of
        blocks with a positive error)``.
    """
    h, w = error.shape
    cell = max(1, int(cell))
    if n <= 0 or h == 0 or w == 0:
        return np.zeros((0, 2), np.intp)
    ny, nx = math.ceil(h / cell), math.ceil(w / cell)
    padded = np.zeros((ny * cell, nx * cell), np.float64)
    padded[:h, :w] = error
    blocks = padded.reshape(ny, cell, nx, cell).transpose(0, 2, 1, 3).reshape(ny * nx, cell * cell)
    totals = blocks.sum(axis=1)
    order = np.argsort(-totals, kind="stable")
    order = order[totals[order] > 0.0][:n]
    inner = np.argmax(blocks[order], axis=1)
    rows = (order // nx) * cell + inner // cell
    cols = (order % nx) * cell + inner % cell
    return np.stack([rows, cols], axis=1).astype(np.intp)


def replacement_kernels(
    image: NDArray[np.floating],
    reconstruction: NDArray[np.floating],
    kernels: KernelArrays,
    n: int,
    budget: int,
    min_log_alpha: float = -math.inf,
) -> KernelArrays:
    """``n`` new kernels where the residual of ``reconstruction`` is largest.

    Parameters
    ----------
    image, reconstruction : (H, W) or (H, W, C) float
        The target and the model's rendering of it.
    kernels : KernelArrays
        The kernels now (their typical width and weight are given to the new
        ones); at least one.
    n : int
        Kernels to add.
    budget : int
        The kernel budget ``N``; blocks of about ``sqrt(H·W / N)`` px (the mean
        spacing of ``N`` kernels) receive at most one new kernel each.
    min_log_alpha : float
        Lowest ``log α`` a new kernel starts with (training keeps it above its
        pruning threshold).

    Returns
    -------
    KernelArrays
        ``m <= n`` kernels: centre on the pixel of largest error of its block,
        isotropic steering ``A = s·I`` with ``s = median sqrt|det A|`` of
        ``kernels`` (1/px), expert the image's value there, ``log α``
        :data:`QUIET_START` below the median of ``kernels``' (at least
        ``min_log_alpha``).
    """
    h, w = image.shape[:2]
    diff = np.asarray(reconstruction, np.float64) - np.asarray(image, np.float64)
    error = np.square(diff) if diff.ndim == 2 else np.square(diff).sum(axis=2)
    error = np.where(np.isfinite(error), error, 0.0)
    cell = max(1, round(math.sqrt(h * w / max(1, budget))))
    picks = residual_cells(error, n, cell)
    m = len(picks)
    scale = float(np.median(np.sqrt(np.abs(np.linalg.det(kernels.A))))) if len(kernels) else 0.0
    if not (math.isfinite(scale) and scale > 0.0):
        scale = 2.0 / cell
    mu = np.stack([picks[:, 1], picks[:, 0]], axis=1).astype(np.float64)
    steer = np.tile(np.eye(2) * scale, (m, 1, 1))
    values = np.asarray(image, np.float64)[picks[:, 0], picks[:, 1]]
    if kernels.m.ndim == 1 and values.ndim == 2:
        values = values.mean(axis=1)
    start = float(np.median(kernels.log_alpha)) - QUIET_START if len(kernels) else 0.0
    log_alpha = np.full(m, max(start, float(min_log_alpha)))
    # the arrays' own type (window.KernelArrays), so that this module never imports window
    return type(kernels)(mu, steer, values.reshape((m,) + kernels.m.shape[1:]), log_alpha)
