"""Drawing geometry for the stage views, as plain numpy arrays (no Qt).

These turn stage results into polylines that pyqtgraph draws in one call each
(segment strokes come from :func:`smoe_gui.core.methods.drawing.segment_strokes`,
re-exported here).  They run in worker threads (see :mod:`smoe_gui.ui.control.jobs`),
never in a paint handler.  Coordinates are image coordinates: x = column, y = row (px).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...core import registry
from ...core.methods.drawing import segment_strokes
from ...core.model import SmoeModel, ellipse_axes
from ...core.registry import KernelKind

__all__ = [
    "INITIAL_CATEGORIES",
    "KERNEL_CATEGORIES",
    "KERNEL_CATEGORY_LABELS",
    "KERNEL_MODES",
    "SHARE_LEVELS",
    "TRAINED",
    "KernelGeometry",
    "TerritoryImages",
    "ReducedGeometry",
    "ellipse_polylines",
    "ellipse_polylines_of",
    "kernel_categories",
    "kernel_geometry",
    "kernel_hues",
    "max_pool_mask",
    "minor_categories",
    "share_levels",
    "territory_images",
    "reduced_geometry",
    "segment_strokes",
]

F64 = NDArray[np.float64]


_ELLIPSE_POINTS = 24


def _empty() -> F64:
    return np.zeros((0, 2), dtype=np.float64)


@dataclass(frozen=True)
class ReducedGeometry:
    """Reduced segments drawn as short strokes plus centre markers.

    Attributes
    ----------
    cluster_strokes, salient_strokes : (2n, 2) float64
        Stroke end points (pairs) of the clustered and of the salient segments.
    cluster_centres, salient_centres : (n, 2) float64
        Their centres.
    """

    cluster_strokes: F64 = field(default_factory=_empty)
    salient_strokes: F64 = field(default_factory=_empty)
    cluster_centres: F64 = field(default_factory=_empty)
    salient_centres: F64 = field(default_factory=_empty)


def reduced_geometry(
    reduced: F64, salient: NDArray[np.bool_], half_length: float
) -> ReducedGeometry:
    """Strokes for the reduced segments ``(M, 3)`` = x, y, θ with ``salient (M,)``.

    Each stroke has half-length ``half_length`` px along the segment direction.
    """
    red = np.asarray(reduced, dtype=np.float64).reshape(-1, 3)
    sal = np.asarray(salient, dtype=bool).reshape(-1)
    if len(sal) != len(red):
        sal = np.zeros(len(red), dtype=bool)
    theta = np.radians(red[:, 2])
    # θ is measured with y pointing down: 45° is the step (1, 1).
    t = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    a = red[:, :2] - half_length * t
    b = red[:, :2] + half_length * t
    strokes = np.stack([a, b], axis=1)
    return ReducedGeometry(
        cluster_strokes=strokes[~sal].reshape(-1, 2),
        salient_strokes=strokes[sal].reshape(-1, 2),
        cluster_centres=red[~sal, :2].copy(),
        salient_centres=red[sal, :2].copy(),
    )


def ellipse_polylines_of(mu: F64, axes: F64, min_axis: float = 0.0, pixel: float = 0.0) -> F64:
    """1-σ ellipses from centres ``mu (n, 2)`` and ``axes (n, 3)`` (major,
    minor semi-axis in px, angle in degrees) as one NaN-separated polyline.

    Both semi-axes are raised to at least ``min_axis`` px (a minimum size on
    screen: the caller passes the image length of a few screen pixels).  With
    ``pixel`` (image px per screen pixel), an ellipse gets as many points as
    its size on screen needs: 8 below 6 screen pixels of major semi-axis, 16
    below 24, else 32 (a 2,000-kernel overlay then paints ~3x faster than with
    24 points each); without it, 24 points each.

    Returns
    -------
    (m, 2) float64
        ``P + 1`` points per closed ellipse followed by a NaN row.
    """
    mu = np.asarray(mu, dtype=np.float64).reshape(-1, 2)
    axes = np.asarray(axes, dtype=np.float64).reshape(-1, 3)
    n = len(mu)
    if n == 0:
        return _empty()
    major = np.maximum(axes[:, 0], min_axis)
    minor = np.maximum(axes[:, 1], min_axis)
    if pixel > 0:
        screen = major / pixel
        counts = np.where(screen < 6.0, 8, np.where(screen < 24.0, 16, 32))
    else:
        counts = np.full(n, _ELLIPSE_POINTS)
    parts = []
    for points in np.unique(counts):
        sel = counts == points
        phi = np.radians(axes[sel, 2])
        t = np.linspace(0.0, 2.0 * np.pi, int(points) + 1)
        ct, st = np.cos(t)[None, :], np.sin(t)[None, :]
        cp, sp = np.cos(phi)[:, None], np.sin(phi)[:, None]
        a, b = major[sel][:, None], minor[sel][:, None]
        pts = np.empty((int(sel.sum()), int(points) + 2, 2), dtype=np.float64)
        pts[:, :-1, 0] = mu[sel, 0:1] + a * ct * cp - b * st * sp
        pts[:, :-1, 1] = mu[sel, 1:2] + a * ct * sp + b * st * cp
        pts[:, -1, :] = np.nan
        parts.append(pts.reshape(-1, 2))
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def ellipse_polylines(model: SmoeModel, index: NDArray[np.intp] | None = None) -> F64:
    """1-σ ellipses of the selected kernels as one polyline with NaN breaks.

    Returns
    -------
    (n·(P+2), 2) float64
        ``P + 1`` points per closed ellipse followed by a NaN row (use
        ``connect="finite"``).  Infinite axes are clipped to the image diagonal.
    """
    idx = np.arange(model.n_kernels) if index is None else np.asarray(index, dtype=np.intp)
    if len(idx) == 0:
        return _empty()
    axes = ellipse_axes(model)[idx]
    limit = float(np.hypot(model.width, model.height))
    major = np.minimum(np.nan_to_num(axes[:, 0], posinf=limit), limit)
    minor = np.minimum(np.nan_to_num(axes[:, 1], posinf=limit), limit)
    phi = np.radians(axes[:, 2])
    t = np.linspace(0.0, 2.0 * np.pi, _ELLIPSE_POINTS + 1)
    ct, st = np.cos(t)[None, :], np.sin(t)[None, :]
    cp, sp = np.cos(phi)[:, None], np.sin(phi)[:, None]
    ex = major[:, None] * ct * cp - minor[:, None] * st * sp
    ey = major[:, None] * ct * sp + minor[:, None] * st * cp
    mu = model.mu[idx]
    pts = np.empty((len(idx), _ELLIPSE_POINTS + 2, 2), dtype=np.float64)
    pts[:, :-1, 0] = mu[:, 0:1] + ex
    pts[:, :-1, 1] = mu[:, 1:2] + ey
    pts[:, -1, :] = np.nan
    return pts.reshape(-1, 2)


#: The kind of a trained or loaded model's kernels.
TRAINED = "trained"


def _kinds() -> dict[str, KernelKind]:
    """Every registered method's kernel kinds by key, in registry order, then "trained"."""
    out: dict[str, KernelKind] = {}
    for method in registry.all():
        for kind in getattr(method, "kernel_kinds", ()) or (
            KernelKind(method.name, method.name, 0),
        ):
            out.setdefault(kind.key, kind)
    out[TRAINED] = KernelKind(TRAINED, "trained / loaded", 55)
    return out


