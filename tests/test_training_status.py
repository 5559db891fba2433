"""The training status tells the truth: the whole-image PSNR is the headline,
a per-tile figure is labelled as such, the time is "elapsed / budget s", and
the kernels that no longer serve are re-placed where the residual is largest."""

from __future__ import annotations

import io
import math

import numpy as np

from smoe_gui.cli.progress import FitProgress
from smoe_gui.core.events import FitEvent
from smoe_gui.core.train.messages import format_seconds, merge_message, status_line
from smoe_gui.core.train.replace import outside_image, replacement_kernels, residual_cells
from smoe_gui.core.train.window import KernelArrays


def test_seconds_read_elapsed_over_budget() -> None:
    assert format_seconds(9.31, 20.0) == "9.3 / 20 s"
    assert format_seconds(0.0, 7.5) == "0.0 / 7.5 s"
    assert format_seconds(3.25) == "3.2 s"
    assert format_seconds(3.0, math.inf) == "3.0 s"


def test_the_status_line_heads_with_the_whole_image_and_labels_the_tile() -> None:
    line = status_line("tiles", 120, 23.414, 1989, 9.31, 20.0, tile=2, n_tiles=24,
                       tile_psnr=29.8)
    assert line == "tiles 3/24  step 120  PSNR 23.41 dB  (tile 3/24: 29.80 dB)  K 1989  9.3 / 20 s"
    # the whole-image figure comes first; the tile's only in its labelled bracket
    assert line.index("PSNR 23.41 dB") < line.index("29.80 dB")
    ft = status_line("finetune", 900, 31.2, 1989, 19.0, 20.0, tile_psnr=31.2, separator=" · ")
    assert ft == "finetune · step 900 · PSNR 31.20 dB · K 1989 · 19.0 / 20 s"
    assert "tile" not in ft
    assert "PSNR …" in status_line("tiles", 0, None, 5, 0.0, 1.0, tile=0, n_tiles=1)


def test_the_cli_bar_shows_the_whole_image_psnr_of_a_tile_event() -> None:
    event = FitEvent(phase="tiles", step=7, loss=0.0, psnr=30.5, n_kernels=50, elapsed_s=2.04,
                     tile=1, n_tiles=4, image_psnr=22.75, image_psnr_fresh=False)
    assert FitProgress.status_of(event, 20.0) == (
        "tiles 2/4  step 7  PSNR 22.75 dB  (tile 2/4: 30.50 dB)  K 50  2.0 / 20 s"
    )
    stream = io.StringIO()
    with FitProgress(20.0, stream=stream, plain_interval_s=1e9) as progress:
        progress(event)
    assert "PSNR 22.75 dB" in stream.getvalue() and "2.0 / 20 s" in stream.getvalue()


def test_the_merge_message_says_the_whole_image_psnr_before_and_after() -> None:
    text = merge_message(24, 1989, 3, 128, 128, 22.96, 27.39, n_replaced=3)
    assert text == ("merged 24 tile(s): 1989 kernels (3 pruned, 3 re-placed where the error is "
                    "largest); whole-image PSNR 22.96 dB at the start, 27.39 dB now")


def test_outside_the_image_is_beyond_the_border_pixels() -> None:
    mu = np.array([[0.0, 0.0], [-0.6, 3.0], [69.4, 3.0], [69.6, 3.0], [162.8, 513.4]])
    assert outside_image(mu, 512, 70).tolist() == [False, True, False, True, True]


def test_the_residual_picks_spread_over_the_largest_errors() -> None:
    error = np.zeros((20, 20))
    error[2, 3] = 5.0
    error[2, 4] = 4.0  # same 5x5 block as (2, 3): not picked twice
    error[17, 18] = 3.0
    error[10, 10] = 1.0
    picks = residual_cells(error, 3, 5)
    assert picks.tolist() == [[2, 3], [17, 18], [10, 10]]
    assert len(residual_cells(error, 10, 5)) == 3  # only blocks with an error
    assert len(residual_cells(error, 0, 5)) == 0


def test_replacement_kernels_sit_on_the_residual_with_the_image_value() -> None:
    image = np.full((16, 16, 3), 0.5, np.float32)
    image[12, 4] = (0.9, 0.1, 0.2)
    recon = np.full_like(image, 0.5)
    kernels = KernelArrays(
        np.array([[3.0, 3.0], [10.0, 10.0]]), np.tile(np.eye(2) * 0.25, (2, 1, 1)),
        np.full((2, 3), 0.5), np.array([-1.0, -3.0]),
    )
    new = replacement_kernels(image, recon, kernels, 1, budget=4)
    assert len(new) == 1
    assert new.mu.tolist() == [[4.0, 12.0]]  # (x, y) of the pixel
    assert np.allclose(new.m, [[0.9, 0.1, 0.2]])
    # it starts quiet: log α 4 below the median, not below the floor given
    assert np.allclose(new.A, np.eye(2) * 0.25) and new.log_alpha.tolist() == [-6.0]
    floored = replacement_kernels(image, recon, kernels, 1, budget=4, min_log_alpha=-5.0)
    assert floored.log_alpha.tolist() == [-5.0]
