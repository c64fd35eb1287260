"""Model zoo. Explicit imports fill the registry (no directory scan)."""

from vsr.models import classic, ecb, edsr, espcn  # noqa: F401  (registration side effect)
from vsr.models._registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
