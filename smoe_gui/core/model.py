"""The SMoE model: its parameters and its math, in one place.

A model of an image of ``height x width`` pixels has ``K`` kernels:

``K_i(x) = α_i · exp(-‖A_iᵀ (x - μ_i)‖²)``, ``w_i(x) = K_i(x) / Σ_j K_j(x)``,
``L(x) = Σ_i w_i(x) m_i``.

A gray model has one expert value per kernel (``m`` of shape ``(K,)``); a
colour model has ``C`` (``m`` of shape ``(K, C)``, ``C = 3`` for RGB): the gate
is shared by the channels, only the experts grow.

``Σ_i = A_i A_iᵀ`` is the quadratic form of the paper's equation (2).  The gate is
computed in the log domain (``log α_i - ‖A_iᵀ(x-μ_i)‖²`` followed by a softmax),
so a pixel far from every kernel still gets finite, correct weights.

Coordinates: ``x`` is the column, ``y`` the row, pixel centres at integer
coordinates ``0..W-1`` and ``0..H-1``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "SmoeModel",
    "dense_gate",
    "dense_logits",
    "dense_render",
    "grid_points",
    "model_in_channels",
    "ellipse_axes",
    "pixel_grid",
]

F64 = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class SmoeModel:
    """An SMoE image model.

    Parameters
    ----------
    mu : (K, 2) float64
        Kernel centres ``(x, y)`` in pixels.
    A : (K, 2, 2) float64
        Steering matrices; the gate logit is ``log α - ‖Aᵀ(x - μ)‖²`` (1/px).
    m : (K,) or (K, C) float64
        Experts: gray values ``(K,)``, or ``C`` channel values per kernel
        ``(K, C)`` (RGB: ``C = 3``), nominally in [0, 1].
    log_alpha : (K,) float64
        Natural logarithm of the kernel weights α.
    height, width : int
        Size of the modelled image in pixels.

    Raises
    ------
    ValueError
        On wrong shapes, non-finite values, an empty model or a bad size.
    """

    mu: F64
    A: F64
    m: F64
    log_alpha: F64
    height: int
    width: int

    def __post_init__(self) -> None:
        arrays = {}
        for name in ("mu", "A", "m", "log_alpha"):
            value = getattr(self, name)
            try:
                arr = np.array(value, dtype=np.float64, copy=True)
            except (TypeError, ValueError):
                raise ValueError(f"model: '{name}' is not a numeric array") from None
            arr.setflags(write=False)
            arrays[name] = arr
        m_shape = arrays["m"].shape
        ok_m = len(m_shape) == 1 or (len(m_shape) == 2 and m_shape[1] >= 1)
        if not ok_m:
            raise ValueError(
                f"model: 'm' has shape {m_shape}, expected (K,) or (K, C) with C >= 1"
            )
        k = m_shape[0]
        expected = {"mu": (k, 2), "A": (k, 2, 2), "m": (k,) + m_shape[1:], "log_alpha": (k,)}
        for name, shape in expected.items():
            if arrays[name].shape != shape or k < 0:
                want = "(K,) or (K, C)" if name == "m" else str(
                    tuple("K" if i == 0 else d for i, d in enumerate(shape))
                ).replace("'", "")
                raise ValueError(
                    f"model: '{name}' has shape {arrays[name].shape}, expected "
                    f"{want} with K = number of experts"
                )
        if k == 0:
            raise ValueError("model: it has no kernels")
        for name, arr in arrays.items():
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"model: '{name}' contains NaN or infinite values")
            object.__setattr__(self, name, arr)
        for name in ("height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or int(value) < 1:
                raise ValueError(f"model: '{name}' must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))

    @property
    def n_kernels(self) -> int:
        """Number of kernels ``K``."""
        return int(self.m.shape[0])

    @property
    def n_channels(self) -> int:
        """Channels of the experts: 1 for a gray model (``m`` of shape ``(K,)``),
        ``C`` for ``m`` of shape ``(K, C)``."""
        return 1 if self.m.ndim == 1 else int(self.m.shape[1])

    @property
    def is_colour(self) -> bool:
        """Whether the experts have a channel axis (``m`` of shape ``(K, C)``)."""
        return self.m.ndim == 2

    @property
    def alpha(self) -> F64:
        """(K,) kernel weights α."""
        return np.exp(self.log_alpha)

    def quadratic_form(self) -> F64:
        """(K, 2, 2) ``Σ_i = A_i A_iᵀ`` (1/px²)."""
        return np.einsum("kij,klj->kil", self.A, self.A)

    def replace(self, **changes: object) -> SmoeModel:
        """A copy with some fields replaced (validated)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def subset(self, index: NDArray[np.intp] | NDArray[np.bool_]) -> SmoeModel:
        """The model restricted to the kernels selected by ``index``."""
        return SmoeModel(
            self.mu[index], self.A[index], self.m[index], self.log_alpha[index],
            self.height, self.width,
        )

    def __repr__(self) -> str:
        return f"SmoeModel(K={self.n_kernels}, height={self.height}, width={self.width})"


def pixel_grid(height: int, width: int) -> tuple[F64, F64]:
    """Pixel-centre coordinates ``(xs (W,), ys (H,))`` of an image."""
    return np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)


