from __future__ import annotations

import numpy as np
import pytest
from conftest import shared

from vsr.degrade import blur_downscale, degrade, imresize
from vsr.io.images import read_rgb


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_matches_matlab_lr_images(scale: int):
    folder = shared("Set5_SelfExSR", f"image_SRF_{scale}")
    hrs = sorted(folder.glob("*_HR.png"))
    assert len(hrs) == 5
    for hr_path in hrs:
        hr = read_rgb(hr_path)
        lr_ref = read_rgb(hr_path.with_name(hr_path.name.replace("_HR", "_LR")))
        lr = imresize(hr, 1.0 / scale)
        assert lr.shape == lr_ref.shape
        diff = np.abs(lr.astype(int) - lr_ref.astype(int))[2:-2, 2:-2]
        assert (diff <= 1).mean() >= 0.99, hr_path.name


def test_float_and_uint8_agree_within_rounding():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (30, 42), dtype=np.uint8)
    a = imresize(img, 0.5)
    b = imresize(img.astype(np.float64), 0.5)
    assert a.shape == b.shape == (15, 21)
    assert b.dtype == np.float64
    assert np.abs(a - b).max() <= 1.0
    c = imresize(img.astype(np.uint16), 0.5)
    assert c.dtype == np.float32 and np.abs(c - b).max() < 1e-3


def test_constant_image_stays_constant():
    img = np.full((24, 24), 100, np.uint8)
    for kind in ("bicubic", "blur"):
        lr = degrade(img, 3, kind)
        assert lr.shape == (8, 8)
        assert (lr == 100).all()


def test_upscale_by_imresize_is_bigger():
    img = np.full((10, 12), 50.0)
    assert imresize(img, 2.0).shape == (20, 24)


def test_unknown_degradation():
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade(np.zeros((8, 8)), 2, "nearest")


def test_blur_shape():
    assert blur_downscale(np.zeros((33, 20)), 4).shape == (8, 5)
