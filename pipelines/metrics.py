"""Per-frame quality measurements for the three modes of ``vsr upscale``.

- ``eval``: the input frame is the ground truth; the engine sees its
  degraded copy (:func:`vsr.degrade.degrade`) and the output is compared with
  the original, beside plain bicubic.
- ``reference``: the output is compared with the matching frame of a
  reference clip, beside bicubic of the input.
- ``plain``: LR consistency: the output downscaled back (same degradation)
  against the input, on a central window of bounded size (:func:`lr_consistency`).
All numbers come from :mod:`vsr.metrics` on the Y plane, in the plane's own
bit depth.
"""

from __future__ import annotations

import math
from dataclasses import replace
from enum import Enum

import numpy as np

from vsr.color import to_uint
from vsr.degrade import degrade
from vsr.frames import YuvFrame, chroma_size, resize_plane
from vsr.metrics import psnr, ssim

__all__ = ["COLUMNS", "Mode", "degrade_frame", "frame_metrics", "mode_of"]


class Mode(str, Enum):
    """What each output frame is compared with in the per-frame log (the value is the summary's ``mode``)."""

    PLAIN = "plain"  # nothing: the LR consistency of the output alone
    EVAL = "eval"  # the input itself; the engine upscales its degraded copy
    REFERENCE = "reference"  # a reference clip or image given beside the input


def mode_of(eval_: bool, reference: object | None) -> Mode:
    """The mode of ``--eval`` / ``--reference`` (the config refuses both at once)."""
    return Mode.EVAL if eval_ else Mode.REFERENCE if reference is not None else Mode.PLAIN

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
    chroma = tuple(resize_plane(p, cw, ch, bits) for p in frame.planes[1:])
    return replace(frame, planes=(lr_y, *chroma)), gt


LR_WINDOW = 256  # LR pixels per side of the region LR consistency is measured on
_MARGIN = 4  # LR pixels of context: covers the antialiased bicubic's support (2 LR px) and the blur's


def lr_consistency(lr_y: np.ndarray, sr_y: np.ndarray, scale: int, degradation: str, bits: int) -> float:
    """PSNR of the output degraded back against the input, on the central ``LR_WINDOW`` square.

    The degradation runs on that window plus a margin of real context, so the value equals the
    whole-frame computation's on the window, at a cost (and memory) bounded whatever the frame
    size. Frames up to the window size are measured whole. NaN when nothing is left to compare.
    """
    lh = min(lr_y.shape[0], sr_y.shape[0] // scale)
    lw = min(lr_y.shape[1], sr_y.shape[1] // scale)
    if lh < 1 or lw < 1:
        return math.nan
    ch, cw = min(LR_WINDOW, lh), min(LR_WINDOW, lw)
    top, left = (lh - ch) // 2, (lw - cw) // 2
    t0, l0 = max(top - _MARGIN, 0), max(left - _MARGIN, 0)
    t1, l1 = min(top + ch + _MARGIN, lh), min(left + cw + _MARGIN, lw)
    back = _degrade_plane(sr_y[t0 * scale : t1 * scale, l0 * scale : l1 * scale], scale, degradation, bits)
    back = back[top - t0 : top - t0 + ch, left - l0 : left - l0 + cw]
    ref = lr_y[top : top + ch, left : left + cw]
    return psnr(back, ref, data_range=float((1 << bits) - 1))


def frame_metrics(
    *, mode: Mode, lr_y: np.ndarray, sr_y: np.ndarray, bicubic_y: np.ndarray | None,
    target_y: np.ndarray | None, scale: int, bits: int, degradation: str, with_ssim: bool,
) -> dict[str, float]:
    """Metrics of one output frame (see module doc); NaN where a mode has none."""
    peak = float((1 << bits) - 1)
    row = {k: math.nan for k in ("psnr", "ssim", "psnr_bicubic", "ssim_bicubic", "lr_psnr")}
    if mode is Mode.PLAIN:
        row["lr_psnr"] = lr_consistency(lr_y, sr_y, scale, degradation, bits)
        return row
    assert target_y is not None and bicubic_y is not None
    h = min(sr_y.shape[0], target_y.shape[0])
    w = min(sr_y.shape[1], target_y.shape[1])
    if mode is Mode.REFERENCE and (sr_y.shape != target_y.shape):
        raise ValueError(f"reference frame is {target_y.shape[1]}x{target_y.shape[0]}, "
                         f"output is {sr_y.shape[1]}x{sr_y.shape[0]}")
    gt, sr, bic = target_y[:h, :w], sr_y[:h, :w], bicubic_y[:h, :w]
    border = scale
    row["psnr"] = psnr(sr, gt, crop_border=border, data_range=peak)
    row["psnr_bicubic"] = psnr(bic, gt, crop_border=border, data_range=peak)
    if with_ssim:
        row["ssim"] = ssim(sr, gt, crop_border=border, data_range=peak)
        row["ssim_bicubic"] = ssim(bic, gt, crop_border=border, data_range=peak)
    return row
