"""Make the int8 graphs of shipped checkpoints, where they earn it (``--precision int8``).

Usage: python scripts/quantize_int8.py [--only fast_x2.pt ...] [--calib ../shared/data/T91 ...]
                                       [--patches 64] [--rounds 5]

Per checkpoint: NNCF post-training quantization of its fused ONNX graph (OpenVINO), calibrated on
``--patches`` random 64x64 LR patches of training images (never a benchmark set), once with every
convolution in int8 and, if that costs too much, once with the last convolution left in float.
Each version is scored on Set5 (the `vsr eval` protocol) against the same graph in fp32 on
OpenVINO, and timed against it on one 640x360 frame in alternating rounds (median). Where
:func:`vsr.runtime.int8_verdict` offers it (drop <= 0.10 dB, >= 1.3x faster), the graph is
written to ``weights/NAME.int8.xml`` + ``.bin``; either way the figures go into
``weights/MANIFEST.json`` under the checkpoint's ``int8`` entry, which ``vsr models`` shows.
Needs ``pip install 'vsr[int8]'``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsr.degrade import degrade  # noqa: E402
from vsr.engine import Engine  # noqa: E402
from vsr.evaluate import evaluate_images, summarize  # noqa: E402
from vsr.io.atomic import write_text_atomic  # noqa: E402
from vsr.io.images import list_images, load_y  # noqa: E402
from vsr.process import retain_freed_memory  # noqa: E402
from vsr.runtime import int8_path, int8_verdict, quantize_int8  # noqa: E402
from vsr.weights import load_checkpoint, model_from_checkpoint, weights_dir  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def calibration_patches(folders: list[Path], scale: int, count: int, size: int = 64) -> list[np.ndarray]:
    """float32 (1, 1, size, size) LR patches in [0, 1]: training images' Y, MATLAB-bicubic downscaled."""
    rng = np.random.default_rng(0)
    paths = list_images(folders)
    patches = []
    for i in rng.permutation(len(paths))[:count]:
        hr = load_y(paths[i])
        hr = hr[: hr.shape[0] - hr.shape[0] % scale, : hr.shape[1] - hr.shape[1] % scale]
        lr = degrade(hr, scale, "bicubic")
        if min(lr.shape) < size:
            continue
        y, x = rng.integers(0, lr.shape[0] - size + 1), rng.integers(0, lr.shape[1] - size + 1)
        patches.append((lr[y : y + size, x : x + size].astype(np.float32) / 255.0)[None, None].copy())
    # One patch that spans the whole code range, so no calibrated range clips black or white.
    ramp = np.linspace(0.0, 1.0, size * size, dtype=np.float32).reshape(size, size)
    patches.append(np.where(np.indices((size, size)).sum(0) % 2 == 0, ramp, 1.0 - ramp)[None, None].copy())
    return patches


def _set5(engine: Engine, scale: int) -> float:
    return summarize(evaluate_images(engine.upscale_y, None, DATA / "Set5", scale, with_ssim=False))["psnr"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--calib", nargs="*", type=Path, default=[DATA / "T91", DATA / "BSDS200"])
    ap.add_argument("--patches", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    retain_freed_memory()
    import openvino as ov

    folder = weights_dir()
    paths = [folder / f for f in args.only] if args.only else sorted(folder.glob("*.pt"))
    frame = np.random.default_rng(1).integers(0, 256, (1, 360, 640), dtype=np.uint8)
    manifest_path = folder / "MANIFEST.json"
    for path in paths:
        ckpt = load_checkpoint(path)
        model = model_from_checkpoint(ckpt)
        scale = int(ckpt["scale"])
        patches = calibration_patches(args.calib, scale, args.patches)
        fp32 = Engine(model, device="cpu", dtype=torch.float32, runtime="openvino", batch_size=1)
        ref_psnr = _set5(fp32, scale)
        tmp = path.with_name(path.stem + ".int8-candidate.xml")
        result: dict[str, Any] | None = None
        for keep_last_float in (False, True):
            t0 = time.perf_counter()
            qmodel = quantize_int8(model, patches, keep_last_float=keep_last_float)
            quant_s = time.perf_counter() - t0
            ov.save_model(qmodel, str(tmp), compress_to_fp16=False)
            int8 = Engine(model, device="cpu", dtype="int8", runtime="openvino", batch_size=1, int8_graph=tmp)
            drop = ref_psnr - _set5(int8, scale)
            times: dict[str, list[float]] = {"fp32": [], "int8": []}
            for engine in (fp32, int8):
                engine.upscale_y(frame)
            for _ in range(args.rounds):
                for key, engine in (("fp32", fp32), ("int8", int8)):
                    t1 = time.perf_counter()
                    engine.upscale_y(frame)
                    times[key].append(time.perf_counter() - t1)
            ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
            offered, reason = int8_verdict(drop, ms["fp32"] / ms["int8"])
            result = {"offered": offered, "reason": reason, "psnr_y_set5": round(ref_psnr - drop, 3),
                      "drop_db": round(drop, 3), "ms_640x360": round(ms["int8"], 1),
                      "ms_640x360_fp32_openvino": round(ms["fp32"], 1), "speedup": round(ms["fp32"] / ms["int8"], 2),
                      "last_conv_float": keep_last_float, "quantize_seconds": round(quant_s, 1),
                      "calibration": f"{len(patches)} LR patches 64x64 from "
                                     + ", ".join(p.name for p in args.calib) + " (seed 0)"}
            print(f"{path.name:<24} last conv {'float' if keep_last_float else 'int8 '}  drop {drop:+.3f} dB  "
                  f"fp32 {ms['fp32']:.1f} ms  int8 {ms['int8']:.1f} ms  -> {reason}", flush=True)
            if offered or drop <= 0.10:
                break  # faster with everything in int8 than with a float last layer, if it is offered at all
        assert result is not None  # the loop runs at least once
        target = int8_path(path)
        if result["offered"]:
            tmp.replace(target)
            tmp.with_suffix(".bin").replace(target.with_suffix(".bin"))
            result["sha256"] = {target.name: _sha(target), target.with_suffix(".bin").name:
                                _sha(target.with_suffix(".bin"))}
        else:
            for stale in (tmp, tmp.with_suffix(".bin"), target, target.with_suffix(".bin")):
                stale.unlink(missing_ok=True)
        manifest = json.loads(manifest_path.read_text())
        for entry in manifest["weights"]:
            if entry["file"] == path.name:
                entry["int8"] = result
        write_text_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
