"""Training: tiled gradient descent with an L2 penalty on the kernel weights, pruning, merging, fine-tuning (stage 6), and one fit run with its history.
"""
