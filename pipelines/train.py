"""Training orchestration: config in, progress out, result summary."""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from vsr.config import TrainConfig
from vsr.train import TrainResult, fit

__all__ = ["run_training"]

log = logging.getLogger(__name__)


def run_training(cfg: TrainConfig, progress: Callable[[int, float, float], None] | None = None,
                 command: list[str] | None = None) -> TrainResult:
    """Train, then write ``OUT/result.json`` (iterations, best PSNR, time, data-wait share).

    ``command``: the command line that asked for this run, appended to ``OUT/command.txt``
    (one line per start or resume) for the model card.
    """
    if command is not None:
        Path(cfg.out).mkdir(parents=True, exist_ok=True)
        with open(Path(cfg.out) / "command.txt", "a") as fh:
            fh.write(shlex.join(command) + "\n")
    result = fit(cfg, progress=progress)
    if result.out.is_dir():
        payload = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(result).items()}
        (result.out / "result.json").write_text(json.dumps(payload, indent=2) + "\n")
    return result
