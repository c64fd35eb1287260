"""Engine seconds per 640x360 frame (x2) for model sizes, fp32 and bf16, side by side.

Usage: python benchmarks/model_speed.py [--reps 3] [--layouts] [--only edsr]
Prints one row per configuration; all rows come from the same run, so the
ratios between them hold even when the machine is noisy. bf16 is timed only
where the CPU has it natively (emulated bf16 runs many times slower).
``--layouts`` adds the same timings with NCHW weights (the engine uses
channels-last). Variants are timed alternately, frame by frame; each
ratio is to the first column.
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import Any

import numpy as np
import torch

from vsr.engine import Engine, cpu_has_bf16
from vsr.models import create_model
from vsr.process import retain_freed_memory

CONFIGS: list[tuple[str, dict[str, Any]]] = [
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


def variants(args: argparse.Namespace) -> list[tuple[str, torch.dtype, bool]]:
    """(label, dtype, channels_last) for each engine timed per configuration."""
    dtypes = [torch.float32] + ([torch.bfloat16] if cpu_has_bf16() else [])
    out = []
    for dtype in dtypes:
        tag = "fp32" if dtype == torch.float32 else "bf16"
        out.append((tag, dtype, True))
        if args.layouts:
            out.append((f"NCHW {tag}", dtype, False))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--layouts", action="store_true", help="also time NCHW weights, alternating")
    parser.add_argument("--only", default=None, help="only configurations of this model name")
    args = parser.parse_args()
    retain_freed_memory()  # as the CLI does: time the engine as users run it
    y = np.random.default_rng(0).integers(16, 236, (1, 360, 640), dtype=np.uint8)
    labels = variants(args)
    columns = " ".join(f"{label + ' s (ratio)':>15}" for label, *_ in labels)
    print(f"{'model':<8} {'kwargs':<52} {'params':>9} " + columns)
    for name, kw in CONFIGS:
        if args.only and name != args.only:
            continue
        model = create_model(name, scale=args.scale, **kw)
        params = sum(p.numel() for p in model.parameters())
        engines = {
            label: Engine(copy.deepcopy(model), device="cpu", dtype=dtype, batch_size=1,
                          channels_last=cl)
            for label, dtype, cl in labels
        }
        for engine in engines.values():
            engine.upscale_y(y)  # warm-up
        spent = dict.fromkeys(engines, 0.0)
        for _ in range(args.reps):  # alternate, so every variant sees the same noise
            for label, engine in engines.items():
                t0 = time.perf_counter()
                engine.upscale_y(y)
                spent[label] += time.perf_counter() - t0
        base = spent[labels[0][0]]
        print(f"{name:<8} {kw!s:<52} {params:>9} "
              + " ".join(f"{spent[k] / args.reps:>7.3f} ({spent[k] / base:.2f}x)" for k in engines))


if __name__ == "__main__":
    main()
