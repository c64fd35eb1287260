"""Grow a trained re-parameterizable checkpoint deeper, as a start for ``vsr train --init``.

Usage: python scripts/deepen_ecb.py SRC.pt BLOCKS OUT.pt

The new blocks start as the identity (:func:`vsr.models.ecb.deepen`), so ``OUT.pt`` computes
what ``SRC.pt`` computes (checked here on a random input); train it with
``vsr train --model NAME --model-arg blocks=BLOCKS --init OUT.pt``.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vsr.models import create_model
from vsr.models.ecb import ECBNet, deepen
from vsr.weights import load_checkpoint, save_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("blocks", type=int)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    ckpt = load_checkpoint(args.src)
    form = ckpt.get("train_form", {"model_kwargs": ckpt["model_kwargs"], "state_dict": ckpt["state_dict"]})
    net = create_model(ckpt["model"], scale=int(ckpt["scale"]), **form["model_kwargs"])
    if not isinstance(net, ECBNet):
        raise SystemExit(f"{args.src} holds a {ckpt['model']} net, not a re-parameterizable one")
    net.load_state_dict(form["state_dict"])
    grown = deepen(net, args.blocks)
    x = torch.rand(1, 1, 24, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        err = (grown(x) - net(x)).abs().max().item()
    if err > 1e-5:
        raise SystemExit(f"the grown net differs from the source by {err:.2e}")
    kwargs = {**form["model_kwargs"], "blocks": args.blocks}
    fused = copy.deepcopy(grown).reparameterize()
    save_checkpoint(args.out, model=ckpt["model"], model_kwargs={**kwargs, "fused": True}, scale=int(ckpt["scale"]),
                    state_dict=fused.state_dict(), train_form=(kwargs, grown.state_dict()),
                    meta={"grown_from": str(args.src), "blocks": args.blocks})
    print(f"{args.out}: {args.blocks} blocks, max difference from {args.src.name} {err:.1e}")


if __name__ == "__main__":
    main()
