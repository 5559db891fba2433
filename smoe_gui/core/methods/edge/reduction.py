"""Importance scores (paper eq. 6-8) and the DBSCAN reduction (Sec. III-B).

Importance score
----------------
For segment ``i`` with direction ``θ_i`` and centre ``c_i``:

* ``d_same(i)``: mean distance from ``c_i`` to the centres of the two nearest
  *other* segments with the same direction ("Top-2");
* ``d_other(i)``: mean distance to the two nearest segments with any of the
  three other directions;
* ``score(i) = (1 - λ)·d_same(i) + λ·d_other(i)``.

With fewer than two candidates the mean runs over those that exist; with none
the distance is the image diagonal ``sqrt(W² + H²)``.  A high score means an
isolated segment, i.e. a salient feature that clustering would swallow.

Reduction
---------
With ``N > max_pts`` segments, the ``K = round(salient_fraction·max_pts)``
best-scoring segments (stable descending sort) are kept as they are; the
remaining ``N - K`` are clustered by DBSCAN with ``min_samples = 1`` on their
centres, which is single-linkage clustering cut at the radius ε.  The smallest
ε giving at most ``C = max_pts - K`` clusters is read off the Euclidean
minimum spanning tree (EMST) exactly: with the MST edge lengths sorted
ascending ``e_1 <= ... <= e_{n-1}``, cutting at ε leaves ``n - #{e_j <= ε}``
components, so ``ε = e_{n-C}``.  The EMST comes from the Delaunay
triangulation (every EMST edge is a Delaunay edge), which makes the search
``O(n log n)``.  Each cluster becomes its mean centre and its modal direction
(ties go to the first in the order 0°, 90°, 45°, -45°).

With ``N <= max_pts`` nothing is clustered: every segment is kept, the ``K``
best-scoring ones are flagged salient, and ε is reported as 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from .._unionfind import find as find_root
from .segments import DIRECTIONS, direction_index

__all__ = [
    "LinkageTree",
    "Reduction",
    "cluster_single_linkage",
    "emst_edges",
    "importance_scores",
    "minimal_radius",
    "radius_for",
    "reduce_segments",
    "salient_count",
]

F64 = NDArray[np.float64]


# ---------------------------------------------------------------------------
# importance score
# ---------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def _grid_build(
    px: F64, py: F64, cell: float, x0: float, y0: float, nx: int, ny: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:  # pragma: no cover - compiled
    """Bucket points into an ``nx x ny`` grid: (cell start offsets, point order)."""
    n = px.size
    cells = np.empty(n, dtype=np.int64)
    start = np.zeros(nx * ny + 1, dtype=np.int64)
    for i in range(n):
        cx = min(max(int(math.floor((px[i] - x0) / cell)), 0), nx - 1)
        cy = min(max(int(math.floor((py[i] - y0) / cell)), 0), ny - 1)
        c = cy * nx + cx
        cells[i] = c
        start[c + 1] += 1
    for c in range(nx * ny):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        order[fill[cells[i]]] = i
        fill[cells[i]] += 1
    return start, order


@numba.njit(cache=True, nogil=True, parallel=True)
def _nearest_two(
    qx: F64, qy: F64, qself: NDArray[np.int64],
    px: F64, py: F64, start: NDArray[np.int64], order: NDArray[np.int64],
    cell: float, x0: float, y0: float, nx: int, ny: int, best: F64,
) -> None:  # pragma: no cover - compiled
    """Exact two smallest squared distances from each query to the grid's points
    (skipping point ``qself[q]``), merged into ``best`` (nq, 2) in place."""
    for q in numba.prange(qx.size):
        b1 = best[q, 0]
        b2 = best[q, 1]
        x = qx[q]
        y = qy[q]
        cx = min(max(int(math.floor((x - x0) / cell)), 0), nx - 1)
        cy = min(max(int(math.floor((y - y0) / cell)), 0), ny - 1)
        rmax = max(max(cx, nx - 1 - cx), max(cy, ny - 1 - cy))
        for r in range(rmax + 1):
            if r >= 1:
                reach = (r - 1) * cell  # every unvisited cell is at least this far
                if b2 <= reach * reach:
                    break
            for gy in range(cy - r, cy + r + 1):
                if gy < 0 or gy >= ny:
                    continue
                edge_row = gy == cy - r or gy == cy + r
                gx = cx - r
                while gx <= cx + r:
                    if 0 <= gx < nx:
                        c = gy * nx + gx
                        for k in range(start[c], start[c + 1]):
                            i = order[k]
                            if i == qself[q]:
                                continue
                            ddx = px[i] - x
                            ddy = py[i] - y
                            d = ddx * ddx + ddy * ddy
                            if d < b2:
                                if d < b1:
                                    b2 = b1
                                    b1 = d
                                else:
                                    b2 = d
                    if edge_row or r == 0:
                        gx += 1
                    else:
                        gx += 2 * r  # interior rows: only the two ring columns
        best[q, 0] = b1
        best[q, 1] = b2


class _PointGrid:
    """A bucket grid over one point set for exact two-nearest queries."""

    def __init__(self, points: F64) -> None:
        self.px = np.ascontiguousarray(points[:, 0])
        self.py = np.ascontiguousarray(points[:, 1])
        n = points.shape[0]
        self.x0 = float(self.px.min())
        self.y0 = float(self.py.min())
        w = max(float(self.px.max()) - self.x0, 1.0)
        h = max(float(self.py.max()) - self.y0, 1.0)
        # half the uniform spacing (segment centres crowd along edges),
        # at most 4096 cells a side
        self.cell = max(math.sqrt(w * h / n) / 2.0, w / 4096.0, h / 4096.0, 0.5)
        self.nx = int(w / self.cell) + 1
        self.ny = int(h / self.cell) + 1
        self.start, self.order = _grid_build(
            self.px, self.py, self.cell, self.x0, self.y0, self.nx, self.ny
        )

    def nearest_two(
        self, queries: F64, best: F64, exclude: NDArray[np.int64] | None = None
    ) -> None:
        """Merge the two smallest squared distances into ``best`` (nq, 2)."""
        q = np.ascontiguousarray(queries)
        skip = np.full(q.shape[0], -1, dtype=np.int64) if exclude is None else exclude
        _nearest_two(
            np.ascontiguousarray(q[:, 0]), np.ascontiguousarray(q[:, 1]), skip,
            self.px, self.py, self.start, self.order, self.cell, self.x0, self.y0,
            self.nx, self.ny, best,
        )


def _mean_of_nearest(squared: F64, fallback: float) -> F64:
    """Row-wise mean of the finite square roots of ``squared`` (P, 2); ``fallback`` if none."""
    dist = np.sqrt(squared)
    finite = np.isfinite(dist)
    count = finite.sum(axis=1)
    total = np.where(finite, dist, 0.0).sum(axis=1)
    out = np.full(dist.shape[0], fallback, dtype=np.float64)
    has = count > 0
    out[has] = total[has] / count[has]
    return out


def importance_scores(segments: F64, lam: float, height: int, width: int) -> F64:
    """Importance score of every segment (eq. 6-8, reading in the module doc).

    Parameters
    ----------
    segments : (N, 4) float64
        ``x, y, θ, length`` as from :func:`~smoe_gui.core.methods.edge.segments.scan_segments`.
    lam : float
        λ in [0, 1]: weight of the other-direction distance; ``1 - λ`` weighs
        the same-direction distance.
    height, width : int
        Image size in pixels (the diagonal is the distance when there is no
        neighbour at all).

    Returns
    -------
    (N,) float64
        Scores in pixels; larger = more isolated = more salient.

    Notes
    -----
    The two nearest neighbours are found exactly with a bucket grid per
    direction (compiled), one query per (segment, direction) pair.
    """
    seg = np.asarray(segments, dtype=np.float64)
    n = seg.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    if not (0.0 <= lam <= 1.0):
        raise ValueError(f"lam must lie in [0, 1], got {lam}")
    diagonal = math.hypot(width, height)
    d_index = direction_index(seg[:, 2])
    centres = np.ascontiguousarray(seg[:, :2])
    groups = [np.flatnonzero(d_index == d) for d in range(len(DIRECTIONS))]
    points = [centres[g] for g in groups]
    same = [np.full((g.size, 2), np.inf) for g in groups]
    other = [np.full((g.size, 2), np.inf) for g in groups]
    for d, members in enumerate(groups):
        if members.size == 0:
            continue
        grid = _PointGrid(points[d])
        for e, queries in enumerate(points):
            if queries.shape[0] == 0:
                continue
            if e == d:
                grid.nearest_two(queries, same[e], np.arange(queries.shape[0], dtype=np.int64))
            else:
                grid.nearest_two(queries, other[e])
    d_same = np.empty(n, dtype=np.float64)
    d_other = np.empty(n, dtype=np.float64)
    for d, members in enumerate(groups):
        d_same[members] = _mean_of_nearest(same[d], diagonal)
        d_other[members] = _mean_of_nearest(other[d], diagonal)
    return (1.0 - lam) * d_same + lam * d_other


# ---------------------------------------------------------------------------
# exact single-linkage radius
# ---------------------------------------------------------------------------
def _squared_distances(points: F64, i: NDArray[np.intp], j: NDArray[np.intp]) -> F64:
    d = points[i] - points[j]
    return d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]


def radius_for(squared: float) -> float:
    """The smallest float ε with ``ε·ε >= squared`` in float64 arithmetic.

    Neighbourhoods are decided as ``dx² + dy² <= ε²`` (as scikit-learn's
    tree-based DBSCAN does); this ε is the exact smallest radius that admits a
    pair at squared distance ``squared``.
    """
    if squared <= 0.0:
        return 0.0
    eps = math.sqrt(squared)
    while eps * eps < squared:
        eps = float(np.nextafter(eps, math.inf))
    while True:
        lower = float(np.nextafter(eps, 0.0))
        if lower * lower >= squared:
            eps = lower
        else:
            return eps


#: Coordinates on the half-pixel lattice up to this size are exact in float32,
#: which lets OpenCV's incremental Delaunay (much faster than Qhull on the
#: many co-circular points of a lattice) triangulate them exactly.
_LATTICE_LIMIT = 2.0**20


def _lattice_keys(points: F64) -> NDArray[np.int64] | None:
    """Integer keys of points on the half-pixel lattice, or None if off it."""
    twice = points * 2.0
    if not np.all(np.abs(twice) < _LATTICE_LIMIT) or not np.array_equal(twice, np.rint(twice)):
        return None
    ix = twice[:, 0].astype(np.int64) + int(_LATTICE_LIMIT)
    iy = twice[:, 1].astype(np.int64) + int(_LATTICE_LIMIT)
    return ix * (4 * int(_LATTICE_LIMIT)) + iy


def _opencv_delaunay_edges(
    pts: F64, keys: NDArray[np.int64]
) -> tuple[NDArray[np.intp], NDArray[np.intp]] | None:
    """Delaunay edges of distinct lattice points by ``cv2.Subdiv2D``; None on failure."""
    import cv2

    n = pts.shape[0]
    order = np.argsort(keys, kind="stable")  # sweep order: fast point location
    sorted_keys = keys[order]
    lo = np.floor(pts.min(axis=0)) - 2.0
    hi = np.ceil(pts.max(axis=0)) + 3.0
    subdiv = cv2.Subdiv2D((int(lo[0]), int(lo[1]), int(hi[0] - lo[0]), int(hi[1] - lo[1])))
    inserted: Any = np.ascontiguousarray(pts[order], dtype=np.float32)
    subdiv.insert(inserted)
    ends = np.asarray(subdiv.getEdgeList(), dtype=np.float64).reshape(-1, 2)
    ends_keys = _lattice_keys(ends)
    if ends_keys is None:
        return None
    pos = np.minimum(np.searchsorted(sorted_keys, ends_keys), n - 1)
    found = (sorted_keys[pos] == ends_keys).reshape(-1, 2)
    ids = order[pos].reshape(-1, 2)
    real = found.all(axis=1)  # edges to the virtual outer vertices are dropped
    a, b = ids[real, 0], ids[real, 1]
    if not np.all(np.bincount(np.concatenate([a, b]), minlength=n) > 0):
        return None
    return a.astype(np.intp), b.astype(np.intp)


def _qhull_delaunay_edges(pts: F64) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Delaunay edges of distinct points by Qhull."""
    from scipy.spatial import Delaunay, QhullError

    n = pts.shape[0]
    try:
        tri = Delaunay(pts)
    except QhullError:  # nearly collinear: joggled input still yields the near edges
        tri = Delaunay(pts, qhull_options="QJ")
    simplices = tri.simplices
    a = np.concatenate([simplices[:, 0], simplices[:, 1], simplices[:, 2]])
    b = np.concatenate([simplices[:, 1], simplices[:, 2], simplices[:, 0]])
    if len(tri.coplanar):
        # points Qhull left out of the triangulation (numerically degenerate):
        # link each to its nearest neighbours so the graph stays connected.
        tree = cKDTree(pts)
        left_out = np.asarray(tri.coplanar[:, 0], dtype=np.intp)
        k = min(9, n)
        _, nn = tree.query(pts[left_out], k=k)
        a = np.concatenate([a, np.repeat(left_out, k - 1)])
        b = np.concatenate([b, nn[:, 1:].ravel()])
    return a.astype(np.intp), b.astype(np.intp)


