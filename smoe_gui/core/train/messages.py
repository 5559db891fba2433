"""The words of a fit: its event messages and the one-line training status.

Every line a user reads about a running fit is made here, so that the CLI bar
(:class:`smoe_gui.cli.progress.FitProgress`), the window's status line
(:meth:`smoe_gui.ui.control.session.Session.progress_text`) and the events'
messages say the same thing the same way:

* the **whole-image PSNR** is the headline ("PSNR 23.41 dB"); the PSNR of the
  tile being trained is shown after it and labelled as such
  ("tile 3/24: 29.80 dB");
* the time is "elapsed / budget s" ("9.3 / 20 s");
* the phase is named once: ``tiles 3/24``, ``merge`` or ``finetune``.
"""

from __future__ import annotations

import math

from ..metrics import format_psnr

__all__ = [
    "diverged_message",
    "final_message",
    "format_seconds",
    "is_notable",
    "merge_message",
    "pruned_message",
    "replaced_message",
    "slide_message",
    "status_line",
]


def format_seconds(elapsed_s: float, budget_s: float | None = None) -> str:
    """``"9.3 s"`` or, with a budget, ``"9.3 / 20 s"`` (elapsed to 0.1 s, budget as given)."""
    elapsed = f"{max(0.0, float(elapsed_s)):.1f}"
    if budget_s is None or not math.isfinite(budget_s):
        return f"{elapsed} s"
    return f"{elapsed} / {float(budget_s):g} s"


def status_line(
    phase: str,
    step: int,
    image_psnr: float | None,
    n_kernels: int,
    elapsed_s: float,
    budget_s: float | None = None,
    *,
    tile: int | None = None,
    n_tiles: int = 1,
    tile_psnr: float | None = None,
    separator: str = "  ",
) -> str:
    """One line describing a fit now.

    Parameters
    ----------
    phase : str
        ``"tiles"``, ``"merge"`` or ``"finetune"``.
    step : int
        Steps made so far (all phases).
    image_psnr : float or None
        Whole-image PSNR in dB (None or NaN: not measured yet, shown as "…").
    n_kernels : int
    elapsed_s : float
        Training seconds so far.
    budget_s : float, optional
        The time budget in seconds.
    tile : int, optional
        0-based index of the tile trained now (``tiles`` only).
    n_tiles : int
    tile_psnr : float, optional
        PSNR in dB of that tile's loss window (``tiles`` only).
    separator : str
        Between the parts (two spaces in the terminal, " · " in the window).

    Returns
    -------
    str
        e.g. ``"tiles 3/24  step 120  PSNR 23.41 dB  (tile 3/24: 29.80 dB)  K 1989  9.3 / 20 s"``.
    """
    tiled = phase == "tiles" and tile is not None
    where = f"tiles {tile + 1}/{n_tiles}" if tiled and tile is not None else phase
    whole = (
        "…" if image_psnr is None or math.isnan(image_psnr) else format_psnr(float(image_psnr))
    )
    parts = [where, f"step {step}", f"PSNR {whole}"]
    if tiled and tile is not None and tile_psnr is not None and not math.isnan(tile_psnr):
        parts.append(f"(tile {tile + 1}/{n_tiles}: {format_psnr(float(tile_psnr))})")
    parts += [f"K {n_kernels}", format_seconds(elapsed_s, budget_s)]
    return separator.join(parts)


#: Words of the fine-tuning messages that explain a jump of the PSNR curve: a step
#: undone, a slide back to the best model, a re-placement of the least useful kernels.
_NOTABLE = ("non-finite", "loss jump", "back to the best model", "of least use")


def is_notable(message: str | None) -> bool:
    """Whether a step's message explains a jump of the curve and should be shown on a
    line of its own (the CLI prints it; pruning of single kernels is not)."""
    return message is not None and any(word in message for word in _NOTABLE)


