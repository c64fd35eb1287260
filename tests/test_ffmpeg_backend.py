"""The ffmpeg-python backend gives the same frames as PyAV."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import shared

from cli import main
from vsr.io.decode import iter_frames
from vsr.io.ffmpeg_pipe import FfmpegReader, require_ffmpeg
from vsr.io.probe import MediaError

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg binary on PATH")


@needs_ffmpeg
@pytest.mark.parametrize("name", ["carphone_pristine.mp4", "realshort.mp4", "cockatoo.mp4"])
def test_decoders_agree(name: str):
    clip = shared("clips", name)
    pyav = iter_frames(clip)
    reader = FfmpegReader(clip)
    n = 0
    for a, b in zip(pyav, reader.frames(), strict=False):
        assert a.pix_fmt == b.pix_fmt
        for pa, pb in zip(a.planes, b.planes, strict=False):
            np.testing.assert_array_equal(pa, pb)
        assert a.pts == b.pts
        n += 1
        if n == 40:  # enough to cover B-frame reordering; keeps the 720p case short
            break
    assert n == 40 or n == len(list(iter_frames(clip)))


@needs_ffmpeg
def test_both_backends_write_the_same_frames(tmp_path: Path):
    clip = shared("clips", "realshort.mp4")
    outs = {}
    for backend in ("pyav", "ffmpeg"):
        dst = tmp_path / f"{backend}.mkv"
        res = CliRunner().invoke(main, ["upscale", str(clip), str(dst), "--model", "bicubic", "--backend", backend,
                                        "--crf", "0", "--preset", "ultrafast", "--quiet"])
        assert res.exit_code == 0, res.output
        outs[backend] = list(iter_frames(dst))
    assert len(outs["pyav"]) == len(outs["ffmpeg"]) == 36
    for a, b in zip(outs["pyav"], outs["ffmpeg"], strict=False):
        np.testing.assert_array_equal(a.y, b.y)  # libx264 crf 0 is lossless
        assert a.time == pytest.approx(b.time, abs=1e-3)


@needs_ffmpeg
def test_ffmpeg_backend_errors(tmp_path: Path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("nope")
    with pytest.raises(MediaError, match="not a readable video"):
        FfmpegReader(bad)


def test_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(MediaError, match="needs the ffmpeg and ffprobe binaries"):
        require_ffmpeg()


@needs_ffmpeg
def test_streams_the_container_cannot_take_are_transcoded_or_dropped(tmp_path: Path):
    """AAC into WebM and SubRip into MP4 are transcoded, bitmap-free; before, ffmpeg refused the header."""
    import json
    import subprocess

    import av

    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,800\nhello\n")
    src = tmp_path / "in.mkv"
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=1",
                    "-f", "lavfi", "-i", "sine=duration=1", "-i", str(srt), "-map", "0", "-map", "1", "-map", "2",
                    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-c:s", "srt", str(src)], check=True)
    # output extension: (the side streams as PyAV names them, how many were not copied)
    want = {".webm": ([("audio", "opus"), ("subtitle", "webvtt")], 2),
            ".mp4": ([("audio", "aac"), ("subtitle", "mov_text")], 1),
            ".mkv": ([("audio", "aac"), ("subtitle", "srt")], 0)}
    for ext, (streams, converted) in want.items():
        dst = tmp_path / f"out{ext}"
        res = CliRunner().invoke(main, ["upscale", str(src), str(dst), "--model", "bicubic", "--backend", "ffmpeg",
                                        "--preset", "ultrafast", "--quiet", "--no-ssim"])
        assert res.exit_code == 0, res.output
        with av.open(str(dst)) as c:
            assert [(s.type, s.codec_context.name) for s in c.streams if s.type != "video"] == streams
        notes = json.loads((tmp_path / f"out{ext}.summary.json").read_text())["streams"]
        assert len(notes) == converted and all(" transcoded to " in n for n in notes), notes
