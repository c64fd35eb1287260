"""Engine seconds per 640x360 frame (x2) for model sizes, fp32 and bf16, side by side.

Usage: python benchmarks/model_speed.py [--reps 3] [--layouts] [--only edsr]
Prints one row per configuration; all rows come from the same run, so the
ratios between them hold even when the machine is noisy. ``--layouts`` adds
the same timings with NCHW weights (the engine uses channels-last), measured
alternately with the channels-last ones.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

from vsr.engine import Engine
from vsr.models import create_model
from vsr.process import retain_freed_memory

CONFIGS = [
    ("espcn", {"activation": "prelu"}),
    ("espcn", {"activation": "prelu", "num_features": 128, "mid_features": 64}),
    ("espcn", {"activation": "prelu", "mid_features": 48, "mid_layers": 3}),
    ("edsr", {"num_blocks": 8, "num_features": 32}),
    ("edsr", {"num_blocks": 8, "num_features": 32, "tail": "shuffle"}),
    ("edsr", {"num_blocks": 16, "num_features": 32, "tail": "shuffle"}),
    ("edsr", {"num_blocks": 8, "num_features": 48, "tail": "shuffle"}),
    ("edsr", {"num_blocks": 12, "num_features": 48, "tail": "shuffle"}),
    ("edsr", {"num_blocks": 16, "num_features": 64}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--layouts", action="store_true", help="also time NCHW weights, alternating")
    parser.add_argument("--only", default=None, help="only configurations of this model name")
    args = parser.parse_args()
    retain_freed_memory()  # as the CLI does: time the engine as users run it
    y = np.random.default_rng(0).integers(16, 236, (1, 360, 640), dtype=np.uint8)
    layouts = (True, False) if args.layouts else (True,)
    header = f"{'model':<8} {'kwargs':<52} {'params':>9} {'fp32 s':>8} {'bf16 s':>8} {'bf16/fp32':>9}"
    if args.layouts:
        header += f" {'NCHW fp32':>9} {'NCHW bf16':>9} {'NCHW/NHWC bf16':>14}"
    print(header)
    for name, kw in CONFIGS:
        if args.only and name != args.only:
            continue
        model = create_model(name, scale=args.scale, **kw)
        params = sum(p.numel() for p in model.parameters())
        times = {}
        for dtype in (torch.float32, torch.bfloat16):
            engines = {cl: Engine(copy.deepcopy(model), device="cpu", dtype=dtype, batch_size=1, channels_last=cl)
                       for cl in layouts}
            for engine in engines.values():
                engine.upscale_y(y)  # warm-up
            spent = dict.fromkeys(layouts, 0.0)
            for _ in range(args.reps):  # alternate, so both layouts see the same noise
                for cl, engine in engines.items():
                    t0 = time.perf_counter()
                    engine.upscale_y(y)
                    spent[cl] += time.perf_counter() - t0
            for cl in layouts:
                times[cl, dtype] = spent[cl] / args.reps
        f32, b16 = times[True, torch.float32], times[True, torch.bfloat16]
        row = f"{name:<8} {str(kw):<52} {params:>9} {f32:>8.3f} {b16:>8.3f} {f32 / b16:>9.2f}"
        if args.layouts:
            n32, n16 = times[False, torch.float32], times[False, torch.bfloat16]
            row += f" {n32:>9.3f} {n16:>9.3f} {n16 / b16:>14.2f}"
        print(row)


if __name__ == "__main__":
    main()
