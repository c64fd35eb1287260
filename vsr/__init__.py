"""vsr: video super-resolution on the luma plane.

The public API is exported lazily (PEP 562), so that ``import vsr.io`` stays free of torch:

- :class:`Upscaler`: build once (weights, runtime, device), then upscale files, RGB arrays,
  luma planes or decoded frames;
- :func:`upscale_file`: one file, as ``vsr upscale SRC DST`` does.

Both live in the orchestration layer (``pipelines/api.py``); nothing else in ``vsr`` imports it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["Upscaler", "__version__", "upscale_file"]
_API = ("Upscaler", "upscale_file")


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'vsr' has no attribute {name!r}")
    try:  # a checkout (and an editable install): the top-level pipelines package
        api = importlib.import_module("pipelines.api")
    except ModuleNotFoundError:  # a wheel: no generic top-level name, pipelines sit under vsr_app
        api = importlib.import_module("vsr_app.pipelines.api")
    return getattr(api, name)


def __dir__() -> list[str]:
    return sorted(__all__)
