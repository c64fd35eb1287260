"""One definition of Y: training, evaluation and inference agree."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
from conftest import gradient_rgb, imread

from vsr.color import rgb_to_y, rgb_to_ycbcr, to_uint, ycbcr_to_rgb
from vsr.io.decode import frame_to_yuv
from vsr.io.images import load_y


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


def test_grey_images_reach_the_engine_as_studio_y_like_rgb_ones(tmp_path):
    """A grey PNG and the same picture saved as RGB (R = G = B) give the same upscaled picture:
    both go through vsr.color's BT.601 studio Y, as training and `vsr eval` map grey images."""
    import cv2
    from click.testing import CliRunner
    from conftest import shared

    from cli import main

    grey = imread(str(shared("Set5", "bird.png")), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    cv2.imwrite(str(tmp_path / "rgb.png"), cv2.merge([grey, grey, grey]))
    outs = {}
    for name in ("grey", "rgb"):
        res = CliRunner().invoke(main, ["upscale", str(tmp_path / f"{name}.png"), str(tmp_path / f"{name}_x2.png"),
                                        "--model", "fast", "--runtime", "torch", "--dtype", "fp32", "--quiet"])
        assert res.exit_code == 0, res.output
        outs[name] = imread(str(tmp_path / f"{name}_x2.png"), cv2.IMREAD_UNCHANGED)
    assert outs["grey"].ndim == 2 and outs["rgb"].ndim == 3
    diff = np.abs(outs["grey"].astype(int) - outs["rgb"][:, :, 1].astype(int))
    assert diff.max() <= 1
    # and the grey levels are not shifted: the mean level survives the round trip
    assert abs(float(outs["grey"].mean()) - float(grey.mean())) < 1.0


def test_sixteen_bit_code_values_are_the_eight_bit_ones_times_256():
    rng = np.random.default_rng(5)
    rgb8 = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    rgb16 = rgb8.astype(np.uint16) * np.uint16(257)  # 255 -> 65535: the same picture at 16 bits
    np.testing.assert_allclose(rgb_to_ycbcr(rgb16, 16), rgb_to_ycbcr(rgb8) * 256, atol=1e-9)
    np.testing.assert_allclose(rgb_to_y(rgb16[:, :, 0], 16), rgb_to_y(rgb8[:, :, 0]) * 256, atol=1e-9)
    back = to_uint(ycbcr_to_rgb(to_uint(rgb_to_ycbcr(rgb16, 16), 16), 16), 16)
    # 16-bit planes keep what 8-bit ones round away: the round trip is within 2 of 65535 levels
    assert np.abs(back.astype(np.int64) - rgb16).max() <= 2
    assert rgb_to_y(np.full((1, 1, 3), 65535, np.uint16), 16)[0, 0] == 235 * 256
