from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import frame_times, gradient_rgb, write_clip

from vsr.config import EncodeConfig
from vsr.frames import YuvFrame, chroma_size, encodable_size
from vsr.io.atomic import PendingOutput, atomic_output, part_path
from vsr.io.decode import frame_to_yuv, iter_frames
from vsr.io.encode import ClipWriter
from vsr.io.probe import MediaError, open_input, probe


def test_io_does_not_import_torch():
    code = ("import sys, vsr.io.decode, vsr.io.encode, vsr.io.probe, vsr.frames, vsr.color; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "False"


def test_decode_streams_every_frame_with_time(tiny_clip: Path):
    frames = list(iter_frames(tiny_clip))
    assert [f.index for f in frames] == list(range(12))
    assert frames[0].pix_fmt == "yuv420p" and frames[0].y.shape == (48, 64)
    assert frames[0].planes[1].shape == (24, 32)
    times = frame_times(frames)
    assert times == sorted(times) and times[1] == pytest.approx(0.04)
    info = probe(tiny_clip)
    assert info.has_audio and info.rate == Fraction(25)


@pytest.mark.parametrize("fmt,expect,shape", [
    ("nv12", "yuv420p", (8, 8)), ("gray", "gray", None), ("yuv420p10le", "yuv420p10le", (8, 8)),
    ("yuv422p", "yuv422p", (16, 8)), ("yuvj444p", "yuvj444p", (16, 16)), ("rgb24", "yuv444p", (16, 16)),
])
def test_pixel_formats(fmt: str, expect: str, shape: tuple | None):
    rgb = gradient_rgb(16, 16)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    if fmt != "rgb24":
        frame = frame.reformat(format=fmt)
    yuv = frame_to_yuv(frame, 0)
    assert yuv.pix_fmt == expect
    assert yuv.y.shape == (16, 16)
    assert yuv.y.dtype == (np.uint16 if "10" in fmt else np.uint8)
    if shape is None:
        assert len(yuv.planes) == 1
    else:
        assert yuv.planes[1].shape == shape
    if "10" in fmt:
        assert yuv.y.max() > 255  # really 10-bit values


def test_odd_size_rule():
    assert encodable_size(45, 63, "yuv420p") == (44, 62)
    assert encodable_size(45, 63, "yuv422p") == (44, 63)
    assert encodable_size(45, 63, "yuv444p") == (45, 63)
    assert chroma_size(44, 62, "yuv420p") == (22, 31)


def test_writer_round_trip_and_part_file(tmp_path: Path, tiny_clip: Path):
    src = open_input(tiny_clip)
    from vsr.io.probe import video_info

    info = video_info(src)
    dst = tmp_path / "out.mkv"
    writer = ClipWriter(dst, width=64, height=48, pix_fmt="yuv420p", info=info,
                        encode=EncodeConfig(codec="libx264", crf=0), source=src)
    frames = list(iter_frames(tiny_clip))
    for f in frames:
        writer.write(f)
    assert part_path(dst).exists() and not dst.exists()
    writer.close()
    src.close()
    assert dst.exists() and not part_path(dst).exists()
    back = list(iter_frames(dst))
    assert len(back) == len(frames)
    assert [round(t, 4) for t in frame_times(back)] == [round(t, 4) for t in frame_times(frames)]
    # crf 0 is lossless in libx264: the planes come back exactly
    np.testing.assert_array_equal(back[5].y, frames[5].y)


def test_writer_abort_leaves_nothing(tmp_path: Path, tiny_clip: Path):
    info = probe(tiny_clip)
    dst = tmp_path / "out.mp4"
    writer = ClipWriter(dst, width=64, height=48, pix_fmt="yuv420p", info=info, encode=EncodeConfig())
    writer.write(YuvFrame((np.zeros((48, 64), np.uint8), np.zeros((24, 32), np.uint8), np.zeros((24, 32), np.uint8)),
                          "yuv420p", 0, info.time_base, 0))
    writer.abort()
    assert not dst.exists() and not part_path(dst).exists()


def test_bad_inputs(tmp_path: Path):
    with pytest.raises(MediaError, match="not found"):
        open_input(tmp_path / "missing.mp4")
    with pytest.raises(MediaError, match="directory"):
        open_input(tmp_path)
    (tmp_path / "zero.mp4").write_bytes(b"")
    with pytest.raises(MediaError, match="empty file"):
        open_input(tmp_path / "zero.mp4")
    (tmp_path / "text.mp4").write_text("hello, not a video\n")
    with pytest.raises(MediaError, match="not a readable video"):
        open_input(tmp_path / "text.mp4")


def test_audio_only_is_refused(tmp_path: Path):
    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        samples = np.zeros((1, 16000), np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        frame.sample_rate = 16000
        for p in stream.encode(frame):
            out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
    with pytest.raises(MediaError, match="audio-only"):
        open_input(path)


def test_variable_frame_rate_is_kept(tmp_path: Path):
    tb = Fraction(1, 1000)
    clip = write_clip(tmp_path / "vfr.mp4", frames=9, time_base=tb, pts_step=[40, 80, 33], rate=Fraction(20))
    times = frame_times(iter_frames(clip))
    steps = np.round(np.diff(times), 3)
    assert set(steps) == {0.04, 0.08, 0.033}


def test_pending_output_moves_into_place_only_on_commit(tmp_path: Path):
    dst = tmp_path / "out.csv"
    dst.write_text("the previous output")
    pending = PendingOutput(dst)
    pending.part.write_text("half")
    pending.discard()
    assert dst.read_text() == "the previous output" and not pending.part.exists()
    pending.part.write_text("whole")
    pending.commit()
    assert dst.read_text() == "whole" and not pending.part.exists()
    with pytest.raises(RuntimeError), atomic_output(dst) as part:
        part.write_text("broken")
        raise RuntimeError("the writer failed")
    assert dst.read_text() == "whole" and not part.exists()


@pytest.mark.parametrize("fmt,expect", [
    ("yuva420p", "yuv420p"), ("yuva444p10le", "yuv444p10le"), ("yuv420p12le", "yuv420p10le"),
    ("yuv422p16le", "yuv422p10le"), ("yuv420p10be", "yuv420p10le"), ("yuv444p9le", "yuv444p10le"),
])
def test_other_planar_yuv_keeps_its_subsampling_and_matrix(fmt: str, expect: str):
    """Alpha planes are dropped and deeper (or big-endian) samples go to 10 bits, at the source's own
    subsampling and without a matrix conversion (before: 8-bit 4:4:4 through libswscale)."""
    rgb = gradient_rgb(16, 16)
    src = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=fmt)
    ref = frame_to_yuv(src.reformat(format=expect), 0)  # what libswscale makes of it directly
    yuv = frame_to_yuv(src, 0)
    assert yuv.pix_fmt == expect and len(yuv.planes) == 3
    assert yuv.color == ref.color
    for got, want in zip(yuv.planes, ref.planes, strict=True):
        assert got.shape == want.shape and got.dtype == want.dtype
        assert np.abs(got.astype(np.int32) - want.astype(np.int32)).max() <= 1


def test_animated_frames_counts_webp_frames_and_stills(tmp_path: Path):
    import cv2

    from vsr.io.images import animated_frames

    still = tmp_path / "still.webp"
    cv2.imwrite(str(still), gradient_rgb(16, 16))
    assert animated_frames(still) == 1
    anim = tmp_path / "anim.webp"  # the chunk layout of an animated WebP: VP8X, ANIM, one ANMF per frame
    chunks = b"VP8X" + (10).to_bytes(4, "little") + b"\x02" + b"\0" * 9
    chunks += b"ANIM" + (6).to_bytes(4, "little") + b"\0" * 6
    chunks += b"".join(b"ANMF" + (16).to_bytes(4, "little") + b"\0" * 16 for _ in range(3))
    anim.write_bytes(b"RIFF" + (4 + len(chunks)).to_bytes(4, "little") + b"WEBP" + chunks)
    assert animated_frames(anim) == 3
    assert animated_frames(tmp_path / "missing.png") == 1
