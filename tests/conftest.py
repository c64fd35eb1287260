"""Shared fixtures: small synthetic media made with PyAV/OpenCV, and the real data."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from pipelines.demo import mux_tone
from vsr.frames import YuvFrame

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CLIPS = SHARED / "clips"


def shared(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (expected ../shared/data beside the repo)")
    return path


def imread(path: str | Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """cv2.imread that fails the test, rather than returning None, when the file does not decode."""
    img = cv2.imread(str(path), flags)
    assert img is not None, f"cannot read {path}"
    return img


def frame_times(frames: Iterable[YuvFrame]) -> list[float]:
    """Each frame's presentation time in seconds; fails the test where a frame has none."""
    times = [f.time for f in frames]
    assert None not in times, "a frame without a timestamp"
    return [t for t in times if t is not None]


def gradient_rgb(h: int, w: int, t: int = 0) -> np.ndarray:
    """uint8 (h, w, 3) test picture: gradients plus a moving square, with detail."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack(
        [(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)), ((xx + yy) * 7 + t * 11) % 256], axis=-1
    ).astype(np.uint8)
    s = max(4, min(h, w) // 4)
    y0, x0 = (t * 3) % max(1, h - s), (t * 5) % max(1, w - s)
    img[y0 : y0 + s, x0 : x0 + s] = (255, 255, 255)
    img[(yy // 4 + xx // 4) % 2 == 0] //= 2  # checker detail so the models have something to do
    return img


def write_clip(path: Path, *, frames: int = 12, size: tuple[int, int] = (64, 48), codec: str = "libx264",
               pix_fmt: str = "yuv420p", rate: Fraction = Fraction(25), audio: bool = False,
               time_base: Fraction | None = None, pts_step: list[int] | None = None, crf: int = 10) -> Path:
    """A small synthetic clip; optional AAC tone and irregular timestamps."""
    w, h = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        if time_base is not None:
            vs.time_base = time_base
            vs.codec_context.time_base = time_base
        if codec == "libx264":
            vs.options = {"crf": str(crf), "preset": "ultrafast"}
        as_ = out.add_stream("aac", rate=16000) if audio else None
        if as_ is not None:
            as_.layout = "mono"
        pts = 0
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(gradient_rgb(h, w, i), format="rgb24").reformat(format=pix_fmt)
            if pts_step is not None:
                frame.pts = pts
                frame.time_base = time_base
                pts += pts_step[i % len(pts_step)]
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        if as_ is not None:
            n = int(16000 * frames / float(rate))
            mux_tone(out, as_, n, hz=440, amplitude=0.3)
    return path


def clip_prefix(src: Path, dst: Path, frames: int) -> Path:
    """The first `frames` decoded frames of `src`, re-encoded losslessly (FFV1, Matroska) with their timestamps.

    For tests that need real footage but not all of it: the pixels are the source's own decoded frames.
    """
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        ins = inp.streams.video[0]
        vs = out.add_stream("ffv1", rate=ins.average_rate)
        vs.width, vs.height, vs.pix_fmt = ins.codec_context.width, ins.codec_context.height, ins.codec_context.pix_fmt
        vs.time_base = ins.time_base
        for i, frame in enumerate(inp.decode(ins)):
            if i == frames:
                break
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return dst


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("media") / "tiny.mp4", audio=True)


@pytest.fixture(scope="session")
def frames_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("frames")
    for i in range(4):
        cv2.imwrite(str(folder / f"{i:03d}.png"), gradient_rgb(72, 80, i)[:, :, ::-1])
    return folder


@pytest.fixture(autouse=True)
def no_error_logs(caplog: pytest.LogCaptureFixture):
    """A test that logs an ERROR fails, unless it says it expects one."""
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert not errors, f"unexpected error logs: {[r.getMessage() for r in errors]}"


@pytest.fixture(autouse=True, scope="session")
def runtime_cache(tmp_path_factory: pytest.TempPathFactory):
    """The runtime choice cache of a test session lives in a temporary folder, never the user's home
    (set in the environment, so the CLI subprocesses share it)."""
    import os

    folder = tmp_path_factory.mktemp("vsr-cache")
    previous = os.environ.get("VSR_CACHE_DIR")
    os.environ["VSR_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("VSR_CACHE_DIR", None)
    else:
        os.environ["VSR_CACHE_DIR"] = previous
