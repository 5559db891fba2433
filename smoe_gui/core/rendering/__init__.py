"""Evaluating a model: culled block rendering (numba and torch backends, forward
and backward), gate territories, inspection of one kernel.

The package is named ``rendering`` so that it never shadows the public function
:func:`smoe_gui.core.render`.
"""
