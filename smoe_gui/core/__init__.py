"""Qt-free core of smoe-gui: everything that computes.

The public API is importable from here; submodules load on first use, so
``import smoe_gui.core`` stays cheap (torch and numba load only when needed).

>>> from smoe_gui.core import Params, initialize, load_image, render
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "Params": "params",
    "PARAM_SPECS": "params",
    "ParamSpec": "params",
    "SmoeModel": "model",
    "dense_render": "model",
    "ellipse_axes": "model",
    "load_image": "io.image",
    "check_image": "io.image",
    "save_model": "io.modelio",
    "load_model": "io.modelio",
    "read_model_params": "io.modelio",
    "psnr": "metrics",
    "ssim": "metrics",
    "FitEvent": "events",
    "StopToken": "events",
    "Initialization": "methods.pipeline",
    "initialize": "methods.pipeline",
    "render": "rendering.culled",
    "fit": "train.training",
}

__all__ = [
    "FitEvent",
    "Initialization",
    "PARAM_SPECS",
    "ParamSpec",
    "Params",
    "SmoeModel",
    "StopToken",
    "check_image",
    "dense_render",
    "ellipse_axes",
    "fit",
    "initialize",
    "load_image",
    "load_model",
    "psnr",
    "read_model_params",
    "render",
    "save_model",
    "ssim",
]
assert sorted(__all__) == sorted(_EXPORTS)

if TYPE_CHECKING:
    from .events import FitEvent, StopToken
    from .io.image import check_image, load_image
    from .io.modelio import load_model, read_model_params, save_model
    from .methods.pipeline import Initialization, initialize
    from .metrics import psnr, ssim
    from .model import SmoeModel, dense_render, ellipse_axes
    from .params import PARAM_SPECS, Params, ParamSpec
    from .rendering.culled import render
    from .train.training import fit


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
