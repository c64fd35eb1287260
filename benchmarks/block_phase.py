"""Where the upscaled error sits relative to the codec's block grid: is blocking what is left?

Usage: python benchmarks/block_phase.py [--scale 2] [--crfs 28] [--frames 20] [--threads 2]
                                        [--out benchmarks/results]

A net that knew each pixel's position in the H.264 transform grid (an extra input channel) could
treat block edges apart from block interiors; a translation-equivariant net can only infer them
from the content. This measures the most such knowledge could earn. For the four 720p clips of
``benchmarks/compressed.py`` (first ``--frames`` frames, MATLAB-bicubic LR, one libx264 round trip per
CRF as ``--eval-crf`` makes it, and the clean LR) it upscales with what ``--source auto`` runs and with
bicubic, and averages the squared Y error by the LR column and row phase modulo 8 (the 8x8 grid,
which holds the 4x4 one; the LR frame starts on the grid). If the error at the grid's edges (phases
7 and 0) matches the interior's (2-5), blocking is not what is left.

The bound: the PSNR gain if each axis's error at every phase fell to its interior's, the column and
row excesses taken as additive (``flat_bound_db``); negative where the interior is the worse.
Writes OUT/block_phase_xS.csv: one row per condition, model, axis and phase.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.compressed import CLIPS, DATA, RoutedEngine  # noqa: E402
from pipelines.metrics import degrade_frame  # noqa: E402
from vsr.io.decode import iter_frames  # noqa: E402
from vsr.io.probe import QP_FRAMES  # noqa: E402
from vsr.io.recompress import Recompressor  # noqa: E402

PERIOD = 8
EDGE = (PERIOD - 1, 0)  # the LR phases either side of a grid line
INTERIOR = tuple(range(2, PERIOD - 2))


def phase_profile(err: np.ndarray, scale: int, period: int = PERIOD,
                  offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``err`` float (T, H, W), an HR-sized error map, by LR column phase and by LR row phase.

    ``offset``: HR pixels cut from the map's top and left (a shaved border), so that map pixel x is
    frame pixel x + offset, of LR pixel (x + offset) // scale and phase that modulo ``period``.
    Returns two float64 arrays of length ``period``: columns, rows.
    """
    _, h, w = err.shape
    cols = ((np.arange(w) + offset) // scale) % period
    rows = ((np.arange(h) + offset) // scale) % period
    by_col = np.array([err[:, :, cols == p].mean() for p in range(period)])
    by_row = np.array([err[:, rows == p, :].mean() for p in range(period)])
    return by_col, by_row


def edge_ratio(profile: np.ndarray) -> float:
    """Mean error at the grid edges over the interior's (1: no blocking left)."""
    return float(profile[list(EDGE)].mean() / profile[list(INTERIOR)].mean())


def flat_bound_db(by_col: np.ndarray, by_row: np.ndarray) -> float:
    """PSNR gain (dB) if each axis's excess over its interior phases were removed.

    The mean squared error is either profile's mean (every phase holds the same share of pixels); each
    axis's excess is its mean minus its interior's mean, and the two are taken as additive.
    """
    mse = float(np.mean([by_col.mean(), by_row.mean()]))
    excess = sum(float(p.mean() - p[list(INTERIOR)].mean()) for p in (by_col, by_row))
    return float(10 * np.log10(mse / (mse - excess)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--crfs", type=int, nargs="+", default=[28])
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    s = args.scale
    engine = RoutedEngine("fast", s, "fp32", "torch")
    rows = []
    for crf in [None, *args.crfs]:
        profiles: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"bicubic": [], "fast:auto": []}
        for clip in CLIPS:
            hr, lrs, qps = [], [], []
            rec: Recompressor | None = None
            for _, frame in zip(range(args.frames), iter_frames(DATA / clip), strict=False):
                lr, gt = degrade_frame(frame, s, "bicubic")
                hr.append(gt.astype(np.float64))
                if crf is not None:
                    rec = rec or Recompressor(lr.width, lr.height, lr.pix_fmt, crf=crf)
                    lr = rec(lr)
                    if rec.qp is not None:
                        qps.append(rec.qp)
                lrs.append(lr)
            ys = np.stack([f.y for f in lrs])
            qp = float(np.median(qps[:QP_FRAMES])) if qps else None
            net = engine.pick("clean" if crf is None else "compressed", qp)
            outs = {"bicubic": engine.bicubic_y(ys),
                    "fast:auto": np.concatenate([net.upscale_y(ys[i : i + 1]) for i in range(len(ys))])}
            truth = np.stack(hr)
            for name, out in outs.items():
                err = ((out.astype(np.float64) - truth) ** 2)[:, s:-s, s:-s]  # the eval's shave
                profiles[name].append(phase_profile(err, s, offset=s))
        label = "clean" if crf is None else f"CRF {crf}"
        for name, per_clip in profiles.items():
            by_col = np.mean([p[0] for p in per_clip], axis=0)
            by_row = np.mean([p[1] for p in per_clip], axis=0)
            print(f"{label:<8} {name:<10} edge/interior: columns {edge_ratio(by_col):.3f}, rows "
                  f"{edge_ratio(by_row):.3f}; bound if flat {flat_bound_db(by_col, by_row):+.3f} dB", flush=True)
            for axis, prof in (("column", by_col), ("row", by_row)):
                rows += [{"crf": "clean" if crf is None else crf, "model": name, "axis": axis, "phase": p,
                          "mse": round(float(v), 4)} for p, v in enumerate(prof)]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"block_phase_x{s}.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
