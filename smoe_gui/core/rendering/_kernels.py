"""Compiled (numba) kernels of the fast SMoE evaluation.

Everything here works on plain float64 arrays in "structure of arrays" form;
:mod:`smoe_gui.core.rendering.culled` and :mod:`smoe_gui.core.methods.experts` wrap it.  See
``docs/rendering.md`` for the mathematics.

Kernel ``k`` is given by its centre ``(mux[k], muy[k])`` (px), the quadratic
form ``S_k = A_k A_kᵀ = [[s11, s12], [s12, s22]]`` (1/px²) and ``la[k] = log α_k``;
its gate logit at ``x`` is ``la[k] - (x-μ_k)ᵀ S_k (x-μ_k)``.

An output grid has ``nx x ny`` pixels; pixel ``(i, j)`` (column, row) sits at
``(ox + i·sx, oy + j·sy)`` in model coordinates.  Pixels are grouped in square
blocks of ``bs x bs``; block ``b = by·nbx + bx``.  A block's *box* is the
rectangle spanned by its pixel centres, widened by ``pad`` pixel steps on every
side (``pad = 0.5`` makes the boxes tile the plane, so that any point of the
image area lies in the box of the block that holds it).

All kernels are compiled with ``cache=True``: the compile cost (some seconds) is
paid once per machine.

The kernels live in four modules by role: :mod:`._common` (the exponential, the
kernels' arrays, one block row's logits, shared by every pass and by
:mod:`smoe_gui.core.rendering.territories`), :mod:`._cull` (bounds and lists),
:mod:`._blocks` (forward and backward; :mod:`._blocks32` the same in float32, for
training), :mod:`._expert_kernels` (the expert stage).
This module gathers them under one name.
"""

from __future__ import annotations

from ._blocks import backward_blocks, forward_blocks, reduce_pairs
from ._blocks32 import backward_blocks32, exp_neg32_array, forward_blocks32
from ._common import EXPERT_LANES, exp_neg_array, kernel_arrays
from ._cull import box_bounds, build_lists
from ._expert_kernels import csr_matvec, experts_sse, gate_normal_equations, point_weights

__all__ = [
    "EXPERT_LANES",
    "backward_blocks",
    "backward_blocks32",
    "box_bounds",
    "build_lists",
    "csr_matvec",
    "exp_neg32_array",
    "exp_neg_array",
    "experts_sse",
    "forward_blocks",
    "forward_blocks32",
    "gate_normal_equations",
    "kernel_arrays",
    "point_weights",
    "reduce_pairs",
]
