"""Engine seconds per 640x360 frame (x2) for model sizes, fp32 and bf16, side by side.

Usage: python benchmarks/model_speed.py [--reps 3]
Prints one row per configuration; all rows come from the same run, so the
ratios between them hold even when the machine is noisy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vsr.engine import Engine
from vsr.models import create_model

CONFIGS = [
    ("espcn", {"activation": "prelu"}),
    ("espcn", {"activation": "prelu", "num_features": 128, "mid_features": 64}),
    ("espcn", {"activation": "prelu", "mid_features": 48, "mid_layers": 3}),
    ("edsr", {"num_blocks": 8, "num_features": 32}),
    ("edsr", {"num_blocks": 8, "num_features": 32, "tail": "shuffle"}),
    ("edsr", {"num_blocks": 16, "num_features": 32, "tail": "shuffle"}),
    ("edsr", {"num_blocks": 8, "num_features": 48, "tail": "shuffle"}),
    ("edsr", {"num_blocks": 16, "num_features": 64}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--scale", type=int, default=2)
    args = parser.parse_args()
    y = np.random.default_rng(0).integers(16, 236, (1, 360, 640), dtype=np.uint8)
    print(f"{'model':<8} {'kwargs':<36} {'params':>9} {'fp32 s':>8} {'bf16 s':>8} {'bf16/fp32':>9}")
    for name, kw in CONFIGS:
        model = create_model(name, scale=args.scale, **kw)
        params = sum(p.numel() for p in model.parameters())
        times = {}
        for dtype in (torch.float32, torch.bfloat16):
            engine = Engine(model, device="cpu", dtype=dtype, batch_size=1)
            engine.upscale_y(y)  # warm-up
            t0 = time.perf_counter()
            for _ in range(args.reps):
                engine.upscale_y(y)
            times[dtype] = (time.perf_counter() - t0) / args.reps
        print(f"{name:<8} {str(kw):<36} {params:>9} {times[torch.float32]:>8.3f} {times[torch.bfloat16]:>8.3f} "
              f"{times[torch.float32] / times[torch.bfloat16]:>9.2f}")


if __name__ == "__main__":
    main()
