"""Importance scores (eq. 6-8) and the exact DBSCAN reduction (Sec. III-B)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import pdist, squareform
from sklearn.cluster import DBSCAN

from smoe_gui.core.methods.edge.reduction import (
    LinkageTree,
    cluster_single_linkage,
    emst_edges,
    importance_scores,
    minimal_radius,
    radius_for,
    reduce_segments,
    salient_count,
)


def _seg(rows: list[tuple[float, float, float]]) -> np.ndarray:
    return np.array([[x, y, t, 2.0] for x, y, t in rows], dtype=np.float64).reshape(-1, 4)


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


# --- scores ------------------------------------------------------------------------
def test_score_hand_made_configuration() -> None:
    seg = _seg([(0, 0, 0), (3, 0, 0), (0, 4, 0), (10, 0, 90)])
    diag = math.hypot(10, 10)
    for lam in (0.0, 0.1, 1.0):
        s = importance_scores(seg, lam, 10, 10)
        # segment 0: same-direction Top-2 at 3 and 4, one other-direction at 10
        assert s[0] == pytest.approx((1 - lam) * 3.5 + lam * 10.0)
        # segment 1: same at 3 and sqrt(9 + 16) = 5; other at 7
        assert s[1] == pytest.approx((1 - lam) * 4.0 + lam * 7.0)
        # segment 3 (vertical): no same-direction neighbour -> diagonal;
        # other-direction Top-2 at 7 and 10
        assert s[3] == pytest.approx((1 - lam) * diag + lam * 8.5)


def test_score_of_a_lone_segment_is_the_diagonal() -> None:
    s = importance_scores(_seg([(5, 5, 45)]), 0.3, 30, 40)
    assert s[0] == pytest.approx(50.0)


def test_score_uses_only_the_two_nearest() -> None:
    near = _seg([(0, 0, 0), (1, 0, 0), (0, 2, 0), (50, 50, 0)])
    assert importance_scores(near, 0.0, 64, 64)[0] == pytest.approx(1.5)


def test_isolated_segment_scores_highest() -> None:
    rows = [(x, 10.0, 0.0) for x in range(0, 20, 2)] + [(60.0, 60.0, 0.0)]
    s = importance_scores(_seg(rows), 0.1, 64, 64)
    assert int(np.argmax(s)) == len(rows) - 1


def test_scores_empty_and_bad_lambda() -> None:
    assert importance_scores(np.zeros((0, 4)), 0.1, 8, 8).shape == (0,)
    with pytest.raises(ValueError, match="lam"):
        importance_scores(_seg([(0, 0, 0)]), 1.5, 8, 8)


# --- exact radius --------------------------------------------------------------------
lattice_points = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=2, max_size=80
).map(lambda p: np.array(p, dtype=np.float64) / 2.0)


@settings(max_examples=80, deadline=None)
@given(lattice_points, st.data())
def test_minimal_radius_is_exact_and_matches_dbscan(
    points: np.ndarray, data: st.DataObject
) -> None:
    n = points.shape[0]
    c = data.draw(st.integers(1, n))
    eps = minimal_radius(points, c)
    labels = cluster_single_linkage(points, eps)
    assert labels.max() + 1 <= c
    if eps > 0:
        ref = DBSCAN(eps=eps, min_samples=1, algorithm="kd_tree").fit(points).labels_
        assert _same_partition(labels, ref)
        smaller = cluster_single_linkage(points, float(np.nextafter(eps, 0.0)))
        assert smaller.max() + 1 > c


@settings(max_examples=60, deadline=None)
@given(lattice_points, st.booleans())
def test_emst_matches_dense_mst(points: np.ndarray, jitter: bool) -> None:
    pts = np.unique(points, axis=0)
    if jitter:  # off the half-pixel lattice: the Qhull route
        pts = pts + np.random.default_rng(len(pts)).normal(0, 1e-3, pts.shape)
    i, j, sq = emst_edges(pts)
    assert i.size == pts.shape[0] - 1
    dense = minimum_spanning_tree(squareform(pdist(pts))).data
    np.testing.assert_allclose(np.sort(np.sqrt(sq)), np.sort(dense), rtol=1e-12, atol=0)


def test_degenerate_point_sets() -> None:
    line = np.array([[0.0, 0.0], [3.0, 3.0], [1.0, 1.0], [7.0, 7.0]])
    assert minimal_radius(line, 2) == pytest.approx(math.sqrt(8.0))
    assert list(cluster_single_linkage(line, math.sqrt(8.0))) == [0, 0, 0, 1]
    dup = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [5.0, 1.0]])
    assert minimal_radius(dup, 2) == 0.0
    assert list(cluster_single_linkage(dup, 0.0)) == [0, 0, 0, 1]
    assert minimal_radius(dup, 1) == 4.0
    two = np.array([[0.0, 0.0], [0.5, 0.0]])
    assert minimal_radius(two, 1) == 0.5
    assert minimal_radius(np.array([[2.0, 3.0]]), 1) == 0.0


def test_radius_for_is_the_smallest_admitting_float() -> None:
    for sq in (7.25, 2.0, 0.25, 12345.5):
        eps = radius_for(sq)
        assert eps * eps >= sq
        lower = float(np.nextafter(eps, 0.0))
        assert lower * lower < sq


# --- the reduction -------------------------------------------------------------------
def _random_segments(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.integers(0, 200, (n, 2)) / 2.0
    theta = rng.choice([0.0, 90.0, 45.0, -45.0], n)
    seg = np.column_stack([xy, theta, rng.integers(2, 6, n)]).astype(np.float64)
    # centres of one direction are distinct in a real scan
    _, keep = np.unique(seg[:, :3], axis=0, return_index=True)
    return seg[np.sort(keep)]


@pytest.mark.parametrize("max_pts", [1, 7, 50, 120])
def test_reduction_count_salient_and_radius(max_pts: int) -> None:
    seg = _random_segments(400, max_pts)
    scores = importance_scores(seg, 0.1, 100, 100)
    red = reduce_segments(seg, scores, max_pts, 0.2)
    k = salient_count(max_pts, 0.2)
    assert red.reduced.shape[0] <= max_pts
    assert red.salient.sum() == k and np.all(red.salient[:k])
    top = np.argsort(-scores, kind="stable")[:k]
    np.testing.assert_array_equal(red.reduced[:k], seg[top, :3])
    rest = np.setdiff1d(np.arange(len(seg)), top)
    # minimal radius: one notch smaller leaves too many clusters
    centres = seg[rest, :2]
    smaller = cluster_single_linkage(centres, float(np.nextafter(red.eps, 0.0)))
    assert smaller.max() + 1 > max_pts - k
    # the clusters are DBSCAN's
    ref = DBSCAN(eps=red.eps, min_samples=1, algorithm="kd_tree").fit(centres).labels_
    assert _same_partition(red.source[rest], ref)
    np.testing.assert_array_equal(red.source[top], np.arange(k))


def test_cluster_mean_and_modal_direction() -> None:
    seg = _seg(
        [(0, 0, 90), (1, 0, 0), (2, 0, 0), (2, 1, 90), (40, 40, 45), (41, 40, -45), (90, 90, 0)]
    )
    scores = np.array([0, 0, 0, 0, 0, 0, 9.0])
    red = reduce_segments(seg, scores, max_pts=3, salient_fraction=1 / 3)
    np.testing.assert_array_equal(red.salient, [True, False, False])
    np.testing.assert_array_equal(red.reduced[0], [90, 90, 0])
    # cluster 1: two 0° and two 90° votes -> tie goes to 0°
    np.testing.assert_allclose(red.reduced[1], [1.25, 0.25, 0.0])
    # cluster 2: one 45° and one -45° vote -> 45°
    np.testing.assert_allclose(red.reduced[2], [40.5, 40.0, 45.0])
    assert list(red.source) == [1, 1, 1, 1, 2, 2, 0]


def test_ties_in_score_keep_scan_order() -> None:
    seg = _random_segments(60, 1)
    red = reduce_segments(seg, np.ones(len(seg)), 10, 0.5)
    np.testing.assert_array_equal(red.reduced[:5], seg[:5, :3])


def test_few_segments_are_all_kept() -> None:
    seg = _random_segments(30, 2)
    scores = importance_scores(seg, 0.1, 100, 100)
    red = reduce_segments(seg, scores, 500, 0.2)
    assert red.reduced.shape[0] == len(seg) and red.eps == 0.0
    assert red.salient.sum() == min(100, len(seg))
    np.testing.assert_array_equal(red.reduced[red.source], seg[:, :3])


def test_only_salient_when_fraction_is_one() -> None:
    seg = _random_segments(50, 3)
    scores = importance_scores(seg, 0.1, 100, 100)
    red = reduce_segments(seg, scores, 10, 1.0)
    assert red.reduced.shape[0] == 10 and red.salient.all()
    assert np.sum(red.source >= 0) == 10


def test_reduction_is_deterministic() -> None:
    seg = _random_segments(3000, 4)
    scores = importance_scores(seg, 0.1, 100, 100)
    a = reduce_segments(seg, scores, 200)
    b = reduce_segments(seg.copy(), scores.copy(), 200)
    assert a.reduced.tobytes() == b.reduced.tobytes()
    assert a.source.tobytes() == b.source.tobytes() and a.eps == b.eps


def test_linkage_tree_counts() -> None:
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [5.0, 0.5], [20.0, 0.0]])
    tree = LinkageTree.build(pts)
    np.testing.assert_allclose(tree.sorted_squared(), [0.25, 1.0, 16.0, 225.0])
    assert tree.minimal_radius(2) == 4.0
    assert list(tree.labels(4.0)) == [0, 0, 0, 0, 1]


def test_bad_reduction_arguments() -> None:
    seg = _random_segments(5, 5)
    with pytest.raises(ValueError, match="scores"):
        reduce_segments(seg, np.zeros(3), 2)
    with pytest.raises(ValueError, match="max_pts"):
        reduce_segments(seg, np.zeros(len(seg)), 0)


def _score_oracle(seg: np.ndarray, lam: float, h: int, w: int) -> np.ndarray:
    diag = math.hypot(w, h)
    dist = squareform(pdist(seg[:, :2]))
    out = np.empty(len(seg))
    for i in range(len(seg)):
        same = seg[:, 2] == seg[i, 2]
        same[i] = False
        parts = []
        for mask in (same, seg[:, 2] != seg[i, 2]):
            d = np.sort(dist[i, mask])[:2]
            parts.append(d.mean() if d.size else diag)
        out[i] = (1 - lam) * parts[0] + lam * parts[1]
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 120), st.integers(0, 80), st.sampled_from([0.0, 90.0, 45.0, -45.0])
        ),
        min_size=1,
        max_size=60,
        unique=True,
    ),
    st.floats(0.0, 1.0),
)
def test_scores_match_brute_force(rows: list[tuple[int, int, float]], lam: float) -> None:
    seg = _seg([(x / 2.0, y / 2.0, t) for x, y, t in rows])
    np.testing.assert_allclose(
        importance_scores(seg, lam, 41, 61), _score_oracle(seg, lam, 41, 61), rtol=1e-12, atol=1e-12
    )


def test_scores_with_a_far_sparse_direction() -> None:
    rng = np.random.default_rng(11)
    dense = np.column_stack(
        [rng.integers(0, 40, 300) / 2.0, rng.integers(0, 40, 300) / 2.0, np.zeros(300)]
    )
    seg = np.unique(dense, axis=0)
    seg = np.vstack([seg, [[400.0, 300.0, 90.0], [0.5, 350.0, 45.0]]])
    seg = np.column_stack([seg, np.full(len(seg), 2.0)])
    np.testing.assert_allclose(
        importance_scores(seg, 0.4, 400, 500), _score_oracle(seg, 0.4, 400, 500), rtol=1e-12
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grown_forest_agrees_with_the_complete_tree(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # clustered lattice points: a few dense blobs far apart, as edges give
    blobs = [rng.normal(c, 4.0, (400, 2)) for c in ([50, 50], [300, 80], [120, 400])]
    pts = np.round(np.vstack(blobs) * 2) / 2
    for c in (3, 50, 600):
        grown = LinkageTree.build(pts, c)
        full = LinkageTree.build(pts)
        eps = grown.minimal_radius(c)
        assert eps == full.minimal_radius(c)
        np.testing.assert_array_equal(grown.labels(eps), full.labels(eps))
