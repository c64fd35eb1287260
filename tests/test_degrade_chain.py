"""The training degradation chain: deterministic per seed, recorded, and H.264 really blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import shared

from vsr.data import FrameFolderDataset
from vsr.degrade import degrade
from vsr.degrade_chain import parse_chain
from vsr.io.images import load_y
from vsr.metrics import psnr

CHAIN = "blur:1:0.3-1,bicubic,noise:1:2-4,jpeg:1:50-80,h264:1:28-33"


def _hr() -> np.ndarray:
    return load_y(shared("Set14", "baboon.png"))[:96, :96]


@pytest.mark.parametrize("step", ["blur:1:0.5-1.0,bicubic", "bicubic,noise:1:3-5", "bicubic,jpeg:1:30-60",
                                  "bicubic,h264:1:30-35", "bicubic,h264p:1:26-30", CHAIN])
def test_each_step_is_a_function_of_the_seed(step: str):
    chain = parse_chain(step)
    hr = _hr()
    runs = [chain.corrupt(chain.downscale(hr, 2, np.random.default_rng(7)), np.random.default_rng(8))
            for _ in range(2)]
    assert runs[0].shape == (48, 48) and runs[0].dtype == np.uint8
    assert np.array_equal(runs[0], runs[1])  # same seed, same LR
    other = chain.corrupt(chain.downscale(hr, 2, np.random.default_rng(1)), np.random.default_rng(2))
    assert not np.array_equal(runs[0], other)  # the seed matters
    assert not np.array_equal(runs[0], degrade(hr, 2, "bicubic"))  # the step did something


def test_h264_step_blocks():
    clean = degrade(load_y(shared("Set14", "baboon.png"))[:192, :192], 2, "bicubic")
    coded = parse_chain("bicubic,h264:1:35-35").corrupt(clean, np.random.default_rng(0))
    light = parse_chain("bicubic,h264:1:12-12").corrupt(clean, np.random.default_rng(0))
    assert psnr(coded, clean) < 32 and psnr(light, clean) > psnr(coded, clean) + 6


def test_h264p_step_is_a_coarser_p_frame():
    """A P-frame at one CRF loses more than the intra frame at that CRF (x264's I/P QP offset)."""
    clean = degrade(load_y(shared("Set14", "baboon.png"))[:192, :192], 2, "bicubic")
    intra = parse_chain("bicubic,h264:1:28-28").corrupt(clean, np.random.default_rng(0))
    pframe = parse_chain("bicubic,h264p:1:28-28").corrupt(clean, np.random.default_rng(0))
    assert pframe.shape == clean.shape and pframe.dtype == np.uint8
    assert psnr(pframe, clean) < psnr(intra, clean) - 0.3


def test_clean_names_and_bad_specs():
    assert parse_chain("bicubic").clean and parse_chain("blur").clean
    assert parse_chain(CHAIN).text() == CHAIN
    for spec, words in (("jpeg:1:50-80", "exactly one downscale"), ("bicubic,noise:1:5-2", "empty parameter range"),
                        ("bicubic,jpeg:2:50-80", "outside 0..1"), ("bicubic,h264:1:18-60", "must lie in"),
                        ("bicubic,blur:1:1-2", "goes before"), ("bicubic,sharpen:1:1-2", "NAME one of")):
        with pytest.raises(ValueError, match=words):
            parse_chain(spec)


def test_dataset_uses_and_records_the_chain(frames_dir: Path):
    ds = FrameFolderDataset([frames_dir], scale=2, patch_size=32, degradation=CHAIN)
    a, _ = ds[(0, 5)]
    b, _ = ds[(0, 5)]
    clean, hr = FrameFolderDataset([frames_dir], scale=2, patch_size=32)[(0, 5)]
    assert (a == b).all() and not (a == clean).all()
    assert a.shape == clean.shape == (1, 1, 16, 16) and hr.shape == (1, 1, 32, 32)
    from vsr.config import TrainConfig

    with pytest.raises(ValueError, match="empty parameter range"):
        TrainConfig(model="fast", scale=2, data=(frames_dir,), out=frames_dir, degradation="bicubic,noise:1:5-1")
