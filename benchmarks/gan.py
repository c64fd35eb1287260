"""SRGAN against the PSNR-trained SRResNet: PSNR, SSIM and the detail ratio, and a side-by-side picture.

Usage: python benchmarks/gan.py [--set ../shared/data/Set14] [--scale 4] [--models bicubic srresnet srgan]
                                [--picture docs/srgan_x4_compare.png --image baboon.png --crop X,Y,W,H]

Each model runs on its shipped weights under the `vsr eval` protocol (MATLAB-bicubic LR, Y
BT.601, fp32, ``scale`` pixels shaved). The detail ratio is `vsr.metrics.detail_ratio`: the
output's high-frequency (Laplacian) energy over the HR image's; PSNR-trained nets sit well below 1,
and adversarial training should move it towards 1. Prints a Markdown table; the picture is
`vsr compare` of the same models on one image of the set.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.compare import compare  # noqa: E402
from pipelines.evaluate import evaluate_sets  # noqa: E402
from vsr.config import EngineConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", type=Path, default=ROOT.parent / "shared" / "data" / "Set14")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--models", nargs="+", default=["bicubic", "srresnet", "srgan"])
    ap.add_argument("--picture", type=Path, default=None)
    ap.add_argument("--image", default="baboon.png")
    ap.add_argument("--crop", default=None)
    args = ap.parse_args()
    if not args.set.is_dir():
        sys.exit(f"benchmarks/gan.py: no evaluation set at {args.set}")
    print(f"| model ({args.set.name} x{args.scale}) | PSNR-Y | SSIM-Y | detail ratio |")
    print("|---|---:|---:|---:|")
    for model in args.models:
        cfg = EngineConfig(model=model, scale=args.scale, device="cpu", dtype="fp32", runtime="torch")
        (result,), _ = evaluate_sets(cfg, [args.set])
        print(f"| {model} | {result.psnr:.3f} | {result.ssim:.4f} | {result.detail:.3f} |")
    if args.picture is not None:
        panels = compare(str(args.set / args.image), args.models, args.scale, args.picture, crop=args.crop)
        print("\n" + ", ".join(f"{p.label} {p.psnr:.2f} dB" if p.psnr else p.label for p in panels)
              + f" -> {args.picture}")


if __name__ == "__main__":
    main()