class _Categories(Sequence[str]):
    """:data:`KERNEL_CATEGORIES`, read from the registry each time."""

    def __getitem__(self, index: Any) -> Any:
        return tuple(_kinds())[index]

    def __len__(self) -> int:
        return len(_kinds())

    def __iter__(self) -> Iterator[str]:
        return iter(_kinds())

    def __contains__(self, item: object) -> bool:
        return item in _kinds()


class _Labels(Mapping[str, str]):
    """:data:`KERNEL_CATEGORY_LABELS`, read from the registry each time."""

    def __getitem__(self, key: str) -> str:
        return _kinds()[key].label

    def __iter__(self) -> Iterator[str]:
        return iter(_kinds())

    def __len__(self) -> int:
        return len(_kinds())


class _Initial(Mapping[str, tuple[str, ...]]):
    """:data:`INITIAL_CATEGORIES`, read from the registry each time."""

    def __getitem__(self, name: str) -> tuple[str, ...]:
        if name not in registry.names():
            raise KeyError(name)
        method = registry.get(name)
        kinds = getattr(method, "kernel_kinds", ()) or (KernelKind(name, name, 0),)
        return tuple(kind.key for kind in kinds)

    def __iter__(self) -> Iterator[str]:
        return iter(registry.names())

    def __len__(self) -> int:
        return len(registry.names())


#: Kernel categories, in drawing order: what a kernel is.  The kernels of an
#: initial model are drawn by the kind the method made (each method's
#: ``kernel_kinds``: edge pairs and background kernels, grid kernels, segment
#: kernels, ...); a trained or loaded model's kernels are all "trained"
#: (training moves, prunes and merges them).  A live view of the registry.
KERNEL_CATEGORIES: Sequence[str] = _Categories()

#: What each category is, for the legend, the guide, the hover label and the kernel panel.
KERNEL_CATEGORY_LABELS: Mapping[str, str] = _Labels()

#: The categories of an initial model's kernels, for each method (a method
#: with two kinds, the edge method: its ``2·n_pairs`` pair kernels first, then
#: the rest).
INITIAL_CATEGORIES: Mapping[str, tuple[str, ...]] = _Initial()


