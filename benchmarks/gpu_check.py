"""The CUDA path, checked in one run on one GPU (about 5 minutes on a recent card).

Usage: python benchmarks/gpu_check.py [--clip ../shared/data/clips/chaplin.mp4] [--out benchmarks/results]

1. Every shipped checkpoint on Set5 in CUDA fp16 against the CPU in fp32 (the `vsr eval`
   protocol): PASS when within 0.05 dB.
2. `vsr upscale CLIP --scale 2` (the default model) on CUDA and on the CPU: PASS when both give
   the same frame count, the same timestamps and the same audio packets.
3. 1080p → 2160p x2 throughput of fast, balanced (untrained weights where none ship: speed only)
   and EDSR at batch 1, 4 and 8 in fp16, with peak GPU memory.

Writes OUT/gpu_check.json and prints one line per check; exits 1 if a check fails, 2 without CUDA.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.clip import upscale_path  # noqa: E402
from pipelines.evaluate import evaluate_sets  # noqa: E402
from vsr.config import DEFAULT_MODEL, EngineConfig, UpscaleConfig  # noqa: E402
from vsr.engine import Engine, build_engine  # noqa: E402
from vsr.models import create_model  # noqa: E402
from vsr.weights import default_weights, load_checkpoint, weights_dir  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def _facts(path: Path) -> dict:
    with av.open(str(path)) as c:
        pts = [int(f.pts) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        audio = [bytes(p) for p in c.demux(c.streams.audio) if p.size] if c.streams.audio else []
    return {"frames": len(pts), "pts": pts, "audio": audio}


def check_psnr(results: dict) -> bool:
    ok = True
    for path in sorted(weights_dir().glob("*.pt")):
        ckpt = load_checkpoint(path)
        psnr = {}
        for device, dtype in (("cpu", "fp32"), ("cuda", "fp16")):
            cfg = EngineConfig(model=ckpt["model"], scale=int(ckpt["scale"]), weights=path, device=device,
                               dtype=dtype, batch_size=1, runtime="torch")
            scores, _ = evaluate_sets(cfg, [DATA / "Set5"], with_ssim=False)
            psnr[device] = scores[0].psnr
        diff = psnr["cuda"] - psnr["cpu"]
        passed = abs(diff) <= 0.05
        ok &= passed
        results["psnr"].append({"file": path.name, "cpu_fp32": round(psnr["cpu"], 3),
                                "cuda_fp16": round(psnr["cuda"], 3), "diff": round(diff, 3), "pass": passed})
        print(f"{'PASS' if passed else 'FAIL'} Set5 {path.name:<26} cpu fp32 {psnr['cpu']:.3f}  cuda fp16 "
              f"{psnr['cuda']:.3f}  ({diff:+.3f} dB)", flush=True)
    return ok


def check_clip(clip: Path, results: dict) -> bool:
    facts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for device in ("cuda", "cpu"):
            cfg = UpscaleConfig(engine=EngineConfig(model=DEFAULT_MODEL, scale=2, device=device), overwrite=True,
                                quiet=True)
            t0 = time.perf_counter()
            report = upscale_path(clip, Path(tmp) / f"{device}.mp4", cfg)
            facts[device] = _facts(Path(tmp) / f"{device}.mp4")
            results["clip"][device] = {"seconds": round(time.perf_counter() - t0, 2), "fps": round(report.fps, 2),
                                       "frames": facts[device]["frames"]}
    same = {k: facts["cuda"][k] == facts["cpu"][k] for k in ("frames", "pts", "audio")}
    results["clip"]["same"] = same
    passed = all(same.values())
    print(f"{'PASS' if passed else 'FAIL'} {clip.name} x2 on cuda and cpu: {facts['cuda']['frames']} frames; same "
          + ", ".join(f"{k} {v}" for k, v in same.items()), flush=True)
    return passed


def speed(results: dict) -> None:
    y = np.random.default_rng(0).integers(16, 236, (8, 1080, 1920), dtype=np.uint8)
    for name in ("fast", "balanced", "edsr"):
        weights = default_weights(name, 2)
        model = (create_model(name, scale=2, fused=True) if weights is None and name != "edsr" else
                 build_engine(EngineConfig(model=name, scale=2, device="cpu", dtype="fp32", runtime="torch"))[0].model)
        for batch in (1, 4, 8):
            engine = Engine(model, device="cuda", dtype="fp16", batch_size=batch)
            engine.upscale_y(y[:batch])  # warm-up: cuDNN autotuning, allocator
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            reps = max(2, 16 // batch)
            for _ in range(reps):
                engine.upscale_y(y[:batch])
            torch.cuda.synchronize()
            fps = reps * batch / (time.perf_counter() - t0)
            peak = torch.cuda.max_memory_allocated() / 2**20
            results["speed"].append({"model": name, "trained": weights is not None, "batch": batch,
                                     "fps_1080p_to_2160p": round(fps, 2), "peak_mib": round(peak)})
            print(f"     {name:<9} batch {batch}: {fps:7.2f} fps 1080p->2160p, peak {peak:7.0f} MiB", flush=True)
            model = engine.model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", type=Path, default=DATA / "clips" / "chaplin.mp4")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing checked", file=sys.stderr)
        sys.exit(2)
    results: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "psnr": [], "clip": {},
                     "speed": []}
    print(f"device: {results['device']}, torch {torch.__version__}", flush=True)
    ok = check_psnr(results)
    ok &= check_clip(args.clip, results)
    speed(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'all checks passed' if ok else 'some checks FAILED'}; wrote {args.out / 'gpu_check.json'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
