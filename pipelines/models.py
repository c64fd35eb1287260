"""The shipped-model listing behind ``vsr models``: checkpoints joined with their cards."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vsr.models import list_models
from vsr.models.cost import gmac_640x360
from vsr.weights import load_checkpoint, model_from_checkpoint, weights_dir

__all__ = ["ShippedModel", "registered_models", "shipped_models"]


@dataclass(frozen=True)
class ShippedModel:
    """One shipped checkpoint: what it is, what it costs, and what its card measured."""

    model: str
    file: str
    scale: int
    params: int
    gmac_640x360: float
    psnr_y: dict[str, float] = field(default_factory=dict)
    ms_640x360: float | None = None
    runtime: str | None = None
    timed_as: str = ""
    source: str = "clean"  # the LR it was trained on: clean, or compressed (H.264) as well
    int8: dict[str, Any] | None = None  # scripts/quantize_int8.py: offered, drop_db, speedup, ms_640x360

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def registered_models() -> list[str]:
    return list_models()


def _manifest(folder: Path) -> dict[str, dict[str, Any]]:
    path = folder / "MANIFEST.json"
    if not path.is_file():
        return {}
    return {e["file"]: e for e in json.loads(path.read_text()).get("weights", [])}


def shipped_models(folder: Path | None = None) -> list[ShippedModel]:
    """Every ``*.pt`` in the weights folder, sorted by file name, with its MANIFEST entry.

    ``params`` and ``gmac_640x360`` are counted from the checkpoint itself;
    ``psnr_y`` and ``ms_640x360`` come from the model card's measurements.
    """
    folder = folder or weights_dir()
    cards = _manifest(folder)
    rows = []
    for path in sorted(folder.glob("*.pt")) if folder.is_dir() else []:
        ckpt = load_checkpoint(path)
        net = model_from_checkpoint(ckpt)
        card = cards.get(path.name, {})
        secs = card.get("seconds_640x360", {})
        fastest = min(secs, key=secs.get) if secs else None
        rows.append(ShippedModel(
            model=ckpt["model"], file=path.name, scale=int(ckpt["scale"]),
            params=sum(p.numel() for p in net.parameters()),
            gmac_640x360=round(gmac_640x360(net), 3),
            psnr_y=dict(card.get("psnr_y", {})),
            ms_640x360=round(1000 * secs[fastest], 1) if fastest else None,
            runtime=(fastest if "/" in fastest else f"torch/{fastest}") if fastest else None,
            timed_as=card.get("timed_as", ""),
            source="compressed" if "_compressed" in path.stem else "clean",
            int8=card.get("int8"),
        ))
    return rows
