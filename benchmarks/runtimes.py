"""Engine milliseconds per 640x360 frame for every shipped checkpoint under every installed
runtime and precision, side by side, and whether ``--runtime auto`` picks within 10% of the fastest.

Usage: python benchmarks/runtimes.py [--rounds 5] [--only fast_x2.pt ...] [--out benchmarks/results]
                                     [--update-manifest]

For each checkpoint, every (runtime, precision) engine is built once, warmed up, then timed on one
640x360 luma frame (batch 1, uint8 in and out, as `vsr upscale` runs it) in ``--rounds`` rounds
that alternate the engines, so machine noise hits all alike; the median per engine is reported.
Then ``pick_runtime`` runs as ``--runtime auto --dtype auto`` does (no cache) and its choice is
compared with the fastest in this same run. Writes OUT/runtimes.csv and OUT/runtimes.md;
``--update-manifest`` stores the medians in weights/MANIFEST.json (``seconds_640x360``), which
``vsr models`` reads.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsr.engine import Engine, cpu_has_bf16  # noqa: E402
from vsr.io.atomic import write_text_atomic  # noqa: E402
from vsr.process import retain_freed_memory  # noqa: E402
from vsr.runtime import pick_runtime, runtime_pairs  # noqa: E402
from vsr.weights import load_checkpoint, model_from_checkpoint, weights_dir  # noqa: E402


def _frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:360, 0:640]
    return np.clip(128 + 60 * np.sin(xx / 7.0) * np.cos(yy / 5.0) + rng.normal(0, 20, (360, 640)), 0, 255
                   ).astype(np.uint8)[None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", nargs="*", default=None, help="Checkpoint file names (default: all shipped).")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--update-manifest", action="store_true")
    args = ap.parse_args()
    retain_freed_memory()
    args.out.mkdir(parents=True, exist_ok=True)
    y = _frame()
    precisions = ("fp32", "bf16") if cpu_has_bf16() else ("fp32",)
    pairs = runtime_pairs(precisions)
    paths = [weights_dir() / f for f in args.only] if args.only else sorted(weights_dir().glob("*.pt"))
    rows = []
    for path in paths:
        model = model_from_checkpoint(load_checkpoint(path))
        engines = {f"{r}/{p}": Engine(model, device="cpu", runtime=r, batch_size=1,
                                      dtype=torch.float32 if p == "fp32" else torch.bfloat16) for r, p in pairs}
        times: dict[str, list[float]] = {k: [] for k in engines}
        for engine in engines.values():
            engine.upscale_y(y)  # warm-up
        for _ in range(args.rounds):
            for key, engine in engines.items():
                t0 = time.perf_counter()
                engine.upscale_y(y)
                times[key].append(time.perf_counter() - t0)
        ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
        auto = pick_runtime(model, precisions, use_cache=False)
        auto_key = f"{auto.runtime}/{auto.precision}"
        fastest = min(ms, key=lambda k: ms[k])
        row = {"file": path.name, **{k: round(v, 1) for k, v in ms.items()}, "auto": auto_key,
               "fastest": fastest, "auto_over_fastest": round(ms[auto_key] / ms[fastest], 3)}
        rows.append(row)
        print(f"{path.name:<24} " + "  ".join(f"{k} {v:7.1f}" for k, v in ms.items())
              + f"  | auto {auto_key} ({row['auto_over_fastest']:.2f}x the fastest, {fastest})", flush=True)
        if args.update_manifest:
            manifest_path = weights_dir() / "MANIFEST.json"
            manifest = json.loads(manifest_path.read_text())
            for entry in manifest["weights"]:
                if entry["file"] == path.name:
                    entry["seconds_640x360"] = {k: round(v / 1e3, 4) for k, v in ms.items()}
                    entry["fps_640x360"] = round(1e3 / ms[fastest], 1)
                    entry["timed_as"] = f"benchmarks/runtimes.py, {_cpu()}"
            write_text_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")
    keys = [f"{r}/{p}" for r, p in pairs]
    with open(args.out / "runtimes.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", *keys, "auto", "fastest", "auto_over_fastest"])
        w.writeheader()
        w.writerows(rows)
    cards = {e["file"]: e for e in json.loads((weights_dir() / "MANIFEST.json").read_text())["weights"]}
    lines = [f"ms per 640x360 luma frame (median of {args.rounds} alternating rounds), {_cpu()}, "
             f"{torch.get_num_threads()} threads; Set5 PSNR-Y (fp32, the model card's)", "",
             "| checkpoint | Set5 | " + " | ".join(keys) + " | auto picks | auto / fastest |",
             "|---" * (len(keys) + 4) + "|"]
    for r in rows:
        set5 = cards.get(r["file"], {}).get("psnr_y", {}).get("Set5")
        lines.append(f"| {r['file']} | {'-' if set5 is None else f'{set5:.3f}'} | "
                     + " | ".join(f"{r[k]:.1f}" for k in keys) + f" | {r['auto']} | {r['auto_over_fastest']:.2f} |")
    write_text_atomic(args.out / "runtimes.md", "\n".join(lines) + "\n")
    print(f"wrote {args.out / 'runtimes.csv'} and {args.out / 'runtimes.md'}")


def _cpu() -> str:
    flags = Path("/proc/cpuinfo").read_text()
    kind = "AMX" if "amx_bf16" in flags else "AVX-512 BF16" if "avx512_bf16" in flags else "AVX2"
    return f"{kind} CPU"


if __name__ == "__main__":
    main()
