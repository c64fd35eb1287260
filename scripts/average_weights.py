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

from vsr.train.loop import STATE_FORMAT
from vsr.weights import average_state_dicts, load_checkpoint, save_checkpoint


def read_source(path: Path) -> tuple[dict | None, dict[str, torch.Tensor], int | None]:
    """(the checkpoint if ``path`` is an export, else None; its weights, EMA if kept; its iteration)."""
    raw = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(raw, dict) and raw.get("format") == STATE_FORMAT:
        return None, (raw["ema"] if raw.get("ema") is not None else raw["model"]), raw["iteration"]
    ckpt = load_checkpoint(path)  # validates an export, or says what the file is not
    return ckpt, ckpt["state_dict"], ckpt.get("meta", {}).get("iteration")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("sources", type=Path, nargs="+")
    args = ap.parse_args()
    sources = [read_source(p) for p in args.sources]
    exports = [ckpt for ckpt, _, _ in sources if ckpt is not None]
    if not exports:
        raise SystemExit("at least one SOURCE must be an exported checkpoint (it names the model)")
    template = exports[-1]
    origins = [{"file": p.name, "iteration": it} for p, (_, _, it) in zip(args.sources, sources, strict=True)]
    meta = {**template.get("meta", {}), "averaged_from": origins}
    save_checkpoint(args.out, model=template["model"], model_kwargs=template["model_kwargs"],
                    scale=int(template["scale"]), state_dict=average_state_dicts([sd for _, sd, _ in sources]),
                    meta=meta)
    print(f"{args.out}: average of {len(sources)} ({', '.join(str(o['iteration']) for o in origins)})")


if __name__ == "__main__":
    main()
