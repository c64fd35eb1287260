"""Where the compressed-source QP band should start: validated on sequences that are neither trained on
nor a benchmark.

Usage: python benchmarks/qp_floor.py [--scales 2 4] [--crfs 12 ... 30] [--data ../shared/data/Vimeo90K_sample16]
                                     [--out benchmarks/results] [--threads 2] [--band CANDIDATE.pt --scales S]

``--source auto`` runs ``fast_xS_compressed_qpF.pt`` on H.264 streams whose median macroblock QP
(``vsr.io.probe.QP_FRAMES`` frames) is at least F, and ``fast_xS_compressed.pt`` below: the floor F
lives in the band file's name. This script measures both nets on every stream it makes, so that F can
be chosen on held-out data rather than on the clips of ``benchmarks/compressed.py``.

Each Vimeo-90K septuplet (7 consecutive 448x256 frames, RGB) becomes a short YUV 4:2:0 clip (BT.601
studio swing, ``vsr.color``; chroma by ``vsr.frames.resize_plane``), downscaled by MATLAB bicubic
(``pipelines.metrics.degrade_frame``, as ``--eval`` does) and sent through one libx264 round trip per
CRF (``vsr.io.recompress.Recompressor``: veryfast, no B-frames, P-frames, as ``--eval-crf`` and the
compressed benchmark do). Both nets and bicubic upscale the LR luma; the score is Y-PSNR against the
HR luma (S px shaved), the mean over the 7 frames.

The choice: for each candidate floor f, the routed gain over bicubic (band at QP >= f, the base net
below) averaged over every stream; the floor is the f with the highest mean, ties going to the higher f.
Writes OUT/qp_floor_xS.csv (one row per stream) and prints the per-QP difference and the choice.
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

from pipelines.clip import image_to_frame  # noqa: E402
from pipelines.metrics import degrade_frame  # noqa: E402
from vsr.config import EngineConfig  # noqa: E402
from vsr.engine import Engine, build_engine  # noqa: E402
from vsr.frames import YuvFrame, resize_plane  # noqa: E402
from vsr.io.images import list_images, read_rgb  # noqa: E402
from vsr.io.probe import QP_FRAMES  # noqa: E402
from vsr.io.recompress import Recompressor  # noqa: E402
from vsr.metrics import psnr  # noqa: E402
from vsr.weights import qp_bands  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "Vimeo90K_sample16"


def sequences(root: Path) -> list[list[Path]]:
    """Each septuplet folder's frames in order (folders holding images, sorted)."""
    folders = sorted({p.parent for p in list_images([root])})
    return [sorted(list_images([f])) for f in folders]


def yuv420(rgb: np.ndarray) -> YuvFrame:
    """uint8 (H, W, 3) RGB → a yuv420p frame (BT.601 studio swing; H and W even)."""
    f = image_to_frame(rgb)
    cw, ch = f.width // 2, f.height // 2
    return YuvFrame((f.y, *(resize_plane(p, cw, ch) for p in f.planes[1:])), "yuv420p", None, None, 0)


def _engine(weights: Path, scale: int) -> Engine:
    cfg = EngineConfig(model="fast", weights=weights, source="compressed", scale=scale, device="cpu",
                       dtype="fp32", batch_size=1, runtime="torch")
    return build_engine(cfg)[0]


def measure(seqs: list[list[Path]], scale: int, crfs: list[int], base: Engine, band: Engine) -> list[dict]:
    """One row per (sequence, CRF): the stream's median QP and the three Y-PSNRs."""
    rows = []
    for paths in seqs:
        pairs = [degrade_frame(yuv420(read_rgb(p)), scale, "bicubic") for p in paths]
        hr = [gt for _, gt in pairs]
        for crf in crfs:
            rec = Recompressor(pairs[0][0].width, pairs[0][0].height, "yuv420p", crf=crf)
            ys, qps = [], []
            for lr, _ in pairs:
                ys.append(rec(lr).y)
                if rec.qp is not None:
                    qps.append(rec.qp)
            lr_y = np.stack(ys)
            scores = {}
            for name, fn in (("bicubic", base.bicubic_y), ("base", base.upscale_y), ("band", band.upscale_y)):
                sr = np.concatenate([fn(lr_y[i : i + 1]) for i in range(len(lr_y))])
                scores[name] = float(np.mean([psnr(s, h, crop_border=scale) for s, h in zip(sr, hr, strict=True)]))
            bic = scores["bicubic"]
            rows.append({"sequence": str(paths[0].parent.relative_to(paths[0].parents[2])), "crf": crf,
                         "qp": round(float(np.median(qps[:QP_FRAMES])), 2), "psnr_bicubic": round(bic, 3),
                         "gain_base": round(scores["base"] - bic, 3), "gain_band": round(scores["band"] - bic, 3)})
    return rows


def choose_floor(rows: list[dict], candidates: range) -> tuple[int, dict[int, float]]:
    """(the floor with the highest mean routed gain, ties to the higher; the mean routed gain per floor)."""
    means = {f: float(np.mean([r["gain_band"] if r["qp"] >= f else r["gain_base"] for r in rows]))
             for f in candidates}
    best = max(means.values())
    return max(f for f, m in means.items() if m == best), means


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--crfs", type=int, nargs="+", default=list(range(12, 31)))
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--band", type=Path, help="A candidate band checkpoint in place of the shipped one (one --scales).")
    args = ap.parse_args()
    if args.band and len(args.scales) != 1:
        raise SystemExit("error: --band is one checkpoint: give one --scales")
    if not args.data.is_dir():
        raise SystemExit(f"error: {args.data} not found (the Vimeo-90K sample of ../shared/data)")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    seqs = sequences(args.data)
    for scale in args.scales:
        bands = qp_bands("fast", scale)
        if len(bands) != 1:
            raise SystemExit(f"error: x{scale}: this measures one shipped QP band, found {len(bands)}")
        (today, band_path), = bands.items()
        base_path = band_path.with_name(f"fast_x{scale}_compressed.pt")
        if args.band:
            band_path = args.band
        rows = measure(seqs, scale, args.crfs, _engine(base_path, scale), _engine(band_path, scale))
        out = args.out / f"qp_floor_x{scale}.csv"
        with open(out, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        print(f"x{scale}: {len(rows)} streams ({len(seqs)} sequences x {len(args.crfs)} CRFs); "
              f"band {band_path.name} against {base_path.name}")
        print(f"{'QP':>4} {'n':>4} {'base':>7} {'band':>7} {'band-base':>10}")
        for q in sorted({round(r["qp"]) for r in rows}):
            sel = [r for r in rows if round(r["qp"]) == q]
            b, d = np.mean([r["gain_base"] for r in sel]), np.mean([r["gain_band"] for r in sel])
            print(f"{q:>4} {len(sel):>4} {b:>+7.3f} {d:>+7.3f} {d - b:>+10.3f}")
        above = [r for r in rows if r["qp"] >= today]
        band_mean, base_mean = (np.mean([r[k] for r in above]) for k in ("gain_band", "gain_base"))
        print(f"streams at QP >= {today} (where the shipped band runs): {len(above)}, mean gain "
              f"{band_mean:+.4f} (band) {base_mean:+.4f} (base)")
        floor, means = choose_floor(rows, range(14, 31))
        print("mean routed gain by floor: " + ", ".join(f"{f}: {m:+.4f}" for f, m in means.items()))
        print(f"x{scale}: chosen floor {floor} (today {today}; "
              f"{means[floor] - means[today]:+.4f} dB mean over the streams)")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
