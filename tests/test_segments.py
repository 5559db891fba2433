"""The 4-direction segment scan against a brute-force oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from smoe_gui.core.methods.edge.segments import DIRECTIONS, scan_segments, unit_directions


def oracle(mask: np.ndarray, min_length: int = 2) -> np.ndarray:
    """Walk every run pixel by pixel, exactly as the reading says."""
    h, w = mask.shape

    def on(y: int, x: int) -> bool:
        return 0 <= y < h and 0 <= x < w and bool(mask[y, x])

    rows = []
    for theta, dx, dy in DIRECTIONS:
        for y in range(h):
            for x in range(w):
                if not mask[y, x] or on(y - dy, x - dx):
                    continue
                pixels = []
                cy, cx = y, x
                while on(cy, cx):
                    pixels.append((cx, cy))
                    cy, cx = cy + dy, cx + dx
                if len(pixels) >= min_length:
                    p = np.array(pixels, dtype=np.float64)
                    rows.append([p[:, 0].mean(), p[:, 1].mean(), theta, len(pixels)])
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


@settings(max_examples=150, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_scan_matches_oracle(mask: np.ndarray) -> None:
    got = scan_segments(mask)
    want = oracle(mask)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.bool_, st.tuples(st.integers(1, 9), st.integers(1, 9))),
    st.integers(1, 4),
)
def test_scan_min_length_matches_oracle(mask: np.ndarray, min_length: int) -> None:
    np.testing.assert_array_equal(scan_segments(mask, min_length), oracle(mask, min_length))


def test_horizontal_run() -> None:
    mask = np.zeros((5, 8), bool)
    mask[2, 1:4] = True
    np.testing.assert_array_equal(scan_segments(mask), [[2.0, 2.0, 0.0, 3.0]])


def test_diagonals_and_isolated_pixel() -> None:
    mask = np.zeros((6, 6), bool)
    mask[[0, 1, 2], [0, 1, 2]] = True  # down-right: θ = 45
    mask[[5, 4], [3, 4]] = True  # up-right: θ = -45
    mask[0, 5] = True  # isolated: no segment
    seg = scan_segments(mask)
    np.testing.assert_array_equal(seg, [[1.0, 1.0, 45.0, 3.0], [3.5, 4.5, -45.0, 2.0]])


def test_order_direction_then_row_major_start() -> None:
    rng = np.random.default_rng(7)
    mask = rng.random((30, 40)) < 0.4
    seg = scan_segments(mask)
    order = {0.0: 0, 90.0: 1, 45.0: 2, -45.0: 3}
    d = np.array([order[t] for t in seg[:, 2]])
    assert np.all(np.diff(d) >= 0) and set(d) == {0, 1, 2, 3}
    steps = np.array([[dx, dy] for _, dx, dy in DIRECTIONS], dtype=np.float64)[d]
    start = seg[:, :2] - ((seg[:, 3] - 1) / 2)[:, None] * steps
    flat = start[:, 1] * mask.shape[1] + start[:, 0]
    for k in range(4):
        assert np.all(np.diff(flat[d == k]) > 0)


def test_empty_and_full_masks() -> None:
    assert scan_segments(np.zeros((7, 9), bool)).shape == (0, 4)
    full = scan_segments(np.ones((3, 4), bool))
    counts = {t: int(np.sum(full[:, 2] == t)) for t in (0.0, 90.0, 45.0, -45.0)}
    # 3 rows, 4 columns, and the diagonals of length >= 2 in a 3x4 block
    assert counts == {0.0: 3, 90.0: 4, 45.0: 4, -45.0: 4}


def test_unit_directions() -> None:
    t = unit_directions(np.array([0.0, 90.0, 45.0, -45.0]))
    np.testing.assert_allclose(
        t, [[1, 0], [0, 1], [np.sqrt(0.5)] * 2, [np.sqrt(0.5), -np.sqrt(0.5)]]
    )
    with pytest.raises(ValueError, match="30"):
        unit_directions(np.array([30.0]))