@numba.njit(cache=True, nogil=True)
def _edge_order(sq: F64, lattice: bool) -> NDArray[np.int64]:  # pragma: no cover - compiled
    """Stable ascending order of ``sq``; a counting sort when every value is a
    multiple of 1/4 (squared distances between half-pixel lattice points)."""
    m = sq.size
    if not lattice or m == 0:
        return np.argsort(sq, kind="mergesort")
    top = 0
    for e in range(m):
        top = max(top, int(sq[e] * 4.0))
    if top > 4 * m + 1024:
        return np.argsort(sq, kind="mergesort")
    start = np.zeros(top + 2, dtype=np.int64)
    for e in range(m):
        start[int(sq[e] * 4.0) + 1] += 1
    for v in range(top + 1):
        start[v + 1] += start[v]
    order = np.empty(m, dtype=np.int64)
    for e in range(m):
        v = int(sq[e] * 4.0)
        order[start[v]] = e
        start[v] += 1
    return order


@numba.njit(cache=True, nogil=True)
def _kruskal(
    n: int, a: NDArray[np.int64], b: NDArray[np.int64], sq: F64, lattice: bool
) -> tuple[NDArray[np.int64], NDArray[np.int64], F64]:  # pragma: no cover - compiled
    """Minimum spanning forest of the candidate edges, edges in ascending order."""
    order = _edge_order(sq, lattice)
    parent = np.arange(n)
    ti = np.empty(max(n - 1, 0), dtype=np.int64)
    tj = np.empty(max(n - 1, 0), dtype=np.int64)
    tsq = np.empty(max(n - 1, 0), dtype=np.float64)
    k = 0
    for e in order:
        if k == n - 1:
            break
        ra = find_root(parent, a[e])
        rb = find_root(parent, b[e])
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
            ti[k] = a[e]
            tj[k] = b[e]
            tsq[k] = sq[e]
            k += 1
    return ti[:k].copy(), tj[:k].copy(), tsq[:k].copy()