def kernel_hues() -> dict[str, int]:
    """Hue (degrees) of each kernel category (the theme's colours)."""
    return {key: kind.hue for key, kind in _kinds().items()}


def minor_categories() -> frozenset[str]:
    """Categories drawn with smaller markers and hidden with the background
    kernels (kinds that tile the image: background, grid)."""
    return frozenset(key for key, kind in _kinds().items() if kind.minor)


#: What view 4 draws: centres and pair links, 1-σ ellipses, gate territories.
KERNEL_MODES = ("centres", "ellipses", "territories")

#: Gate-share classes of the ellipse mode: upper limits of ``share·K`` (the
#: share relative to an even split), and the opacity of each class.
SHARE_LEVELS: tuple[tuple[float, int], ...] = ((0.25, 45), (1.0, 110), (4.0, 185), (np.inf, 255))


def share_levels(shares: F64, n_kernels: int) -> NDArray[np.intp]:
    """Class (index into :data:`SHARE_LEVELS`) of each gate share.

    Parameters
    ----------
    shares : (n,) float64
        Gate shares (mean gate weight over the image, summing to 1 over all
        ``n_kernels`` kernels).
    n_kernels : int

    Returns
    -------
    (n,) intp in ``0 .. len(SHARE_LEVELS) - 1``
    """
    rel = np.asarray(shares, dtype=np.float64) * max(int(n_kernels), 1)
    limits = np.array([lim for lim, _ in SHARE_LEVELS[:-1]])
    return np.searchsorted(limits, rel, side="right").astype(np.intp)


