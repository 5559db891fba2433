"""smoe-gui: Steered Mixture-of-Experts image modelling, made visible and fast."""

__version__ = "0.1.0"
