"""Benchmark evaluation on image folders, the convention SR papers report.

HR is cropped to a multiple of the scale; its Y (BT.601 studio swing, rounded
to 8 bits, :func:`vsr.data.datasets.load_y`) is downscaled with the
MATLAB-compatible bicubic and rounded; the engine upscales that LR plane;
PSNR and SSIM are computed on Y in float64 with ``scale`` pixels shaved from
each border. Training validation calls this same function.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from vsr.degrade import degrade
from vsr.io.images import list_images, load_y
from vsr.metrics import detail_ratio, psnr, ssim

__all__ = ["ImageScore", "evaluate_images", "summarize"]

UpscaleFn = Callable[[NDArray[np.uint8]], NDArray[np.uint8]]  # (N, h, w) → (N, sh, sw)


@dataclass(frozen=True)
class ImageScore:
    name: str
    psnr: float
    ssim: float
    psnr_bicubic: float
    ssim_bicubic: float
    detail: float = math.nan  # vsr.metrics.detail_ratio of the output against HR


def evaluate_images(
    upscale: UpscaleFn,
    bicubic: UpscaleFn | None,
    images: Sequence[Path] | Path,
    scale: int,
    *,
    degradation: str = "bicubic",
    with_ssim: bool = True,
) -> list[ImageScore]:
    """Score ``upscale`` (and ``bicubic`` beside it, if given) on each image."""
    paths = list_images([images]) if isinstance(images, (str, Path)) else list(images)
    scores = []
    for path in paths:
        hr = load_y(path)
        hr = hr[: hr.shape[0] - hr.shape[0] % scale, : hr.shape[1] - hr.shape[1] % scale]
        lr = degrade(hr, scale, degradation)
        sr = upscale(lr[None])[0]
        base = bicubic(lr[None])[0] if bicubic is not None else None
        nan = math.nan
        scores.append(
            ImageScore(
                name=Path(path).name,
                psnr=psnr(sr, hr, crop_border=scale),
                ssim=ssim(sr, hr, crop_border=scale) if with_ssim else nan,
                psnr_bicubic=psnr(base, hr, crop_border=scale) if base is not None else nan,
                ssim_bicubic=ssim(base, hr, crop_border=scale) if base is not None and with_ssim else nan,
                detail=detail_ratio(sr, hr, crop_border=scale),
            )
        )
    return scores


def summarize(scores: Sequence[ImageScore]) -> dict[str, float]:
    """Means over images of every metric."""
    return {
        key: float(np.mean([getattr(s, key) for s in scores]))
        for key in ("psnr", "ssim", "psnr_bicubic", "ssim_bicubic", "detail")
    }
