"""Export the EMA weights of a training state (``RUN/last.pt``) as a checkpoint for ``--init``.

Usage: python scripts/export_state.py RUN_DIR MODEL SCALE OUT.pt [--raw]

``--raw`` takes the optimiser's own weights instead of their EMA, and the metadata (training
config, time, validation) of ``RUN/final.pt`` where the run finished: the shipped form of a short
run, whose EMA (decay 0.999) still carries 0.999^N of the random initialisation after N steps.

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
from vsr.weights import load_checkpoint, save_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("model")
    ap.add_argument("scale", type=int)
    ap.add_argument("out", type=Path)
    ap.add_argument("--raw", action="store_true", help="the optimiser's weights, not their EMA")
    args = ap.parse_args()
    state = torch.load(args.run / "last.pt", map_location="cpu", weights_only=True)
    net = create_model(args.model, scale=args.scale)
    weights = state["model"] if args.raw else state["ema"] or state["model"]
    net.load_state_dict({k.removeprefix("module."): v for k, v in weights.items()})
    meta = {"iteration": state["iteration"], "exported_from": str(args.run / "last.pt")}
    final = args.run / "final.pt"
    if args.raw and final.is_file():
        finished = load_checkpoint(final)["meta"]
        if finished.get("iteration") == state["iteration"]:
            meta = {**finished, **meta, "weights": "raw (not the EMA)"}
    if hasattr(net, "reparameterize"):
        fused = copy.deepcopy(net).reparameterize()  # type: ignore[operator]  # checked with hasattr
        save_checkpoint(args.out, model=args.model, model_kwargs={"fused": True}, scale=args.scale,
                        state_dict=fused.state_dict(), meta=meta, train_form=({}, net.state_dict()))
    else:
        save_checkpoint(args.out, model=args.model, model_kwargs={}, scale=args.scale, state_dict=net.state_dict(),
                        meta=meta)
    print(f"{args.out}: iteration {state['iteration']}")


if __name__ == "__main__":
    main()
