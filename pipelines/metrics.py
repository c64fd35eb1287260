"""Per-frame quality measurements for the three modes of ``vsr upscale``.

- ``eval``: the input frame is the ground truth; the engine sees its
  degraded copy (:func:`vsr.degrade.degrade`) and the output is compared with
  the original, beside plain bicubic.
- ``reference``: the output is compared with the matching frame of a
  reference clip, beside bicubic of the input.
- ``plain``: LR consistency: the output downscaled back (same degradation)
  against the input.
All numbers come from :mod:`vsr.metrics` on the Y plane, in the plane's own
bit depth.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from vsr.color import to_uint
from vsr.degrade import degrade
from vsr.frames import YuvFrame, chroma_size, resize_plane
from vsr.metrics import psnr, ssim

__all__ = ["degrade_frame", "frame_metrics", "COLUMNS"]

COLUMNS = ("index", "pts", "time", "engine_ms", "psnr", "ssim", "psnr_bicubic", "ssim_bicubic", "lr_psnr")


def _degrade_plane(plane: np.ndarray, scale: int, kind: str, bits: int) -> np.ndarray:
    if plane.dtype == np.uint8:
        return degrade(plane, scale, kind)
    return to_uint(degrade(plane.astype(np.float64), scale, kind), bits)


def degrade_frame(frame: YuvFrame, scale: int, kind: str) -> tuple[YuvFrame, np.ndarray]:
    """(LR frame for the engine, ground-truth Y cropped to a multiple of ``scale``)."""
    h = frame.height - frame.height % scale
    w = frame.width - frame.width % scale
    if h < scale * 8 or w < scale * 8:
        raise ValueError(f"frame {frame.width}x{frame.height} is too small for --eval at x{scale}")
    bits = frame.info.bit_depth
    gt = frame.y[:h, :w]
    lr_y = _degrade_plane(gt, scale, kind, bits)
    cw, ch = chroma_size(lr_y.shape[1], lr_y.shape[0], frame.pix_fmt)
    chroma = tuple(resize_plane(p, cw, ch) for p in frame.planes[1:])
    return replace(frame, planes=(lr_y,) + chroma), gt


def frame_metrics(
    *, mode: str, lr_y: np.ndarray, sr_y: np.ndarray, bicubic_y: np.ndarray | None,
    target_y: np.ndarray | None, scale: int, bits: int, degradation: str, with_ssim: bool,
) -> dict[str, float]:
    """Metrics of one output frame (see module doc); NaN where a mode has none."""
    peak = float((1 << bits) - 1)
    row = {k: math.nan for k in ("psnr", "ssim", "psnr_bicubic", "ssim_bicubic", "lr_psnr")}
    if mode == "plain":
        h, w = (sr_y.shape[0] // scale) * scale, (sr_y.shape[1] // scale) * scale
        back = _degrade_plane(sr_y[:h, :w], scale, degradation, bits)
        ref = lr_y[: back.shape[0], : back.shape[1]]
        row["lr_psnr"] = psnr(back, ref, data_range=peak)
        return row
    assert target_y is not None and bicubic_y is not None
    h = min(sr_y.shape[0], target_y.shape[0])
    w = min(sr_y.shape[1], target_y.shape[1])
    if mode == "reference" and (sr_y.shape != target_y.shape):
        raise ValueError(f"reference frame is {target_y.shape[1]}x{target_y.shape[0]}, output is {sr_y.shape[1]}x{sr_y.shape[0]}")
    gt, sr, bic = target_y[:h, :w], sr_y[:h, :w], bicubic_y[:h, :w]
    border = scale
    row["psnr"] = psnr(sr, gt, crop_border=border, data_range=peak)
    row["psnr_bicubic"] = psnr(bic, gt, crop_border=border, data_range=peak)
    if with_ssim:
        row["ssim"] = ssim(sr, gt, crop_border=border, data_range=peak)
        row["ssim_bicubic"] = ssim(bic, gt, crop_border=border, data_range=peak)
    return row
