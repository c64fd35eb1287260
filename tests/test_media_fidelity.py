"""What survives an upscale: colours of RGB-codec sources, every colour tag, stream languages."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import gradient_rgb, shared

from cli import main

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the ffmpeg binary makes the inputs")


def _run(*args: str) -> None:
    res = CliRunner().invoke(main, ["upscale", *args, "--quiet", "--preset", "ultrafast", "--no-ssim"])
    assert res.exit_code == 0, res.output


def _first_rgb(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


@needs_ffmpeg
@pytest.mark.parametrize(("codec", "ext", "pix"), [("png", ".mov", "rgb24"), ("qtrle", ".mov", "rgb24"),
                                                   ("ffv1", ".mkv", "bgr0")])
def test_rgb_codec_sources_keep_their_colours(tmp_path: Path, codec: str, ext: str, pix: str):
    """Decoded RGB is converted to BT.601 YCbCr: the output must say so, not copy the GBR/pc tags."""
    frames = tmp_path / "f%02d.png"
    for i in range(4):
        import cv2

        cv2.imwrite(str(frames).replace("%02d", f"{i:02d}"), gradient_rgb(48, 64, i)[:, :, ::-1])
    src = tmp_path / f"in{ext}"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-framerate", "10", "-i", str(frames), "-c:v", codec,
                    "-pix_fmt", pix, str(src)], check=True)
    dst = tmp_path / "out.mp4"
    _run(str(src), str(dst), "--model", "bicubic")
    with av.open(str(dst)) as c:
        cc = c.streams.video[0].codec_context
        assert int(cc.colorspace) == 6 and int(cc.color_range) == 1  # BT.601 matrix, limited range
    want = _first_rgb(src).astype(np.int16)
    got = _first_rgb(dst)[::2, ::2].astype(np.int16)  # bicubic x2 then decimate: close to the source
    assert np.abs(got - want).mean() < 12, np.abs(got - want).mean()
    # magenta/green: a chroma swap or a wrong matrix shows as large per-channel mean errors
    assert np.abs(got.mean(axis=(0, 1)) - want.mean(axis=(0, 1))).max() < 4


def _frame_tags(path: Path) -> dict[str, int]:
    with av.open(str(path)) as c:
        f = next(c.decode(video=0))
        cc = c.streams.video[0].codec_context
        return {"primaries": int(f.color_primaries) if int(f.color_primaries) != 2 else int(cc.color_primaries),
                "trc": int(f.color_trc) if int(f.color_trc) != 2 else int(cc.color_trc),
                "matrix": int(f.colorspace) if int(f.colorspace) != 2 else int(cc.colorspace),
                "range": int(f.color_range) or int(cc.color_range)}


@needs_ffmpeg
def test_webm_keeps_the_bitstream_colour_tags(tmp_path: Path):
    """big_buck_bunny_432_433.webm signals range and matrix only in its VP9 frames."""
    src = shared("clips", "big_buck_bunny_432_433.webm")
    small = tmp_path / "small.webm"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-i", str(src), "-t", "0.3", "-vf", "scale=320:180",
                    "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-an", str(small)], check=True)
    a = _frame_tags(small)
    assert a["range"] == 1 and a["matrix"] == 5
    dst = tmp_path / "out.webm"
    _run(str(small), str(dst), "--model", "bicubic")
    assert _frame_tags(dst) == a
    with av.open(str(dst)) as c:
        cc = c.streams.video[0].codec_context
        assert int(cc.color_range) == 1 and int(cc.colorspace) == 5  # the container says it too


@needs_ffmpeg
def test_stream_languages_survive(tmp_path: Path):
    clip = shared("clips", "chaplin.mp4")
    src = tmp_path / "two_audio.mkv"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-t", "1", "-i", str(clip), "-map", "0:v", "-map", "0:a",
                    "-map", "0:a", "-c", "copy", "-metadata:s:a:0", "language=eng", "-metadata:s:a:1",
                    "language=fra", str(src)], check=True)
    dst = tmp_path / "out.mkv"
    _run(str(src), str(dst), "--model", "bicubic")
    with av.open(str(dst)) as c:
        assert [s.metadata.get("language") for s in c.streams.audio] == ["eng", "fra"]


@needs_ffmpeg
def test_streams_the_container_cannot_hold_are_converted_or_recorded(tmp_path: Path):
    import json

    clip = shared("clips", "chaplin.mp4")  # MP3 audio
    dst = tmp_path / "out.webm"
    _run(str(clip), str(dst), "--model", "bicubic")
    with av.open(str(dst)) as c:
        assert [s.codec_context.name for s in c.streams.audio] == ["opus"]
        audio = sum(f.samples for f in c.decode(audio=0)) / c.streams.audio[0].codec_context.sample_rate
    assert abs(audio - 9.61) < 0.1  # the whole track, not a fragment
    notes = json.loads(Path(str(dst) + ".summary.json").read_text())["streams"]
    assert len(notes) == 1 and "transcoded to libopus" in notes[0]

    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,500\nhello\n")
    src = tmp_path / "with_subs.mkv"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-t", "1", "-i", str(clip), "-i", str(srt), "-map", "0",
                    "-map", "1", "-c", "copy", "-c:s", "srt", str(src)], check=True)
    dst = tmp_path / "out.mp4"
    _run(str(src), str(dst), "--model", "bicubic")
    notes = json.loads(Path(str(dst) + ".summary.json").read_text())["streams"]
    assert any("subtitle" in n and "mov_text" in n for n in notes), notes
    with av.open(str(dst)) as c:
        assert [s.codec_context.name for s in c.streams.subtitles] == ["mov_text"]
        texts = [bytes(p) for p in c.demux(c.streams.subtitles[0]) if p.size]
    assert sum(b"hello" in t for t in texts) == 1  # (the mp4 muxer adds empty samples for the gaps)


@pytest.fixture(scope="module")
def anamorphic_with_chapters(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of 4:3-pixel (16:9 shown) 160x120 H.264 with two chapters, made by the ffmpeg binary."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg binary makes the input")
    d = tmp_path_factory.mktemp("sar")
    meta = d / "chapters.txt"
    meta.write_text(";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1000\ntitle=One\n"
                    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=1000\nEND=2000\ntitle=Two\n")
    src = d / "in.mp4"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=2",
                    "-i", str(meta), "-map", "0", "-map_chapters", "1", "-vf", "setsar=4/3", "-c:v", "libx264",
                    "-preset", "ultrafast", str(src)], check=True)
    return src


def _shape_and_chapters(path: Path) -> tuple[object, list[tuple[float, str]]]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        chapters = [(float(ch["start"] * ch["time_base"]), ch["metadata"].get("title", "")) for ch in c.chapters()]
        return v.sample_aspect_ratio, chapters


@pytest.mark.parametrize(("backend", "ext"), [("pyav", ".mp4"), ("pyav", ".mkv"), ("ffmpeg", ".mp4")])
def test_pixel_aspect_and_chapters_survive(anamorphic_with_chapters: Path, tmp_path: Path, backend: str, ext: str):
    from fractions import Fraction

    sar, chapters = _shape_and_chapters(anamorphic_with_chapters)
    assert sar == Fraction(4, 3) and [t for _, t in chapters] == ["One", "Two"]  # the input is what we think
    dst = tmp_path / f"out{ext}"
    _run(str(anamorphic_with_chapters), str(dst), "--model", "bicubic", "--backend", backend)
    out_sar, out_chapters = _shape_and_chapters(dst)
    assert out_sar == sar  # an integer upscale keeps the pixel shape, so the picture is shown 16:9 as before
    assert out_chapters == chapters


def test_a_pixel_aspect_the_writer_cannot_store_is_recorded(anamorphic_with_chapters: Path, tmp_path: Path):
    import json

    dst = tmp_path / "out.webm"
    _run(str(anamorphic_with_chapters), str(dst), "--model", "bicubic")
    notes = json.loads((tmp_path / "out.webm.summary.json").read_text())["streams"]
    assert any(n.startswith("pixel aspect ratio 4:3 not stored") for n in notes), notes


@pytest.mark.parametrize("backend", ["pyav", "ffmpeg"])
def test_the_moving_picture_is_upscaled_not_the_cover(tmp_path: Path, backend: str):
    """A cover picture (attached_pic) larger than the video, and a one-frame MJPEG stream ahead of
    the video: neither is the stream to upscale."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg binary makes the inputs")
    import json

    import cv2

    cover = tmp_path / "cover.png"
    cv2.imwrite(str(cover), gradient_rgb(400, 400, 0)[:, :, ::-1])
    clip = tmp_path / "clip.mp4"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=1",
                    "-c:v", "libx264", "-preset", "ultrafast", str(clip)], check=True)
    with_cover = tmp_path / "with_cover.mp4"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-i", str(clip), "-i", str(cover), "-map", "0", "-map", "1",
                    "-c:v:0", "copy", "-c:v:1", "png", "-disposition:v:1", "attached_pic", str(with_cover)], check=True)
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), gradient_rgb(32, 32, 1)[:, :, ::-1])
    still_first = tmp_path / "still_first.mkv"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-i", str(still), "-i", str(clip), "-map", "0", "-map", "1",
                    "-c:v:0", "mjpeg", "-c:v:1", "copy", str(still_first)], check=True)
    for src in (with_cover, still_first):
        dst = tmp_path / f"out_{src.stem}{src.suffix}"
        _run(str(src), str(dst), "--model", "bicubic", "--backend", backend)
        with av.open(str(dst)) as c:
            v = c.streams.video
            assert len(v) == 1 and (v[0].codec_context.width, v[0].codec_context.height) == (192, 128)
            assert sum(1 for _ in c.decode(video=0)) == 10
        notes = json.loads(Path(str(dst) + ".summary.json").read_text())["streams"]
        assert any("not copied: the output holds one video stream" in n for n in notes), notes


