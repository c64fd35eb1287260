"""`vsr compare`: a labelled side-by-side picture whose panels differ where the models do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import imread, shared

from cli import main


def _run(*args: str):
    return CliRunner().invoke(main, ["compare", *args])


def test_image_panels(tmp_path: Path):
    out = tmp_path / "c.png"
    res = _run(str(shared("Set14", "zebra.png")), "--models", "bicubic,espcn", "--scale", "2",
               "--crop", "100,60,120,90", "-o", str(out))
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    bic, esp = (float(ln.split()[-2]) for ln in lines[:2])
    assert esp > bic + 1.0  # each panel's PSNR, and the model's is higher
    sheet = imread(str(out))
    zoom = -(-256 // 90)  # crops under 256 px are enlarged by a whole factor
    assert sheet.shape == (90 * zoom + 28, 3 * (120 * zoom + 4), 3)  # bicubic, espcn, original
    w = 120 * zoom + 4
    a, b, c = (sheet[28:, i * w : i * w + 120 * zoom].astype(int) for i in range(3))
    assert np.abs(a - b).mean() > 1.0 and np.abs(b - c).mean() > 0.5  # the panels differ where the models do


def test_clip_frame_and_as_lr(tmp_path: Path):
    clip = shared("clips", "carphone_pristine.mp4")
    out = tmp_path / "c.png"
    res = _run(f"{clip}:30", "--models", "bicubic,espcn", "--as-lr", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert "PSNR" not in res.output  # no reference: no PSNR
    sheet = imread(str(out))
    assert sheet.shape[1] == 2 * (192 * 2 + 4)  # two panels of the central 192 px crop, zoomed x2


@pytest.mark.parametrize(("args", "words"), [
    (["--models", "bicubic,nosuchmodel"], "unknown model"),
    (["--models", "bicubic", "--crop", "5000,0,10,10"], "outside"),
    (["--models", "bicubic", "--crop", "1,2,3"], "X,Y,W,H"),
])
def test_bad_compare_input(tmp_path: Path, args: list[str], words: str):
    out = tmp_path / "c.png"
    res = _run(str(shared("Set5", "bird.png")), *args, "-o", str(out))
    assert res.exit_code != 0 and words in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_frame_past_the_end(tmp_path: Path):
    clip = shared("clips", "realshort.mp4")
    res = _run(f"{clip}:999", "--models", "bicubic", "-o", str(tmp_path / "c.png"))
    assert res.exit_code != 0 and "has no frame 999 (it has 36 frames)" in res.output, res.output
