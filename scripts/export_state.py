"""Export the EMA weights of a training state (``RUN/last.pt``) as a checkpoint for ``--init``.

Usage: python scripts/export_state.py RUN_DIR MODEL SCALE OUT.pt

For a run that is still going (or was stopped): the checkpoint holds the fused inference form and,
for a re-parameterizable model, the multi-branch form under ``train_form``, as ``final.pt`` does.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vsr.models import create_model
from vsr.weights import save_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("model")
    ap.add_argument("scale", type=int)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    state = torch.load(args.run / "last.pt", map_location="cpu", weights_only=True)
    net = create_model(args.model, scale=args.scale)
    weights = state["ema"] or state["model"]
    net.load_state_dict({k.removeprefix("module."): v for k, v in weights.items()})
    meta = {"iteration": state["iteration"], "exported_from": str(args.run / "last.pt")}
    if hasattr(net, "reparameterize"):
        fused = copy.deepcopy(net).reparameterize()
        save_checkpoint(args.out, model=args.model, model_kwargs={"fused": True}, scale=args.scale,
                        state_dict=fused.state_dict(), meta=meta, train_form=({}, net.state_dict()))
    else:
        save_checkpoint(args.out, model=args.model, model_kwargs={}, scale=args.scale, state_dict=net.state_dict(),
                        meta=meta)
    print(f"{args.out}: iteration {state['iteration']}")


if __name__ == "__main__":
    main()