def dense_logits(model: SmoeModel, points: F64) -> F64:
    """Gate logits of every kernel at every point (the plain dense formula).

    Parameters
    ----------
    model : SmoeModel
    points : (P, 2) float64
        ``(x, y)`` positions in pixels.

    Returns
    -------
    (P, K) float64
        ``log α_k - ‖A_kᵀ (p - μ_k)‖²``.
    """
    d = points[:, None, :] - model.mu[None, :, :]  # (P, K, 2)
    # Aᵀ d: component j = sum_i A[k, i, j] d[i]
    proj = np.einsum("pki,kij->pkj", d, model.A)
    return model.log_alpha[None, :] - np.einsum("pkj,pkj->pk", proj, proj)


def grid_points(xs: F64, ys: F64) -> F64:
    """(H·W, 2) ``(x, y)`` points of the grid ``xs × ys``, row-major."""
    xx, yy = np.meshgrid(xs, ys)
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


def dense_gate(model: SmoeModel, points: F64) -> F64:
    """Gating weights ``w_k`` of every kernel at every point (log-domain softmax).

    Parameters
    ----------
    model : SmoeModel
    points : (P, 2) float64
        ``(x, y)`` positions in pixels.

    Returns
    -------
    (P, K) float64
        Rows sum to 1.
    """
    logits = dense_logits(model, points)
    logits -= logits.max(axis=1, keepdims=True)
    w = np.exp(logits)
    w /= w.sum(axis=1, keepdims=True)
    return w


def dense_render(
    model: SmoeModel,
    xs: F64 | None = None,
    ys: F64 | None = None,
    chunk: int = 4096,
) -> F64:
    """Reference evaluation: every kernel at every pixel, float64, log-domain softmax.

    Slow (``O(H·W·K)``); the exact reference that the fast renderer is checked
    against.

    Parameters
    ----------
    model : SmoeModel
    xs : (W',) float64, optional
        Column coordinates to evaluate at (default: the model's pixel centres).
    ys : (H',) float64, optional
        Row coordinates to evaluate at.
    chunk : int
        Pixels per chunk (bounds memory to ``chunk·K`` floats).

    Returns
    -------
    (H', W') float64, or (H', W', C) for a model with ``C``-channel experts
    """
    if xs is None or ys is None:
        gx, gy = pixel_grid(model.height, model.width)
        xs = gx if xs is None else xs
        ys = gy if ys is None else ys
    points = grid_points(xs, ys)
    out = np.empty((points.shape[0],) + model.m.shape[1:], dtype=np.float64)
    for start in range(0, points.shape[0], chunk):
        out[start : start + chunk] = dense_gate(model, points[start : start + chunk]) @ model.m
    return out.reshape((len(ys), len(xs)) + model.m.shape[1:])


#: ITU-R BT.601 luma weights of R, G, B (as OpenCV's ``COLOR_RGB2GRAY``).
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def model_in_channels(model: SmoeModel, channels: str) -> SmoeModel:
    """The model with gray (``"gray"``) or RGB (``"rgb"``) experts.

    The gate is shared by the channels and the model is linear in the experts,
    so a gray copy of an RGB model (experts mixed by the BT.601 luma weights)
    renders exactly the luma of the colour rendering, and an RGB copy of a gray
    model (experts repeated) renders three equal channels.

    Raises
    ------
    ValueError
        For another ``channels``, or a colour model that does not have 3 channels.
    """
    if channels not in ("gray", "rgb"):
        raise ValueError(f"channels must be 'gray' or 'rgb', got {channels!r}")
    if model.is_colour and model.n_channels != 3:
        raise ValueError(f"model: {model.n_channels} expert channels, not RGB")
    if channels == "gray":
        return model.replace(m=model.m @ LUMA_WEIGHTS) if model.is_colour else model
    return model if model.is_colour else model.replace(m=np.repeat(model.m[:, None], 3, axis=1))


def ellipse_axes(model: SmoeModel) -> F64:
    """One-standard-deviation ellipse of each kernel's Gaussian.

    The kernel ``exp(-‖Aᵀd‖²)`` is a Gaussian with covariance
    ``C = (2 A Aᵀ)⁻¹``; its 1-σ ellipse has semi-axes ``sqrt(eig(C))``.

    Returns
    -------
    (K, 3) float64
        Major semi-axis (px), minor semi-axis (px), angle of the major axis in
        degrees, counter-clockwise from the +x (column) axis in image
        coordinates (y down).  A singular ``A`` gives an infinite axis.
    """
    q = model.quadratic_form()  # (K, 2, 2), symmetric positive semi-definite
    evals, evecs = np.linalg.eigh(q)  # ascending
    with np.errstate(divide="ignore"):
        axes = 1.0 / np.sqrt(2.0 * np.maximum(evals, 0.0))
    major = axes[:, 0]
    minor = axes[:, 1]
    direction = evecs[:, :, 0]  # eigenvector of the smallest eigenvalue = major axis
    angle = np.degrees(np.arctan2(direction[:, 1], direction[:, 0]))
    angle = (angle + 90.0) % 180.0 - 90.0
    return np.stack([major, minor, angle], axis=1)
