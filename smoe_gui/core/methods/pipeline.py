"""The methods composed: :func:`initialize` runs the method a name calls for.

Each method is one module behind one protocol (:mod:`smoe_gui.core.registry`,
:class:`~smoe_gui.core.methods.base.BaseMethod`): the edge-aligned
initialisation of Determann & Fleig (:mod:`.edge.method`: Canny, segment scan,
importance scores, DBSCAN reduction, kernel placement with background
kernels), the regular-grid baseline (:mod:`.grid`), S-SMoE and AS-SMoE
(:mod:`.segment.s_smoe`, :mod:`.segment.as_smoe`), and any method a plug-in
registers; every one ends with the expert stage and returns every stage's
output with its timing.  The readings of the paper it takes are in
``docs/paper-readings.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from numpy.typing import NDArray

from .. import registry
from ..params import Params
from .base import Initialization
from .edge.method import STAGES as EDGE_STAGES

__all__ = ["SEGMENT_METHODS", "STAGES", "STAGES_BY_METHOD", "Initialization", "initialize"]

#: Stage names of the edge method (and the grid baseline), in order, as keys of
#: :attr:`Initialization.timings_ms`.
STAGES: tuple[str, ...] = EDGE_STAGES
#: The methods that start from a superpixel segmentation (a live view of the registry).
SEGMENT_METHODS: registry.MethodNames = registry.MethodNames(
    lambda m: m.stages[:1] == ("superpixels",)
)


class _Stages(Mapping[str, tuple[str, ...]]):
    """Each registered method's stage names, read from the registry."""

    def __getitem__(self, name: str) -> tuple[str, ...]:
        try:
            return tuple(registry.get(name).stages)
        except ValueError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(registry.names())

    def __len__(self) -> int:
        return len(registry.names())


#: Stage names of every method, in order, as keys of :attr:`Initialization.timings_ms`.
STAGES_BY_METHOD: Mapping[str, tuple[str, ...]] = _Stages()


def initialize(
    image: NDArray[Any], params: Params | None = None, method: str | None = None,
    *, workers: int | None = None,
) -> Initialization:
    """Initialise an SMoE model of ``image``.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) array
        Image in [0, 1], at least 8x8 and at most 4096x4096 pixels.  It is
        taken as ``params.channels`` says (:func:`smoe_gui.core.io.image.as_channels`):
        ``gray`` models the BT.601 luma of a colour image; ``rgb`` models the
        three channels (a gray image gives three equal ones).  Canny and the
        segments always run on the luma.
    params : Params, optional
        Parameters (default: ``Params()``).
    method : str, optional
        One of :data:`smoe_gui.core.params.METHODS` (default: the first, the
        paper's edge-aligned initialisation); each is described by its module:
        the edge-aligned initialisation (Canny, segments, scores, reduction,
        kernel pairs, background kernels, experts; :mod:`.edge.method`); the
        baseline, a regular grid with as many kernels as the edge method gives
        for the same image and parameters, experts initialised the same way
        (:mod:`.grid`); S-SMoE, one kernel per DBSCAN superpixel, steered by the
        segment's shape (Li et al., VCIP 2023; :mod:`.segment.s_smoe`); AS-SMoE,
        per-segment SMoE fits with kernel sparsification, exported into one
        model (Li et al., arXiv 2409.10101; :mod:`.segment.as_smoe`).
        With ``params.n_kernels = N > 0`` every method yields between
        ``0.95·N`` and ``N`` kernels: the segment methods exactly ``N`` (by
        construction), edge and grid through their kernel-budget planner
        (which chooses ``max_pts`` and the background spacing; the returned
        ``params`` carry its choice).
    workers : int, optional
        Processes for the AS-SMoE local fits (default: in this process).

    Returns
    -------
    Initialization
        Every stage's output, the model, the expert PSNR history and the time
        of each stage (ms).  Same input, same output, bit for bit.

    Raises
    ------
    ValueError
        For a bad image (shape, size, values), a bad ``params`` or an unknown
        ``method``.
    """
    chosen = registry.get(registry.default() if method is None else method)
    return chosen.initialize(image, params, workers=workers)
