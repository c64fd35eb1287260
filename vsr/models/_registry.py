"""Name → builder registry for models (timm/torchvision style, our size)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from vsr.config import MODELS

__all__ = ["create_model", "list_models", "register_model"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}
F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(fn: F) -> F:
    """Register a builder under its function name; duplicates are an error."""
    name = fn.__name__
    if name not in MODELS:  # the torch-free list the CLI offers must name every model
        raise ValueError(f"model {name!r} is not declared in vsr.config.MODELS")
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered")
    _MODELS[name] = fn
    return fn


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name`` with keyword arguments (``scale`` always)."""
    builder = _MODELS.get(name)
    if builder is None:  # look up first: a KeyError inside the builder must not be masked
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(_MODELS))}")
    return builder(**kwargs)


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_MODELS)
