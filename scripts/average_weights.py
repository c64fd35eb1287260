"""Average the weights of several checkpoints of one run (SWA-style tail averaging).

Usage: python scripts/average_weights.py OUT.pt SOURCE.pt [SOURCE.pt ...]
  Each SOURCE is an exported checkpoint (``best.pt``, ``final.pt``, a shipped file) or a
  training state (``OUT/last.pt`` copied at some iteration), whose EMA weights are used when
  the run kept an EMA. All must hold the same model, arguments and scale. OUT gets the
  last SOURCE's metadata plus ``averaged_from`` (file name and iteration of each source).
  Izmailov et al., 2018, "Averaging Weights Leads to Wider Optima and Better Generalization".
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from vsr.weights import average_state_dicts, load_checkpoint, save_checkpoint


def source_weights(path: Path) -> tuple[dict[str, torch.Tensor], int | None]:
    """The state dict (EMA if kept) and iteration of an export or a training state."""
    raw = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(raw, dict) and "state_dict" in raw:
        ckpt = load_checkpoint(path)
        return ckpt["state_dict"], ckpt.get("meta", {}).get("iteration")
    if isinstance(raw, dict) and "model" in raw and "iteration" in raw:
        return (raw["ema"] if raw.get("ema") is not None else raw["model"]), raw["iteration"]
    raise SystemExit(f"{path}: neither a vsr checkpoint nor a training state")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("sources", type=Path, nargs="+")
    args = ap.parse_args()
    exports = [p for p in args.sources if "state_dict" in torch.load(p, map_location="cpu", weights_only=True)]
    if not exports:
        raise SystemExit("at least one SOURCE must be an exported checkpoint (it names the model)")
    template = load_checkpoint(exports[-1])
    weights, origins = [], []
    for p in args.sources:
        sd, it = source_weights(p)
        weights.append(sd)
        origins.append({"file": p.name, "iteration": it})
    meta = {**template.get("meta", {}), "averaged_from": origins}
    save_checkpoint(args.out, model=template["model"], model_kwargs=template["model_kwargs"],
                    scale=int(template["scale"]), state_dict=average_state_dicts(weights), meta=meta)
    print(f"{args.out}: average of {len(weights)} ({', '.join(str(o['iteration']) for o in origins)})")


if __name__ == "__main__":
    main()
