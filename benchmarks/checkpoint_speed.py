"""Engine seconds per 640x360 frame for checkpoint files, side by side.

Usage: python benchmarks/checkpoint_speed.py A.pt B.pt[:PASSES] [...] [--rounds 6] [--dtype fp32]

Each checkpoint gets its own engine (its own model, scale and arguments);
``FILE:N`` runs it N passes, as ``--passes N`` does (x2 weights twice for x4);
the engines run alternately, one frame each per round, so every file sees
the same machine noise. Prints the median and range of the per-frame times
and each median's ratio to the first file's. This is how a candidate's
engine time is compared with the shipped file's before it replaces it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from vsr.engine import Engine
from vsr.process import retain_freed_memory
from vsr.weights import load_checkpoint, model_from_checkpoint

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def parse_spec(spec: str) -> tuple[Path, int]:
    """``FILE`` or ``FILE:N`` -> (path, passes)."""
    head, sep, tail = spec.rpartition(":")
    if sep and tail.isdigit():
        return Path(head), int(tail)
    return Path(spec), 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="FILE or FILE:PASSES")
    parser.add_argument("--rounds", type=int, default=6, help="frames per checkpoint, alternating")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    args = parser.parse_args()
    retain_freed_memory()  # as the CLI does: time the engine as users run it
    # uint8 [16, 235], (1, H, W): one luma plane in studio swing
    y = np.random.default_rng(0).integers(16, 236, (1, args.height, args.width), dtype=np.uint8)
    engines = {}
    for spec in args.checkpoints:
        path, passes = parse_spec(spec)
        ckpt = load_checkpoint(path)
        engines[spec] = (Engine(model_from_checkpoint(ckpt), device="cpu", dtype=DTYPES[args.dtype],
                                batch_size=1, passes=passes), ckpt)
    for engine, _ in engines.values():
        engine.upscale_y(y)  # warm-up: first-call allocations and kernel selection
    seconds: dict[str, list[float]] = {spec: [] for spec in engines}
    for _ in range(args.rounds):
        for spec, (engine, _) in engines.items():
            t0 = time.perf_counter()
            engine.upscale_y(y)
            seconds[spec].append(time.perf_counter() - t0)
    base = statistics.median(seconds[args.checkpoints[0]])
    print(f"{args.width}x{args.height}, {args.dtype}, {torch.get_num_threads()} threads, {args.rounds} rounds")
    for spec, (engine, ckpt) in engines.items():
        times = seconds[spec]
        med = statistics.median(times)
        kwargs = ",".join(f"{k}={v}" for k, v in ckpt["model_kwargs"].items())
        print(f"{spec:<40} {ckpt['model']} x{engine.total_scale} {kwargs:<44} "
              f"median {med:.3f} s (min {min(times):.3f}, max {max(times):.3f})  {med / base:.2f}x")


if __name__ == "__main__":
    main()
