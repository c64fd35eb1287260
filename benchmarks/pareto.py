"""Quality against speed: every shipped model and the peers, side by side in one process.

Usage (OpenCV's ESPCN/FSRCNN need cv2.dnn_superres, so run from the peers environment):
    bash scripts/setup_peers.sh
    .venv-peers/bin/python benchmarks/pareto.py [--scales 2 4] [--rounds 5] [--out benchmarks/results]

For each scale: Set5 PSNR-Y (the `vsr eval` protocol: HR mod-cropped, MATLAB bicubic LR, BT.601
studio Y, `scale` px shaved) and engine milliseconds per 640x360 LR frame, the median of
``--rounds`` rounds in which every entry runs once in turn (alternating, so machine noise hits
all alike). Our models run as `vsr upscale` runs them: under every installed runtime (PyTorch, and
OpenVINO / ONNX Runtime where the environment has them) in fp32, and bf16 where the CPU has it;
the fastest pair is listed, as `--runtime auto` would pick it. Peers run at their native
precision: PyTorch fp32 for FSRCNN and VDSR (our loaders, benchmarks/peers.py), OpenCV's DNN module for its own graphs.
Writes OUT/pareto.csv and OUT/pareto.png (PSNR against ms, log scale).
"""

from __future__ import annotations

import argparse
import copy
import csv
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import peers  # noqa: E402

from pipelines.models import shipped_models  # noqa: E402
from pipelines.plot import Series, plot  # noqa: E402
from vsr.engine import Engine, cpu_has_bf16  # noqa: E402
from vsr.evaluate import evaluate_images, summarize  # noqa: E402
from vsr.models import create_model  # noqa: E402
from vsr.process import retain_freed_memory  # noqa: E402
from vsr.runtime import runtime_pairs  # noqa: E402
from vsr.weights import load_model, weights_dir  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


@dataclass
class Entry:
    name: str
    source: str  # "vsr" or "peer"
    scale: int
    runtime: str
    gmac: float | None
    run: Callable[[NDArray[np.uint8]], NDArray[np.uint8]]  # uint8 (N, h, w) -> uint8 (N, sh, sw)
    psnr: float = float("nan")
    ms: float = float("nan")


def frame() -> np.ndarray:
    """A 640x360 luma plane with texture at every scale (timing does not depend on content, but be fair)."""
    yy, xx = np.mgrid[0:360, 0:640].astype(np.float64)
    img = 128 + 60 * np.sin(xx / 7.0) * np.cos(yy / 11.0) + 30 * np.sin((xx + yy) / 3.0)
    return np.clip(img, 16, 235).astype(np.uint8)[None]


def our_entries(scale: int) -> list[Entry]:
    out = []
    for row in shipped_models():
        if row.scale != scale:
            continue
        model, _ = load_model(row.model, scale, weights_dir() / row.file)
        for runtime, dtype in runtime_pairs(("fp32", "bf16") if cpu_has_bf16() else ("fp32",)):
            engine = Engine(copy.deepcopy(model), device="cpu", dtype=dtype, runtime=runtime, batch_size=1)
            out.append(Entry(f"{row.file.removesuffix('.pt')}", "vsr", scale, f"{runtime} {dtype}",
                             row.gmac_640x360, engine.upscale_y))
    bic = Engine(create_model("bicubic", scale=scale), device="cpu", dtype="fp32", batch_size=1)
    out.append(Entry("bicubic", "vsr", scale, "torch", 0.0, bic.upscale_y))
    return out


def peer_entries(scale: int) -> tuple[list[Entry], list[str]]:
    out, skipped = [], []
    out.append(Entry("FSRCNN (yjn870)", "peer", scale, "torch fp32", None, peers.fsrcnn_yjn870(scale)))
    out.append(Entry("VDSR (twtygqyy)", "peer", scale, "torch fp32", None, peers.vdsr(scale)))
    for kind, label in (("espcn", "OpenCV ESPCN"), ("fsrcnn", "OpenCV FSRCNN")):
        try:
            out.append(Entry(label, "peer", scale, "opencv dnn", None, peers.opencv_dnn(kind, scale)))
        except RuntimeError as exc:
            skipped.append(f"{label}: {exc}")
    return out, skipped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--set", default="Set5")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    retain_freed_memory()
    torch.set_num_threads(2)
    try:
        import cv2

        cv2.setNumThreads(2)
    except ImportError:
        pass
    args.out.mkdir(parents=True, exist_ok=True)
    y = frame()
    rows, panels = [], []
    for scale in args.scales:
        entries = our_entries(scale)
        peer, skipped = peer_entries(scale)
        entries += peer
        for s in skipped:
            print(f"x{scale} skipped: {s}", file=sys.stderr)
        for e in entries:  # quality first (no timing), then the alternating timing rounds
            e.psnr = summarize(evaluate_images(e.run, None, DATA / args.set, scale, with_ssim=False))["psnr"]
            e.run(y)  # warm-up: oneDNN primitives, OpenCV's network
        times: dict[int, list[float]] = {i: [] for i in range(len(entries))}
        for _ in range(args.rounds):
            for i, e in enumerate(entries):
                t0 = time.perf_counter()
                e.run(y)
                times[i].append(time.perf_counter() - t0)
        for i, e in enumerate(entries):
            e.ms = 1000 * statistics.median(times[i])
        # of our models, keep the faster precision of each checkpoint
        best: dict[str, Entry] = {}
        for e in entries:
            if e.name not in best or e.ms < best[e.name].ms:
                best[e.name] = e
        entries = list(best.values())
        for e in entries:
            front = not any(o.ms < e.ms and o.psnr > e.psnr for o in entries if o is not e)
            rows.append({"scale": scale, "name": e.name, "source": e.source, "runtime": e.runtime,
                         "gmac_640x360": "" if e.gmac is None else round(e.gmac, 2),
                         f"{args.set}_psnr": round(e.psnr, 3), "ms_640x360": round(e.ms, 1), "pareto": front})
            print(f"x{scale} {e.name:<22} {e.runtime:<12} {args.set} {e.psnr:7.3f} dB  {e.ms:9.1f} ms"
                  + ("  (Pareto front)" if front else ""))
        series = [Series(e.name, [max(e.ms, 0.1)], [e.psnr], point_labels=[e.name]) for e in entries]
        panels.append((f"x{scale}: {args.set} PSNR-Y against engine ms per 640x360 frame", series))
    with open(args.out / "pareto.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(panels, args.out / "pareto.png", xlabel="ms per 640x360 frame (log)", ylabel="PSNR-Y (dB)", logx=True,
         size=(720, 540))
    print(f"wrote {args.out / 'pareto.csv'} and {args.out / 'pareto.png'}")


if __name__ == "__main__":
    main()