def max_pool_mask(mask: NDArray[np.uint8], factor: int) -> NDArray[np.uint8]:
    """A 0/1 mask shrunk by an integer ``factor`` with max-pooling, so that no
    set pixel is lost (a 1-px edge stays visible at any zoom-out).

    Returns
    -------
    (ceil(h/factor), ceil(w/factor)) uint8
    """
    m = np.asarray(mask)
    f = int(factor)
    if f <= 1:
        return np.ascontiguousarray(m, dtype=np.uint8)
    h, w = m.shape
    hh, ww = -(-h // f), -(-w // f)
    padded = np.zeros((hh * f, ww * f), dtype=np.uint8)
    padded[:h, :w] = m
    return np.ascontiguousarray(padded.reshape(hh, f, ww, f).max(axis=(1, 3)))


@dataclass(frozen=True, eq=False)
class TerritoryImages:
    """Gate territories ready to draw at view resolution.

    Attributes
    ----------
    label : (h, w) int32
        Kernel of largest gate weight per view pixel.
    boundaries : (h, w) uint8
        1 on territory boundaries.
    fill : (h, w) float32
        Each territory filled with its expert value.
    areas : (K,) float64
        Territory area of each kernel in image pixels.
    compute_ms : float
    """

    label: NDArray[np.int32]
    boundaries: NDArray[np.uint8]
    fill: NDArray[np.float32]
    areas: F64
    compute_ms: float


def territory_images(model: SmoeModel, height: int, width: int) -> TerritoryImages:
    """:func:`smoe_gui.core.rendering.territories.gate_territories` of ``model`` on a
    ``height x width`` grid, with boundaries, fill and areas."""
    import time

    from ...core.rendering.territories import gate_territories

    t0 = time.perf_counter()
    terr = gate_territories(model, height, width)
    return TerritoryImages(
        label=terr.label,
        boundaries=terr.boundaries().astype(np.uint8),
        fill=terr.fill(model.m),
        areas=terr.areas(),
        compute_ms=(time.perf_counter() - t0) * 1e3,
    )


@dataclass(frozen=True)
class KernelGeometry:
    """Kernel centres and ellipses by category, and the pair links.

    Attributes
    ----------
    centres : dict category -> (n, 2) float64
    ellipses : dict category -> (n·(P+2), 2) float64 (NaN-separated polylines)
    pair_links : (2p, 2) float64
        Segment end points joining the two kernels of each pair (``connect="pairs"``).
    n_kernels : int
    index : dict category -> (n,) intp
        Kernel indices of each category.
    axes : dict category -> (n, 3) float64
        1-σ semi-axes (px, clipped to the image diagonal) and angle (degrees).
    partner : (K,) intp
        The other kernel of each kernel's edge pair, -1 for none.
    shares : (K,) float64 or None
        Gate share of each kernel (mean gate weight), when computed.
    territories : TerritoryImages or None
        The gate partition at view resolution, when computed.
    """

    centres: dict[str, F64]
    ellipses: dict[str, F64]
    pair_links: F64
    n_kernels: int
    index: dict[str, NDArray[np.intp]] = field(default_factory=dict)
    axes: dict[str, F64] = field(default_factory=dict)
    partner: NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    shares: F64 | None = None
    territories: TerritoryImages | None = None

    def category_of(self, k: int) -> str:
        """The category of kernel ``k``."""
        for cat, idx in self.index.items():
            if np.any(idx == k):
                return cat
        return "trained"

    def share_classes(self, category: str) -> NDArray[np.intp] | None:
        """Gate-share class (:func:`share_levels`) of each kernel of ``category``."""
        if self.shares is None or category not in self.index:
            return None
        return share_levels(self.shares[self.index[category]], self.n_kernels)


def kernel_categories(
    method: str | None, n_kernels: int, n_pairs: int = 0
) -> dict[str, NDArray[np.intp]]:
    """Kernel indices of each category (:data:`KERNEL_CATEGORIES`) of a model
    of ``n_kernels`` kernels by its provenance.

    Parameters
    ----------
    method : str or None
        The initialisation that made the model (one of
        :data:`smoe_gui.core.params.METHODS`) when it is that initial model;
        None for a trained or loaded model (every kernel "trained").
    n_kernels : int
    n_pairs : int
        Edge method: kernels ``2i, 2i+1`` form pair ``i`` (``i < n_pairs``);
        the kernels after them are background kernels.

    Raises
    ------
    ValueError
        For a method without kernel categories (:data:`INITIAL_CATEGORIES`).
    """
    k = int(n_kernels)
    groups: dict[str, NDArray[np.intp]] = {c: np.zeros(0, dtype=np.intp) for c in KERNEL_CATEGORIES}
    if method is None:
        groups["trained"] = np.arange(k)
        return groups
    kinds = INITIAL_CATEGORIES.get(method)
    if kinds is None:
        raise ValueError(
            f"no kernel categories for method {method!r}; expected one of "
            f"{', '.join(registry.names())} or None"
        )
    if len(kinds) >= 2:  # pairs first (kernels 2i, 2i+1), then the rest
        paired = min(2 * max(int(n_pairs), 0), k - k % 2)
        groups[kinds[0]] = np.arange(paired)
        groups[kinds[1]] = np.arange(paired, k)
    else:
        (kind,) = kinds
        groups[kind] = np.arange(k)
    return groups


def kernel_geometry(
    model: SmoeModel,
    method: str | None,
    n_pairs: int = 0,
    n_background: int = 0,
    shares: bool = False,
    territory_size: tuple[int, int] | None = None,
) -> KernelGeometry:
    """Geometry of a model's kernels, grouped by what they are (:func:`kernel_categories`).

    Parameters
    ----------
    model : SmoeModel
    method : str or None (one of smoe_gui.core.params.METHODS)
        The initialisation that made the model, when it is that initial model;
        None for a trained or loaded model (all kernels are drawn as "trained").
    n_pairs : int
        Number of pairs (edge method): kernels ``2i, 2i+1`` form pair ``i``.
    n_background : int
        Number of background kernels at the end of the model (edge method;
        the kernels after the pairs are background kernels, so it is not needed
        to group them; kept for callers that pass it).
    shares : bool
        Compute each kernel's gate share (:func:`smoe_gui.core.rendering.territories.gate_shares`,
        on a grid of at most ~40 000 pixels: it sets the opacity of the ellipses).
    territory_size : (h, w), optional
        Compute the gate territories on this grid (:func:`territory_images`).

    Raises
    ------
    ValueError
        For an unknown method.
    """
    del (
        n_background
    )  # the pairs come first; every other kernel of an edge model is a background kernel
    k = model.n_kernels
    groups = kernel_categories(method, k, n_pairs)
    links = model.mu[: len(groups["pair"])].copy()
    axes = ellipse_axes(model)
    limit = float(np.hypot(model.width, model.height))
    axes[:, :2] = np.minimum(np.nan_to_num(axes[:, :2], posinf=limit), limit)
    partner = np.full(k, -1, dtype=np.intp)
    if len(groups["pair"]):
        p = groups["pair"]
        partner[p] = p ^ 1
    share_values = None
    if shares:
        from ...core.rendering.territories import gate_shares

        scale = min(1.0, float(np.sqrt(40_000.0 / (model.height * model.width))))
        share_values = gate_shares(
            model, max(1, round(model.height * scale)), max(1, round(model.width * scale))
        )
    terr = None
    if territory_size is not None:
        terr = territory_images(model, int(territory_size[0]), int(territory_size[1]))
    return KernelGeometry(
        centres={c: model.mu[i].copy() for c, i in groups.items()},
        ellipses={c: ellipse_polylines_of(model.mu[i], axes[i]) for c, i in groups.items()},
        pair_links=links,
        n_kernels=k,
        index=groups,
        axes={c: axes[i] for c, i in groups.items()},
        partner=partner,
        shares=share_values,
        territories=terr,
    )
