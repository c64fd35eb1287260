"""--eval-crf: the LR goes through a real encoder, deterministically, and really loses detail."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import imread, shared

from cli import main
from vsr.frames import YuvFrame
from vsr.io.decode import iter_frames
from vsr.io.probe import MediaError
from vsr.io.recompress import Recompressor, check_recompress, h264_roundtrip_sequence
from vsr.metrics import psnr


def _frames(n: int = 8):
    return [f for _, f in zip(range(n), iter_frames(shared("clips", "carphone_pristine.mp4")), strict=False)]


def test_h264_round_trip_is_deterministic_and_lossy():
    frames = _frames()
    outs = []
    for _ in range(2):
        rc = Recompressor(frames[0].width, frames[0].height, frames[0].pix_fmt, crf=33)
        outs.append([rc(f) for f in frames])
    for a, b, clean in zip(*outs, frames, strict=False):
        assert all(np.array_equal(x, y) for x, y in zip(a.planes, b.planes, strict=False))  # same input, same LR
        assert a.y.shape == clean.y.shape and a.pts == clean.pts
    drop = np.mean([psnr(a.y, clean.y) for a, clean in zip(outs[0], frames, strict=False)])
    assert 25 < drop < 40  # real blocking at CRF 33, not a copy
    light = Recompressor(frames[0].width, frames[0].height, frames[0].pix_fmt, crf=10)
    assert np.mean([psnr(light(f).y, f.y) for f in frames]) > drop + 5  # the CRF controls the loss


def test_patch_round_trip_single_thread_matches_default_threads():
    # Training codes its patches with one codec thread (cheap to start); that must not change the LR.
    y = imread(shared("Set14", "barbara.png"))[..., 1]
    rng = np.random.default_rng(5)
    for size, crf, n in [(48, 24, 1), (48, 34, 2), (24, 40, 1), (96, 18, 3), (47, 28, 1)]:
        y0, x0 = rng.integers(0, y.shape[0] - size - 4), rng.integers(0, y.shape[1] - size - 4)
        planes = [np.ascontiguousarray(y[y0 + k : y0 + k + size, x0 + k : x0 + k + size]) for k in range(n)]
        fast = h264_roundtrip_sequence(planes, crf)
        h, w = planes[0].shape
        ph, pw = h + h % 2, w + w % 2
        grey = np.full((ph // 2, pw // 2), 128, np.uint8)
        rc = Recompressor(pw, ph, "yuv420p", crf=crf)  # the codecs' own threading
        for i, (plane, got) in enumerate(zip(planes, fast, strict=True)):
            padded = np.pad(plane, ((0, h % 2), (0, w % 2)), mode="edge")
            ref = rc(YuvFrame((padded, grey, grey), "yuv420p", i, Fraction(1, 25), 0)).y[:h, :w]
            assert np.array_equal(got, ref), (size, crf, i)
        assert psnr(fast[-1], planes[-1]) < 60  # really coded, not passed through


def test_bad_recompress_options():
    with pytest.raises(MediaError, match=r"outside libx264's range 0\.\.51"):
        check_recompress("libx264", 52)
    with pytest.raises(MediaError, match="not supported"):
        check_recompress("mpeg4", 20)


def test_eval_crf_end_to_end(tmp_path: Path):
    src = shared("clips", "carphone_pristine.mp4")
    gains = {}
    for crf in (None, 33):
        dst = tmp_path / f"{crf}.mp4"
        args = ["upscale", str(src), str(dst), "--eval", "--model", "espcn", "--quiet", "--no-ssim",
                "--preset", "ultrafast"] + ([] if crf is None else ["--eval-crf", str(crf)])
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
        summary = json.loads(Path(str(dst) + ".summary.json").read_text())
        gains[crf] = summary["means"]["psnr"] - summary["means"]["psnr_bicubic"]
        picture = imread(str(dst) + ".psnr.png")  # the per-frame PSNR plot beside the CSV
        assert picture is not None and picture.shape == (480, 640, 3)
        assert (picture != 255).any(axis=2).mean() > 0.02  # lines and axes, not a blank page
        assert summary.get("eval_compression") == (None if crf is None else {"codec": "libx264", "crf": 33})
    assert gains[33] < gains[None] - 1.0  # compression takes most of a clean-trained model's gain
    plain = tmp_path / "plain.mp4"
    res = CliRunner().invoke(main, ["upscale", str(src), str(plain), "--model", "bicubic", "--quiet",
                                    "--preset", "ultrafast"])
    assert res.exit_code == 0 and not Path(str(plain) + ".psnr.png").exists()  # no reference, no plot