def test_an_interlaced_source_is_upscaled_and_the_summary_says_how(tmp_path: Path):
    """Field-coded H.264: the QP probe of --source auto reads field pictures (it raised before)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg binary makes the input")
    import json

    src = tmp_path / "tff.mp4"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=1",
                    "-c:v", "libx264", "-preset", "ultrafast", "-crf", "40", "-flags", "+ildct+ilme",
                    "-x264opts", "tff=1", str(src)], check=True)
    dst = tmp_path / "out.mp4"
    _run(str(src), str(dst), "--source", "auto")
    summary = json.loads((tmp_path / "out.mp4.summary.json").read_text())
    assert summary["frames"] == 25
    assert "median macroblock QP" in summary["engine"]["source_reason"]
    assert len(summary["notes"]) == 1 and summary["notes"][0].startswith("interlaced source")


_MASTER = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"


@pytest.fixture(scope="module")
def hdr10_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 s of 10-bit PQ / BT.2020 HEVC with HDR10 mastering-display and content-light metadata."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg binary makes the input")
    src = tmp_path_factory.mktemp("hdr") / "hdr.mp4"
    params = f"log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:master-display={_MASTER}:" \
             "max-cll=1000,400"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=1",
                    "-pix_fmt", "yuv420p10le", "-c:v", "libx265", "-x265-params", params, str(src)], check=True)
    return src


@pytest.mark.parametrize("backend", ["pyav", "ffmpeg"])
def test_hdr10_metadata_follows_into_hevc_and_is_recorded_elsewhere(hdr10_clip: Path, tmp_path: Path, backend: str):
    import json

    from vsr.io.probe import hdr_static

    want = hdr_static(hdr10_clip)
    assert want is not None and want.master_display == _MASTER and want.max_cll == "1000,400"
    hevc = tmp_path / "hevc.mp4"
    _run(str(hdr10_clip), str(hevc), "--model", "bicubic", "--backend", backend, "--codec", "libx265")
    assert hdr_static(hevc) == want
    avc = tmp_path / "avc.mp4"
    _run(str(hdr10_clip), str(avc), "--model", "bicubic", "--backend", backend, "--codec", "libx264")
    assert hdr_static(avc) is None  # x264 writes no such SEI: so the summary must say it is gone
    notes = json.loads((tmp_path / "avc.mp4.summary.json").read_text())["streams"]
    assert any(n.startswith("HDR10 mastering-display") for n in notes), notes
    assert hdr_static(shared("clips", "realshort.mp4")) is None  # SDR: nothing decoded, nothing found


@pytest.mark.parametrize(("backend", "ext"), [("pyav", ".mkv"), ("pyav", ".mp4"), ("ffmpeg", ".mkv")])
def test_track_dispositions_survive(tmp_path: Path, backend: str, ext: str):
    """The second audio track is the default (and a commentary): players must still pick it."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg binary makes the input")
    src = tmp_path / "two.mkv"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1",
                    "-f", "lavfi", "-i", "sine=duration=1", "-f", "lavfi", "-i", "sine=f=880:duration=1", "-map", "0",
                    "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                    "-disposition:a:0", "0", "-disposition:a:1", "default+comment", str(src)], check=True)

    def audio_dispositions(path: Path) -> list[tuple[bool, bool]]:
        flag = av.stream.Disposition
        with av.open(str(path)) as c:
            return [(bool(s.disposition & flag.default), bool(s.disposition & flag.comment)) for s in c.streams.audio]

    assert audio_dispositions(src) == [(False, False), (True, True)]
    dst = tmp_path / f"out{ext}"
    _run(str(src), str(dst), "--model", "bicubic", "--backend", backend)
    assert audio_dispositions(dst) == [(False, False), (True, True)]
