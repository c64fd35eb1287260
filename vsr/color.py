"""Colour conversion: the one place where RGB meets YCbCr.

Convention (the SR benchmark one): BT.601 matrix, studio swing, so Y is in
[16, 235] and Cb/Cr in [16, 240] for 8-bit data. This is what MATLAB's
``rgb2ycbcr`` computes and what SR papers evaluate on. Video frames are never
converted: their own luma plane is used as it is. RGB images, RGB video
codecs and training images go through :func:`rgb_to_ycbcr`, so that the Y the
model is trained on and the Y it sees at inference are the same quantity.

Pure numpy; no torch, no av.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["grey_to_y8", "rgb_to_y", "rgb_to_ycbcr", "studio_y_range", "to_uint", "y8_to_grey", "y_to_grey",
           "ycbcr_to_rgb"]

# Rows give Y, Cb, Cr from R, G, B in [0, 1]; offsets in 8-bit code values.
# Source: ITU-R BT.601 with studio-swing scaling, as in MATLAB rgb2ycbcr.
_BT601_STUDIO = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ],
    dtype=np.float64,
)
_OFFSET = np.array([16.0, 128.0, 128.0])


def studio_y_range(bit_depth: int = 8) -> tuple[int, int]:
    """Studio-swing Y code values at ``bit_depth``: (16, 235) at 8 bits, (64, 940) at 10.

    Every Y the models are trained on lies in this range; real video luma can stray below
    and above it (superblack, superwhite, full-range streams).
    """
    shift = bit_depth - 8
    return 16 << shift, 235 << shift


def to_uint(x: NDArray[np.floating], bit_depth: int = 8) -> NDArray[np.unsignedinteger]:
    """Round and clamp float code values to unsigned integers.

    ``x``: float, code values in ``[0, 2**bit_depth - 1]`` (any shape). Returns
    uint8 for 8 bits, uint16 above. Every float→integer step outside the
    engine's tensors goes through here.
    """
    peak = (1 << bit_depth) - 1
    dtype = np.uint8 if bit_depth <= 8 else np.uint16
    return np.clip(np.rint(x), 0, peak).astype(dtype)


def _code_scale(bit_depth: int) -> float:
    # Studio-swing code values at n bits are the 8-bit ones times 2**(n - 8) (BT.601 / BT.709);
    # full-range RGB peaks at 2**n - 1.
    return float(1 << (bit_depth - 8))


def rgb_to_ycbcr(rgb: NDArray[np.unsignedinteger], bit_depth: int = 8) -> NDArray[np.float64]:
    """RGB → YCbCr, BT.601 studio swing.

    ``rgb``: (H, W, 3) RGB order, uint8 [0, 255] (or uint16 [0, 65535] at ``bit_depth`` 16).
    Returns float64 (H, W, 3) with Y in [16, 235] and Cb/Cr in [16, 240] (unrounded; times
    2**(bit_depth - 8) above 8 bits).
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) RGB, got shape {rgb.shape}")
    x = rgb.astype(np.float64) / float((1 << bit_depth) - 1)
    ycc = x @ _BT601_STUDIO.T + _OFFSET
    return ycc if bit_depth == 8 else ycc * _code_scale(bit_depth)


def rgb_to_y(rgb: NDArray[np.unsignedinteger], bit_depth: int = 8) -> NDArray[np.float64]:
    """Luma only, same convention as :func:`rgb_to_ycbcr`.

    ``rgb``: uint8 [0, 255] (uint16 [0, 65535] at ``bit_depth`` 16), (H, W, 3) RGB, or (H, W)
    grey (taken as R=G=B). Returns float64 (H, W) in [16, 235] (times 2**(bit_depth - 8)).
    """
    peak = float((1 << bit_depth) - 1)
    if rgb.ndim == 2:
        y = rgb.astype(np.float64) * (_BT601_STUDIO[0].sum() / peak) + 16.0
    else:
        y = (rgb.astype(np.float64) / peak) @ _BT601_STUDIO[0] + 16.0
    return y if bit_depth == 8 else y * _code_scale(bit_depth)


def y_to_grey(y: NDArray[np.floating | np.unsignedinteger], bit_depth: int = 8) -> NDArray[np.float64]:
    """Inverse of :func:`rgb_to_y` on a grey image: studio-swing Y code values (H, W) →
    float64 grey levels (H, W) in [0, 2**bit_depth - 1] before rounding."""
    peak = float((1 << bit_depth) - 1)
    return (y.astype(np.float64) / _code_scale(bit_depth) - 16.0) * (peak / _BT601_STUDIO[0].sum())


_CODES = np.arange(256, dtype=np.uint8)


def grey_to_y8(grey: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """uint8 grey levels (any shape) → uint8 studio-swing Y, rounded: :func:`rgb_to_y` through a
    256-entry table (no float copy of a large image)."""
    return to_uint(rgb_to_y(_CODES[None]))[0][grey]


def y8_to_grey(y: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """uint8 studio-swing Y (any shape) → uint8 grey levels, rounded and clamped: :func:`y_to_grey`
    through a 256-entry table."""
    return to_uint(y_to_grey(_CODES))[y]


def ycbcr_to_rgb(ycbcr: NDArray[np.floating | np.unsignedinteger], bit_depth: int = 8) -> NDArray[np.float64]:
    """Inverse of :func:`rgb_to_ycbcr`.

    ``ycbcr``: (H, W, 3) code values at ``bit_depth`` (integer or float). Returns float64 RGB
    (H, W, 3) in [0, 2**bit_depth - 1] before rounding (may fall slightly outside).
    """
    inv = np.linalg.inv(_BT601_STUDIO)
    peak = float((1 << bit_depth) - 1)
    return (ycbcr.astype(np.float64) / _code_scale(bit_depth) - _OFFSET) @ inv.T * peak