@numba.njit(cache=True, nogil=True)
def _labels_at(
    n: int, ti: NDArray[np.int64], tj: NDArray[np.int64], tsq: F64, limit: float
) -> NDArray[np.int64]:  # pragma: no cover - compiled
    """Components of the forest edges with ``tsq <= limit``, numbered by first point."""
    parent = np.arange(n)
    for e in range(ti.size):
        if tsq[e] <= limit:
            ra = find_root(parent, ti[e])
            rb = find_root(parent, tj[e])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    label = np.full(n, -1, dtype=np.int64)
    out = np.empty(n, dtype=np.int64)
    nxt = 0
    for i in range(n):
        r = find_root(parent, i)
        if label[r] < 0:
            label[r] = nxt
            nxt += 1
        out[i] = label[r]
    return out


@numba.njit(cache=True, nogil=True)
def _pairs_within(
    px: F64, py: F64, start: NDArray[np.int64], order: NDArray[np.int64],
    cell: float, x0: float, y0: float, nx: int, ny: int, limit: float, budget: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64], F64, bool]:  # pragma: no cover - compiled
    """All pairs ``i < j`` with squared distance ``<= limit`` (grid cell >= radius).

    Returns ``ok = False`` (and partial arrays) when there are more than ``budget``.
    """
    a = np.empty(budget, dtype=np.int64)
    b = np.empty(budget, dtype=np.int64)
    sq = np.empty(budget, dtype=np.float64)
    k = 0
    for i in range(px.size):
        cx = min(max(int(math.floor((px[i] - x0) / cell)), 0), nx - 1)
        cy = min(max(int(math.floor((py[i] - y0) / cell)), 0), ny - 1)
        for gy in range(max(cy - 1, 0), min(cy + 2, ny)):
            for gx in range(max(cx - 1, 0), min(cx + 2, nx)):
                c = gy * nx + gx
                for m in range(start[c], start[c + 1]):
                    j = order[m]
                    if j <= i:
                        continue
                    ddx = px[j] - px[i]
                    ddy = py[j] - py[i]
                    d = ddx * ddx + ddy * ddy
                    if d <= limit:
                        if k == budget:
                            return a[:k], b[:k], sq[:k], False
                        a[k] = i
                        b[k] = j
                        sq[k] = d
                        k += 1
    return a[:k].copy(), b[:k].copy(), sq[:k].copy(), True