def diverged_message(where: str, what: str, step: int, factor: float, lr_scale: float) -> str:
    """A diverging step undone: ``where`` is ``"tile 3/24"`` or ``"fine-tuning"``."""
    return (
        f"{where}: {what} at step {step}; step undone, learning rates x{factor:g} "
        f"(now x{lr_scale:g} of the table)"
    )


def slide_message(step: int, psnr_db: float, best_db: float, factor: float,
                  lr_scale: float) -> str:
    """Fine-tuning slid too far below its best model and went back to it."""
    return (
        f"fine-tuning: whole-image PSNR {psnr_db:.2f} dB at step {step}, "
        f"{best_db - psnr_db:.1f} dB below the best ({best_db:.2f} dB); back to the best "
        f"model, learning rates x{factor:g} (now x{lr_scale:g} of the table)"
    )


def pruned_message(
    where: str, n_pruned: int, threshold: float, n_outside: int = 0, n_replaced: int = 0
) -> str:
    """Kernels pruned in one step: ``n_outside`` of them outside the image with no
    gate share; ``n_replaced`` new ones placed where the residual is largest."""
    text = f"{where}: pruned {n_pruned} kernel(s) with α < {threshold:g}"
    if n_outside:
        text += f" or outside the image with no gate share ({n_outside})"
    if n_replaced:
        text += f"; {n_replaced} re-placed where the error is largest"
    return text


def replaced_message(step: int, n_replaced: int, share: float) -> str:
    """The least useful kernels re-placed in fine-tuning (:mod:`smoe_gui.core.train.replace`)."""
    return (
        f"fine-tuning: step {step}: re-placed the {n_replaced} kernel(s) of least use "
        f"({share:.0%} of them) where the error is largest"
    )


def merge_message(
    n_tiles: int, n_kernels: int, n_pruned: int, tile_size: int, asked_tile_size: int,
    start_psnr: float, merged_psnr: float, n_replaced: int = 0,
) -> str:
    """The merge: tiles, kernels and the whole-image PSNR before and after the tile phase."""
    text = (
        f"merged {n_tiles} tile(s): {n_kernels} kernels ({n_pruned} pruned"
        + (f", {n_replaced} re-placed where the error is largest" if n_replaced else "")
        + f"); whole-image PSNR {format_psnr(start_psnr)} at the start, "
        f"{format_psnr(merged_psnr)} now"
    )
    if tile_size < asked_tile_size:
        text = (
            f"tile size {asked_tile_size} px clamped to the image's longer side "
            f"({tile_size} px); " + text
        )
    return text


def final_message(
    reason: str, budget_s: float, tol_db: float, patience: int, max_steps: int,
    min_lr_scale: float, kept_start_psnr: float | None = None,
) -> str:
    """Why the fit ended.

    Parameters
    ----------
    reason : str
        ``"converged"``, ``"time"``, ``"steps"``, ``"stopped"``, ``"exact"`` or ``"diverged"``.
    kept_start_psnr : float, optional
        The initial model's PSNR when no step improved on it (it is kept).
    """
    messages = {
        "converged": f"converged: PSNR gained < {tol_db:g} dB over {patience} steps",
        "time": f"time budget of {budget_s:g} s spent",
        "steps": f"step budget of {max_steps} fine-tuning steps spent",
        "stopped": "stopped on request",
        "exact": "the reconstruction is exact (PSNR inf dB): nothing left to train",
        "diverged": "stopped: the learning rate fell below "
        f"{min_lr_scale:g} of the table after repeated divergence",
    }
    message = messages[reason]
    if kept_start_psnr is not None and reason != "exact":
        start_db = format_psnr(kept_start_psnr)
        if reason == "time":
            return (
                f"the time budget of {budget_s:g} s was too short to train: no step improved on "
                f"the initial model ({start_db}), which is kept"
            )
        message += f"; no step improved on the initial model ({start_db}), which is kept"
    return message
