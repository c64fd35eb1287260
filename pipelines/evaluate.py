"""``vsr eval``: a model on benchmark image folders, with bicubic beside it.

Convention in :mod:`vsr.evaluate`. Two bicubic baselines are reported:
``bicubic`` is the engine's own (a = -0.75, what ``--model bicubic`` and the
residual models use), ``bicubic_matlab`` is MATLAB ``imresize`` upsampling,
the baseline papers quote (Set5 x2: 33.66 dB), so our figures can be checked
against the literature's.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vsr.config import EngineConfig
from vsr.degrade import degrade, imresize
from vsr.engine import EngineInfo, build_engine
from vsr.evaluate import evaluate_images, summarize
from vsr.io.atomic import atomic_output, write_text_atomic
from vsr.io.images import list_images, load_y
from vsr.metrics import psnr

__all__ = ["SetResult", "evaluate_sets", "format_table", "write_results"]


@dataclass(frozen=True)
class SetResult:
    name: str
    images: int
    psnr: float
    ssim: float
    psnr_bicubic: float
    ssim_bicubic: float
    psnr_bicubic_matlab: float
    detail: float  # high-frequency energy of the output over HR's (vsr.metrics.detail_ratio)
    per_image: list[dict]


def _matlab_bicubic_psnr(paths: list[Path], scale: int) -> list[float]:
    out = []
    for path in paths:
        hr = load_y(path)
        hr = hr[: hr.shape[0] - hr.shape[0] % scale, : hr.shape[1] - hr.shape[1] % scale]
        up = imresize(degrade(hr, scale, "bicubic"), float(scale))
        out.append(psnr(up, hr, crop_border=scale))
    return out


def evaluate_sets(
    cfg: EngineConfig, folders: list[Path], *, with_ssim: bool = True,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[SetResult], EngineInfo]:
    """Evaluate the engine described by ``cfg`` on each folder (one benchmark set each)."""
    engine, info = build_engine(cfg)
    scale = engine.total_scale
    results = []
    for folder in folders:
        paths = list_images([folder])
        if not paths:
            raise ValueError(f"no images in {folder}")
        if progress:
            progress(folder.name)
        bic = lambda y: engine.bicubic_y(y)  # noqa: E731 (one-line adapter)
        scores = evaluate_images(engine.upscale_y, bic, paths, scale, with_ssim=with_ssim)
        matlab = _matlab_bicubic_psnr(paths, scale)
        mean = summarize(scores)
        per_image = [dict(asdict(s), psnr_bicubic_matlab=m) for s, m in zip(scores, matlab, strict=True)]
        results.append(SetResult(name=folder.name, images=len(paths), psnr_bicubic_matlab=float(np.mean(matlab)),
                                 per_image=per_image, **mean))
    return results, info


def format_table(results: list[SetResult], info: EngineInfo) -> str:
    label = f"{info.model} x{info.total_scale}"
    if info.ensemble > 1:  # the "+" of EDSR+: self-ensemble
        label += f" +{info.ensemble}"
    lines = [f"{'set':<10} {'images':>6} {label:>14} {'SSIM':>7} {'bicubic':>8} {'SSIM':>7} {'bic(MATLAB)':>11} "
             f"{'detail':>6}"]
    for r in results:
        lines.append(
            f"{r.name:<10} {r.images:>6} {r.psnr:>14.3f} {r.ssim:>7.4f} {r.psnr_bicubic:>8.3f} "
            f"{r.ssim_bicubic:>7.4f} {r.psnr_bicubic_matlab:>11.3f} {r.detail:>6.3f}"
        )
    return "\n".join(lines)


def write_results(results: list[SetResult], info: EngineInfo, out: Path) -> tuple[Path, Path]:
    """``out.csv`` (one row per image) and ``out.json`` (means and engine info)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out.with_suffix(".csv"), out.with_suffix(".json")
    with atomic_output(csv_path) as part, open(part, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["set", "image", "psnr", "ssim", "psnr_bicubic", "ssim_bicubic", "psnr_bicubic_matlab", "detail"])
        for r in results:
            for row in r.per_image:
                w.writerow([r.name, row["name"]] + [
                    "" if math.isnan(row[k]) else f"{row[k]:.4f}"
                    for k in ("psnr", "ssim", "psnr_bicubic", "ssim_bicubic", "psnr_bicubic_matlab", "detail")])
    sets = [{k: v for k, v in asdict(r).items() if k != "per_image"} for r in results]
    payload = {"engine": asdict(info), "sets": sets}
    write_text_atomic(json_path, json.dumps(payload, indent=2, default=str) + "\n")
    return csv_path, json_path