def _spanning_forest(
    pts: F64, a: NDArray[np.intp], b: NDArray[np.intp]
) -> tuple[NDArray[np.intp], NDArray[np.intp], F64]:
    """Minimum spanning forest of candidate edges ``(a, b)`` of ``pts``, ascending."""
    n = pts.shape[0]
    lo = np.minimum(a, b).astype(np.int64)
    hi = np.maximum(a, b).astype(np.int64)
    keep = lo != hi
    lo, hi = lo[keep], hi[keep]
    ti, tj, tsq = _kruskal(n, lo, hi, _squared_distances(pts, lo, hi),
                           _lattice_keys(pts) is not None)
    return ti.astype(np.intp), tj.astype(np.intp), tsq


def emst_edges(points: F64) -> tuple[NDArray[np.intp], NDArray[np.intp], F64]:
    """Euclidean minimum spanning tree of distinct 2-D points.

    Parameters
    ----------
    points : (n, 2) float64
        Pairwise distinct points.

    Returns
    -------
    i, j : (n - 1,) intp
        Endpoints of the tree edges, in ascending order of length.
    squared : (n - 1,) float64
        Squared edge lengths ``dx² + dy²`` (px²), ascending.

    Notes
    -----
    Every EMST edge is an edge of every Delaunay triangulation (its closed
    diametral disc holds no other point, or a shorter cycle would replace it),
    so the tree is the minimum spanning tree (Kruskal) of the Delaunay graph.
    Points on the half-pixel lattice (segment centres) are triangulated by
    OpenCV's ``Subdiv2D``, others by Qhull.  Fewer than three points, or all
    points on one line (where no triangulation exists), are chained in order
    along the line, which is their exact EMST.
    """
    pts = np.ascontiguousarray(points, dtype=np.float64)
    n = pts.shape[0]
    empty_i = np.zeros(0, dtype=np.intp)
    if n < 2:
        return empty_i, empty_i, np.zeros(0, dtype=np.float64)
    rel = pts - pts[0]
    far = int(np.argmax(np.abs(rel).sum(axis=1)))
    cross = rel[far, 0] * rel[:, 1] - rel[far, 1] * rel[:, 0]
    scale = float(np.abs(rel).max()) or 1.0
    if n < 3 or np.all(np.abs(cross) <= 1e-12 * scale * scale):
        direction = rel[far]
        order = np.argsort(rel @ direction, kind="stable")
        return _spanning_forest(pts, order[:-1], order[1:])
    keys = _lattice_keys(pts)
    edges = _opencv_delaunay_edges(pts, keys) if keys is not None else None
    if edges is not None:
        i, j, squared = _spanning_forest(pts, *edges)
        if i.size == n - 1:
            return i, j, squared
    # off the lattice, or (safety net) OpenCV's triangulation came out incomplete
    return _spanning_forest(pts, *_qhull_delaunay_edges(pts))


