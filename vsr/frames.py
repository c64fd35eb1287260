"""Planar YUV frames as numpy arrays, and the plane arithmetic on them.

A :class:`YuvFrame` holds one decoded picture as separate planes: ``y`` and,
unless the format is grey, ``u`` and ``v``, each ``(H, W)`` uint8 (8-bit
formats) or uint16 (10-bit formats, values in [0, 1023]). Chroma planes are
``ceil(H / sy), ceil(W / sx)`` for the format's subsampling ``(sx, sy)``.

Odd sizes rule: 4:2:0 needs even width and height, 4:2:2 an even width. When
an upscaled size would be odd for such a format (odd input size with x3), the
last row and/or column of the output is cropped (:func:`encodable_size`); the
lost line is at most 1/(3·H) of the picture. No av or torch imports here.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["FORMATS", "FormatInfo", "YuvFrame", "chroma_size", "encodable_size", "resize_plane", "temporal_windows",
           "window_order"]


@dataclass(frozen=True)
class FormatInfo:
    subsampling: tuple[int, int] | None  # (sx, sy); None for grey
    bit_depth: int
    full_range: bool = False


# The planar formats the engine works in. Everything else is converted to one
# of these at decode time (vsr.io.decode).
FORMATS: dict[str, FormatInfo] = {
    "yuv420p": FormatInfo((2, 2), 8),
    "yuv422p": FormatInfo((2, 1), 8),
    "yuv444p": FormatInfo((1, 1), 8),
    "yuvj420p": FormatInfo((2, 2), 8, True),
    "yuvj422p": FormatInfo((2, 1), 8, True),
    "yuvj444p": FormatInfo((1, 1), 8, True),
    "gray": FormatInfo(None, 8),
    "yuv420p10le": FormatInfo((2, 2), 10),
    "yuv422p10le": FormatInfo((2, 1), 10),
    "yuv444p10le": FormatInfo((1, 1), 10),
    "gray10le": FormatInfo(None, 10),
    # 16-bit still images (PNG, TIFF) after their RGB -> YCbCr conversion; no video decodes to these.
    "yuv444p16le": FormatInfo((1, 1), 16),
    "gray16le": FormatInfo(None, 16),
}


@dataclass(frozen=True)
class YuvFrame:
    """One picture: planes, format, and its timestamp (``pts`` in ``time_base`` units)."""

    planes: tuple[NDArray, ...]
    pix_fmt: str
    pts: int | None
    time_base: Fraction | None
    index: int
    rotation: int = 0  # display rotation, degrees counter-clockwise (container side data)
    # FFmpeg colour enums (primaries, transfer, matrix, range) of the planes as held here:
    # the decoder's tags, or BT.601 limited range after an RGB -> YCbCr conversion. None: unknown.
    color: tuple[int, int, int, int] | None = None

    @property
    def info(self) -> FormatInfo:
        return FORMATS[self.pix_fmt]

    @property
    def y(self) -> NDArray:
        return self.planes[0]

    @property
    def width(self) -> int:
        return self.planes[0].shape[1]

    @property
    def height(self) -> int:
        return self.planes[0].shape[0]

    @property
    def time(self) -> float | None:
        """Presentation time in seconds, or None when the stream gave none."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)


def encodable_size(width: int, height: int, pix_fmt: str) -> tuple[int, int]:
    """Largest size ≤ (width, height) that the format's chroma subsampling allows."""
    sub = FORMATS[pix_fmt].subsampling
    if sub is None:
        return width, height
    sx, sy = sub
    return width - width % sx, height - height % sy


def chroma_size(width: int, height: int, pix_fmt: str) -> tuple[int, int]:
    """(width, height) of each chroma plane for a picture of this size."""
    sx, sy = FORMATS[pix_fmt].subsampling or (1, 1)
    return -(-width // sx), -(-height // sy)


def resize_plane(plane: NDArray, width: int, height: int, bit_depth: int | None = None) -> NDArray:
    """Bicubic resize of one plane (uint8 or uint16) to (height, width), same dtype.

    OpenCV's bicubic (a = -0.75, half-pixel centres) rounds and saturates to
    the input dtype; overshoot past ``bit_depth``'s peak is clamped here.
    ``bit_depth`` None: 8 for uint8, 10 for uint16 (the video formats).
    """
    out = cv2.resize(plane, (width, height), interpolation=cv2.INTER_CUBIC)
    if plane.dtype == np.uint16:
        peak = (1 << (10 if bit_depth is None else bit_depth)) - 1
        if peak < 0xFFFF:
            np.minimum(out, peak, out=out)
    return out


def window_order(frames: int) -> tuple[int, ...]:
    """Time offsets of a multi-frame net's input channels: ``(0, -1, 1, -2, 2, ...)``, ``frames`` odd.

    The current frame comes first, so that a single-frame net embedded into a multi-frame one
    (zero weights on the new channels) still sees its own input in channel 0.
    """
    if frames < 1 or frames % 2 == 0:
        raise ValueError(f"frames must be odd and at least 1, got {frames}")
    return (0, *(d for k in range(1, frames // 2 + 1) for d in (-k, k)))


def temporal_windows(planes: NDArray, frames: int) -> NDArray:
    """``(T, H, W)`` consecutive planes → ``(T, frames, H, W)`` windows in :func:`window_order`.

    At the ends of the sequence the missing neighbours repeat the first or last plane (a still
    scene), so every plane gets a window; same dtype as the input.
    """
    n = planes.shape[0]
    index = np.clip(np.arange(n)[:, None] + np.array(window_order(frames))[None, :], 0, n - 1)
    return planes[index]
