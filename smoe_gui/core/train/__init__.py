"""Training (stage 6): tiled gradient descent with an L2 penalty on the kernel weights,
pruning and re-placement, merging, fine-tuning, and one fit run with its history.

``training`` (:func:`fit`), ``tiles`` (tile geometry), ``window`` (Adam over one window,
undo, pruning), ``phases`` (tiles, fine-tuning), ``replace`` (kernels that no longer
serve), ``messages`` (event messages, the status line), ``runs`` (one run, its history).
"""