def _unique_points(points: F64) -> tuple[F64, NDArray[np.intp]]:
    """Distinct points (sorted) and the inverse map (n,) into them."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    keys = _lattice_keys(pts)
    if keys is None:
        uniq, inverse = np.unique(pts, axis=0, return_inverse=True)
        return uniq, np.asarray(inverse).ravel().astype(np.intp)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    group = np.cumsum(first) - 1
    inverse = np.empty(order.size, dtype=np.intp)
    inverse[order] = group
    return pts[order[first]], inverse


class LinkageTree:
    """Single linkage (= DBSCAN with ``min_samples=1``) of a point set, exactly.

    Holds the Euclidean minimum spanning forest of the distinct points, either
    complete (``reach = inf``) or all its edges up to length ``reach``, which
    is all that single linkage needs at any radius ``<= reach``.

    Parameters
    ----------
    points : (n, 2) float64
    max_clusters : int, optional
        When given, the forest is grown only as far as needed to reach at most
        this many clusters: all point pairs within a radius ``R`` (bucket grid)
        feed Kruskal's algorithm, ``R`` growing by 1.5 from ``min(3 px, mean
        spacing)`` until the forest has at most ``max_clusters`` components.  Forest edges
        up to ``R`` are exactly the EMST edges up to ``R``.  When the pairs
        would exceed ``16·n``, the complete EMST from a Delaunay triangulation
        is used instead.  Either way the result is exact.

    Attributes
    ----------
    n : int
        Number of points.
    inverse : (n,) intp
        Index of each point's distinct representative.
    i, j : (e,) intp
        Forest edges between distinct representatives, ascending length.
    squared : (e,) float64
        Squared edge lengths (px²), ascending.
    reach : float
        Every EMST edge not longer than ``reach`` (px) is in the forest.
    """

    def __init__(self, points: F64, max_clusters: int | None = None) -> None:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self.n = int(pts.shape[0])
        self._uniq, self.inverse = _unique_points(pts)
        self._lattice = _lattice_keys(self._uniq) is not None
        self.reach = math.inf
        forest = None
        u = self._uniq.shape[0]
        if max_clusters is not None and u > max(max_clusters, 2):
            forest = self._grow(max_clusters)
        if forest is None:
            forest = emst_edges(self._uniq)
            self.reach = math.inf
        self.i, self.j, self.squared = forest

    @classmethod
    def build(cls, points: F64, max_clusters: int | None = None) -> LinkageTree:
        """The linkage of ``points`` (n, 2); see the class doc."""
        return cls(points, max_clusters)

    def _grow(self, max_clusters: int) -> tuple[NDArray[np.intp], NDArray[np.intp], F64] | None:
        pts = self._uniq
        u = pts.shape[0]
        px = np.ascontiguousarray(pts[:, 0])
        py = np.ascontiguousarray(pts[:, 1])
        x0, y0 = float(px.min()), float(py.min())
        w = max(float(px.max()) - x0, 1.0)
        h = max(float(py.max()) - y0, 1.0)
        # start near the typical spacing of edge-segment centres; grow by 1.5
        radius = min(math.sqrt(w * h / u), 3.0)
        budget = 16 * u + 64
        while True:
            cell = max(radius, w / 2048.0, h / 2048.0)
            nx, ny = int(w / cell) + 1, int(h / cell) + 1
            start, order = _grid_build(px, py, cell, x0, y0, nx, ny)
            a, b, sq, ok = _pairs_within(px, py, start, order, cell, x0, y0, nx, ny,
                                         radius * radius, budget)
            if not ok:
                return None
            ti, tj, tsq = _kruskal(u, a, b, sq, self._lattice)
            if u - ti.size <= max_clusters:
                self.reach = radius
                return ti.astype(np.intp), tj.astype(np.intp), tsq
            radius *= 1.5

    def _complete(self) -> None:
        if self.reach != math.inf:
            self.i, self.j, self.squared = emst_edges(self._uniq)
            self.reach = math.inf

    def sorted_squared(self) -> F64:
        """All ``n - 1`` squared merge heights ascending (duplicates merge at 0)."""
        self._complete()
        duplicates = self.n - self._uniq.shape[0]
        return np.concatenate([np.zeros(duplicates), self.squared])

    def minimal_radius(self, max_clusters: int) -> float:
        """Smallest ε giving at most ``max_clusters`` clusters (0 if ``n <= max_clusters``)."""
        if max_clusters < 1:
            raise ValueError(f"max_clusters must be at least 1, got {max_clusters}")
        if self.n <= max_clusters:
            return 0.0
        duplicates = self.n - self._uniq.shape[0]
        index = self.n - max_clusters - 1 - duplicates  # into the forest edges
        if index < 0:
            return 0.0
        if index >= self.squared.size:
            self._complete()
        return radius_for(float(self.squared[index]))

    def labels(self, eps: float) -> NDArray[np.intp]:
        """Cluster labels at radius ``eps``, numbered by first appearance."""
        if self.n == 0:
            return np.zeros(0, dtype=np.intp)
        if eps > self.reach:
            self._complete()
        u = self._uniq.shape[0]
        limit = eps * eps
        rep = _labels_at(u, self.i.astype(np.int64), self.j.astype(np.int64), self.squared, limit)
        raw = rep[self.inverse]
        # renumber by first appearance in the original point order
        first = np.full(u, self.n, dtype=np.int64)
        np.minimum.at(first, raw, np.arange(self.n))
        used = first < self.n
        rank = np.full(u, -1, dtype=np.int64)
        rank[np.flatnonzero(used)[np.argsort(first[used], kind="stable")]] = np.arange(
            int(used.sum())
        )
        return rank[raw].astype(np.intp)


def minimal_radius(points: F64, max_clusters: int) -> float:
    """Smallest ε for which single linkage at ε (DBSCAN, ``min_samples=1``)
    gives at most ``max_clusters`` clusters.

    Parameters
    ----------
    points : (n, 2) float64
    max_clusters : int
        At least 1.

    Returns
    -------
    float
        ε in the units of ``points``; 0 when ``n <= max_clusters``.
    """
    return LinkageTree.build(points).minimal_radius(max_clusters)


def cluster_single_linkage(points: F64, eps: float) -> NDArray[np.intp]:
    """Cluster labels of single linkage cut at ``eps`` (= DBSCAN, ``min_samples=1``).

    Two points share a cluster when a chain of points with steps ``<= eps``
    joins them.

    Returns
    -------
    (n,) intp
        Labels ``0..C-1``, numbered in the order of each cluster's first point.
    """
    return LinkageTree.build(points).labels(eps)


# ---------------------------------------------------------------------------
# the reduction
# ---------------------------------------------------------------------------
def salient_count(max_pts: int, salient_fraction: float) -> int:
    """``K = round(salient_fraction·max_pts)``, halves rounded up."""
    return int(math.floor(salient_fraction * max_pts + 0.5))


@dataclass(frozen=True, eq=False)
class Reduction:
    """Result of :func:`reduce_segments`.

    Attributes
    ----------
    reduced : (M, 3) float64
        ``x, y, θ`` of each reduced segment: the salient ones first (best score
        first), then one per cluster in the order of the cluster's first raw
        segment.
    salient : (M,) bool
        True for the salient (kept as is) segments.
    source : (N,) intp
        For each raw segment, the row of ``reduced`` it went into; ``-1`` if it
        was dropped (only when ``salient_fraction = 1``).
    eps : float
        The DBSCAN radius in pixels (0 when nothing was clustered).
    """

    reduced: F64
    salient: NDArray[np.bool_]
    source: NDArray[np.intp]
    eps: float


def reduce_segments(
    segments: F64, scores: F64, max_pts: int, salient_fraction: float = 0.2
) -> Reduction:
    """Reduce the raw segments to at most ``max_pts`` (Sec. III-B).

    Parameters
    ----------
    segments : (N, 4) float64
        ``x, y, θ, length``.
    scores : (N,) float64
        Importance scores.
    max_pts : int
        Largest number of reduced segments, >= 1.
    salient_fraction : float
        ``K = round(salient_fraction·max_pts)`` best scorers are kept as is.

    Returns
    -------
    Reduction
    """
    seg = np.asarray(segments, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64)
    n = seg.shape[0]
    if sc.shape != (n,):
        raise ValueError(f"scores has shape {sc.shape}, expected ({n},)")
    if max_pts < 1:
        raise ValueError(f"max_pts must be at least 1, got {max_pts}")
    k = min(salient_count(max_pts, salient_fraction), n)
    ranking = np.argsort(-sc, kind="stable")  # stable descending sort
    top = ranking[:k]
    if n <= max_pts:
        rest = np.sort(ranking[k:])
        order = np.concatenate([top, rest])
        source = np.empty(n, dtype=np.intp)
        source[order] = np.arange(n)
        salient = np.zeros(n, dtype=bool)
        salient[:k] = True
        return Reduction(np.ascontiguousarray(seg[order, :3]), salient, source, 0.0)

    rest = np.sort(ranking[k:])  # original order of the non-salient segments
    n_clusters_max = max_pts - k
    source = np.full(n, -1, dtype=np.intp)
    source[top] = np.arange(k)
    if n_clusters_max == 0 or rest.size == 0:
        salient = np.ones(k, dtype=bool)
        return Reduction(np.ascontiguousarray(seg[top, :3]), salient, source, 0.0)

    centres = seg[rest, :2]
    tree = LinkageTree.build(centres, n_clusters_max)
    eps = tree.minimal_radius(n_clusters_max)
    labels = tree.labels(eps)
    c = int(labels.max()) + 1
    counts = np.bincount(labels, minlength=c).astype(np.float64)
    mean_x = np.bincount(labels, weights=centres[:, 0], minlength=c) / counts
    mean_y = np.bincount(labels, weights=centres[:, 1], minlength=c) / counts
    d_idx = direction_index(seg[rest, 2])
    votes = np.zeros((c, len(DIRECTIONS)), dtype=np.int64)
    np.add.at(votes, (labels, d_idx), 1)
    modal = np.argmax(votes, axis=1)  # first maximum: order 0, 90, 45, -45
    angles = np.array([a for a, _, _ in DIRECTIONS])
    clusters = np.stack([mean_x, mean_y, angles[modal]], axis=1)
    reduced = np.concatenate([seg[top, :3], clusters], axis=0)
    salient = np.zeros(k + c, dtype=bool)
    salient[:k] = True
    source[rest] = k + labels
    return Reduction(np.ascontiguousarray(reduced), salient, source, float(eps))
