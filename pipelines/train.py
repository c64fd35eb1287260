"""Training orchestration: config in, progress out, result summary."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from vsr.config import TrainConfig
from vsr.train import TrainResult, fit

__all__ = ["run_training"]

log = logging.getLogger(__name__)


def run_training(cfg: TrainConfig, progress: Callable[[int, float, float], None] | None = None) -> TrainResult:
    """Train, then write ``OUT/result.json`` (iterations, best PSNR, time, data-wait share)."""
    result = fit(cfg, progress=progress)
    if result.out.is_dir():
        payload = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(result).items()}
        (result.out / "result.json").write_text(json.dumps(payload, indent=2) + "\n")
    return result
