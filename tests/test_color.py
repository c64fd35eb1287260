"""One definition of Y: training, evaluation and inference agree."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
from conftest import gradient_rgb

from vsr.color import rgb_to_y, rgb_to_ycbcr, to_uint, ycbcr_to_rgb
from vsr.data.datasets import load_y
from vsr.io.decode import frame_to_yuv


def test_studio_swing_endpoints():
    black = np.zeros((1, 1, 3), np.uint8)
    white = np.full((1, 1, 3), 255, np.uint8)
    assert rgb_to_y(black)[0, 0] == 16.0
    assert abs(rgb_to_y(white)[0, 0] - 235.0) < 1e-9
    ycc = rgb_to_ycbcr(np.array([[[255, 0, 0]]], np.uint8))
    # MATLAB rgb2ycbcr([255 0 0]) = [81.481 90.203 240]
    np.testing.assert_allclose(ycc[0, 0], [81.481, 90.203, 240.0], atol=1e-3)


def test_round_trip_is_within_one_level():
    rgb = gradient_rgb(40, 50)
    back = to_uint(ycbcr_to_rgb(rgb_to_ycbcr(rgb)))
    assert np.abs(back.astype(int) - rgb.astype(int)).max() <= 1


def test_grey_equals_rgb_with_equal_channels():
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_allclose(rgb_to_y(grey), rgb_to_y(np.repeat(grey[:, :, None], 3, axis=2)))


def test_training_eval_and_inference_see_the_same_y(tmp_path: Path):
    rgb = gradient_rgb(48, 64)
    png = tmp_path / "img.png"
    cv2.imwrite(str(png), rgb[:, :, ::-1])
    train_y = load_y(png)  # what the dataset and `vsr eval` use

    # An RGB video frame, as the decoder hands it to the engine.
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    infer_y = frame_to_yuv(frame, 0).y

    # An RGB image through `vsr upscale`: same conversion as the decoder.
    image_y = to_uint(rgb_to_ycbcr(rgb))[:, :, 0]
    np.testing.assert_array_equal(train_y, infer_y)
    np.testing.assert_array_equal(train_y, image_y)
    assert train_y.min() >= 16 and train_y.max() <= 235
