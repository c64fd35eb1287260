"""PSNR, SSIM and the detail ratio: the one implementation used by training, eval and logs.

Both take two images of the same shape, compute in float64, shave
``crop_border`` pixels from every side first, and take an explicit peak
(``data_range``: 255 for 8-bit, 1023 for 10-bit). SSIM is Wang et al. 2004
with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, as in the
reference MATLAB code and BasicSR. Pure numpy + OpenCV for the filtering.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["detail_ratio", "psnr", "ssim"]


def _prepare(a: NDArray, b: NDArray, crop_border: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    if a.ndim != 2:
        raise ValueError(f"expected a single plane (H, W), got shape {a.shape}")
    if crop_border < 0:
        raise ValueError("crop_border must be >= 0")
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if a.size == 0:
        raise ValueError("nothing left after crop_border")
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a: NDArray, b: NDArray, *, crop_border: int = 0, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB between two planes (H, W) of code values.

    Returns ``inf`` for identical inputs.
    """
    x, y = _prepare(a, b, crop_border)
    mse = float(np.mean((x - y) ** 2))
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def ssim(a: NDArray, b: NDArray, *, crop_border: int = 0, data_range: float = 255.0) -> float:
    """Mean structural similarity between two planes (H, W); 1.0 for identical inputs."""
    x, y = _prepare(a, b, crop_border)
    if min(x.shape) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels, got {x.shape}")
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    g = cv2.getGaussianKernel(11, 1.5)
    window = g @ g.T

    def filt(img: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(cv2.filter2D(img, -1, window), np.float64)[5:-5, 5:-5]  # 'valid' region only

    mu_x, mu_y = filt(x), filt(y)
    sxx = filt(x * x) - mu_x**2
    syy = filt(y * y) - mu_y**2
    sxy = filt(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))


def detail_ratio(a: NDArray, ref: NDArray, *, crop_border: int = 0) -> float:
    """High-frequency energy of ``a`` over that of ``ref``: sum of squared 3x3 Laplacians, a ratio.

    A no-reference measure of restored detail (1: as much fine detail as the
    reference; bicubic and PSNR-trained nets sit below 1, over-sharpened output
    above). ``ref`` only sets the scale: the two are not compared pixel by pixel.
    """
    x, y = _prepare(a, ref, crop_border)
    lap_x = cv2.Laplacian(x, cv2.CV_64F, ksize=1)[1:-1, 1:-1]
    lap_y = cv2.Laplacian(y, cv2.CV_64F, ksize=1)[1:-1, 1:-1]
    energy_ref = float(np.sum(lap_y**2))
    return float(np.sum(lap_x**2)) / energy_ref if energy_ref > 0 else math.nan
