"""Engine seconds per 640x360 frame with glibc's default allocator policy and
with :func:`vsr.process.retain_freed_memory`, side by side.

Usage: python benchmarks/allocator.py [--rounds 3] [--frames 4] [--model edsr] [--scale 2]

The policy is process-wide and cannot be undone, so each measurement is its
own process; the two policies alternate round by round so both see the same
machine noise. Prints per-round seconds per frame (mean over the frames after
a warm-up frame), the resident set after the last frame, and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import resource, sys, time
import numpy as np
from vsr.config import EngineConfig
from vsr.engine import build_engine
from vsr.process import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()
model, scale, frames = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
engine, _ = build_engine(EngineConfig(model=model, scale=scale, dtype="fp32", batch_size=1))
y = np.random.default_rng(0).integers(16, 236, (1, 360, 640), dtype=np.uint8)
engine.upscale_y(y)  # warm-up: oneDNN primitives and the heap
t0 = time.perf_counter()
for _ in range(frames):
    engine.upscale_y(y)
with open("/proc/self/statm") as fh:
    rss = int(fh.read().split()[1]) * resource.getpagesize()
print((time.perf_counter() - t0) / frames, rss)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--model", default="edsr")
    parser.add_argument("--scale", type=int, default=2)
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {"default": [], "retain": []}
    for rnd in range(args.rounds):
        for policy in seconds:
            out = subprocess.run([sys.executable, "-c", CHILD, policy, args.model, str(args.scale), str(args.frames)],
                                 capture_output=True, text=True, check=True, cwd=ROOT)
            secs, rss = out.stdout.split()
            seconds[policy].append(float(secs))
            print(f"round {rnd + 1} {policy:<8} {float(secs):.3f} s/frame  resident {int(rss) / 2**20:.0f} MiB")
    default, retain = (statistics.median(seconds[p]) for p in ("default", "retain"))
    print(f"{args.model} x{args.scale}, 640x360, fp32: median {default:.3f} s default, {retain:.3f} s retained, "
          f"{default / retain:.2f}x")


if __name__ == "__main__":
    main()
