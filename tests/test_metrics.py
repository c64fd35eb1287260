from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from vsr.metrics import detail_ratio, psnr, ssim


def test_identical_is_inf_and_one():
    a = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
    assert psnr(a, a) == math.inf
    assert ssim(a, a) == pytest.approx(1.0)


def test_known_mse():
    a = np.zeros((20, 20), np.uint8)
    b = np.full((20, 20), 5, np.uint8)  # MSE 25
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 25))
    want = 10 * math.log10(1023**2 / 25)
    assert psnr(a.astype(np.uint16), b.astype(np.uint16), data_range=1023) == pytest.approx(want)


def test_crop_border_is_respected():
    a = np.zeros((20, 20), np.uint8)
    b = a.copy()
    b[0, :] = 255
    assert psnr(a, b, crop_border=1) == math.inf
    assert psnr(a, b) < 30


def test_uint8_does_not_wrap():
    a = np.array([[0]], np.uint8)
    b = np.array([[255]], np.uint8)
    assert psnr(a, b) == pytest.approx(0.0)


def test_shape_mismatch_and_small_input():
    with pytest.raises(ValueError, match="shape mismatch"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="11x11"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))


def test_ssim_drops_with_noise():
    rng = np.random.default_rng(1)
    a = np.tile(np.linspace(40, 200, 64), (64, 1)).astype(np.uint8)
    noisy = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, noisy) < 0.95


def test_lr_consistency_window_equals_the_whole_frame_computation():
    """On the window, the bounded computation gives what degrading the whole output gives."""
    from pipelines.metrics import LR_WINDOW, _degrade_plane, lr_consistency
    from vsr.metrics import psnr

    rng = np.random.default_rng(0)
    for scale, degradation in ((2, "bicubic"), (3, "bicubic"), (2, "blur")):
        lr = rng.integers(16, 236, (LR_WINDOW + 90, LR_WINDOW + 130), dtype=np.uint8)
        sr = np.clip(cv2.resize(lr, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC).astype(int)
                     + rng.integers(-3, 4, (lr.shape[0] * scale, lr.shape[1] * scale)), 0, 255).astype(np.uint8)
        whole = _degrade_plane(sr, scale, degradation, 8)
        top, left = 45, 65
        window = (slice(top, top + LR_WINDOW), slice(left, left + LR_WINDOW))
        want = psnr(whole[window], lr[window])
        assert abs(lr_consistency(lr, sr, scale, degradation, 8) - want) < 1e-9
    tiny = np.full((1, 1), 100, np.uint8)
    assert math.isnan(lr_consistency(tiny, np.full((2, 2), 100, np.uint8), 3, "bicubic", 8))


def test_detail_ratio_falls_with_blur_and_rises_with_sharpening():
    rng = np.random.default_rng(1)
    ref = cv2.GaussianBlur(rng.integers(0, 256, (64, 80)).astype(np.uint8), (0, 0), 1.0)
    assert detail_ratio(ref, ref) == pytest.approx(1.0)
    blurred = cv2.GaussianBlur(ref, (0, 0), 1.2)
    sharpened = np.clip(ref * 2.0 - cv2.GaussianBlur(ref, (0, 0), 1.0), 0, 255).astype(np.uint8)
    assert detail_ratio(blurred, ref) < 0.5 < 1.5 < detail_ratio(sharpened, ref)
    assert math.isnan(detail_ratio(ref, np.full_like(ref, 7)))  # a flat reference has no detail to compare with
    with pytest.raises(ValueError, match="shape mismatch"):
        detail_ratio(ref, ref[:-1])
