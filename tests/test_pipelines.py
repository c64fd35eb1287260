"""End to end on the real clips and images: what a user gets from `vsr upscale`."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import clip_prefix, gradient_rgb, imread, shared, write_clip

from cli import main
from vsr.io.images import read_rgb
from vsr.weights import default_weights

ROOT = Path(__file__).resolve().parent.parent

# The two long 720p clips run through plain bicubic: what they test is the I/O
# (yuv444p, 5.1 AAC, timing), which does not depend on the model; the engine
# itself is exercised with the default model (fast, --source auto, --runtime auto) on the others.
CLIPS = {
    "bigbuckbunny.mp4": "bicubic",
    "bikes.mp4": "fast",
    "carphone_pristine.mp4": "fast",
    "big_buck_bunny_432_433.webm": "fast",
    "chaplin.mp4": "fast",
    "fire2.mp4": "fast",
    "cockatoo.mp4": "bicubic",
    "realshort.mp4": "fast",
}


def _model(name: str, scale: int) -> str:
    return name if name == "bicubic" or default_weights(name, scale) else "bicubic"


def _video_facts(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        cc = v.codec_context
        # An unspecified range (0) on a non-"j" YUV format means limited (1) to
        # FFmpeg; some encoders (libvpx) write the 1 explicitly.
        rng = cc.color_range or (2 if cc.pix_fmt.startswith("yuvj") else 1)
        facts: dict[str, Any] = {
            "size": (cc.width, cc.height),
            "tags": (cc.color_primaries, cc.color_trc, cc.colorspace, rng),
            "audio_codecs": [s.codec_context.name for s in c.streams.audio],
        }
        decoded = list(c.decode(v))
        facts["times"] = [round(float(f.pts * f.time_base), 3) for f in decoded]
        # Frame-level tags (what a codec like VP9 signals in its bitstream), where specified.
        f0 = decoded[0]
        facts["frame_tags"] = {k: int(getattr(f0, k)) for k in ("color_primaries", "color_trc", "colorspace")
                               if int(getattr(f0, k)) != 2}
        if int(f0.color_range):
            facts["frame_tags"]["color_range"] = int(f0.color_range)
    with av.open(str(path)) as c:
        facts["audio"] = [bytes(p) for p in c.demux(c.streams.audio) if p.size] if c.streams.audio else []
    return facts


def _run(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(main, args)
    return res.exit_code, res.output


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_real_clip_x2(name: str, tmp_path: Path):
    src = shared("clips", name)
    dst = tmp_path / name
    code, out = _run(["upscale", str(src), str(dst), "--scale", "2", "--model", _model(CLIPS[name], 2),
                      "--preset", "ultrafast", "--quiet", "--no-ssim"])
    assert code == 0, out
    a, b = _video_facts(src), _video_facts(dst)
    assert b["size"] == (2 * a["size"][0], 2 * a["size"][1])
    assert len(b["times"]) == len(a["times"])
    assert b["times"] == a["times"]
    assert b["audio_codecs"] == a["audio_codecs"]
    assert b["audio"] == a["audio"]  # packet for packet
    # stream-level tags: every one the source specifies (an output may say more: VP9's in-band tags)
    assert all(x == y for x, y in zip(a["tags"], b["tags"], strict=False) if x != 2), (a["tags"], b["tags"])
    assert {k: b["frame_tags"].get(k) for k in a["frame_tags"]} == a["frame_tags"]  # every tag the source has
    with open(str(dst) + ".frames.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(a["times"])
    assert [int(r["index"]) for r in rows] == list(range(len(rows)))
    assert all(float(r["lr_psnr"]) > 30 for r in rows)
    summary = json.loads(Path(str(dst) + ".summary.json").read_text())
    assert summary["frames"] == len(rows) and summary["mode"] == "plain"
    assert summary["codec"] == ("libvpx-vp9" if dst.suffix == ".webm" else "libx264")  # the output plan's encoder
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_quality_tier_on_a_real_clip(scale: int, tmp_path: Path):
    """`--model edsr` end to end, in eval mode: it must beat both bicubic and ESPCN on real footage."""
    if default_weights("edsr", scale) is None or default_weights("espcn", scale) is None:
        pytest.skip(f"no shipped EDSR/ESPCN x{scale} weights")
    # the first second of the clip, losslessly: the same footage in a quarter of the frames
    src = clip_prefix(shared("clips", "carphone_pristine.mp4"), tmp_path / "carphone30.mkv", 30)
    means = {}
    for model in ("edsr", "espcn"):
        dst = tmp_path / f"{model}.mp4"
        # --runtime torch: this measures quality; the runtime probe is tested in test_runtime
        code, out = _run(["upscale", str(src), str(dst), "--model", model, "--scale", str(scale), "--eval",
                          "--quiet", "--preset", "ultrafast", "--no-ssim", "--runtime", "torch"])
        assert code == 0, out
        summary = json.loads(Path(str(dst) + ".summary.json").read_text())
        assert summary["frames"] == 30
        means[model] = summary["means"]
    assert means["edsr"]["psnr"] > means["edsr"]["psnr_bicubic"] + 0.3
    assert means["edsr"]["psnr"] > means["espcn"]["psnr"]
    # eval mode mod-crops the reference to a multiple of the scale, as the benchmarks do (176 -> 174 at x3)
    assert _video_facts(tmp_path / "edsr.mp4")["size"] == (176 // scale * scale, 144 // scale * scale)


@pytest.mark.parametrize("scale", [3, 4])
def test_carphone_x3_x4(scale: int, tmp_path: Path):
    src = shared("clips", "carphone_pristine.mp4")
    dst = tmp_path / "out.mp4"
    code, out = _run(["upscale", str(src), str(dst), "--scale", str(scale), "--model", _model("espcn", scale),
                      "--quiet", "--preset", "ultrafast"])
    assert code == 0, out
    a, b = _video_facts(src), _video_facts(dst)
    assert b["size"] == (176 * scale, 144 * scale)
    assert b["times"] == a["times"]


def test_eval_mode_beats_bicubic_on_real_footage(tmp_path: Path):
    if default_weights("espcn", 2) is None:
        pytest.skip("no shipped ESPCN x2 weights")
    src = shared("clips", "chaplin.mp4")
    dst = tmp_path / "eval.mp4"
    code, out = _run(["upscale", str(src), str(dst), "--eval", "--quiet", "--preset", "ultrafast"])
    assert code == 0, out
    summary = json.loads(Path(str(dst) + ".summary.json").read_text())
    means = summary["means"]
    assert summary["mode"] == "eval"
    assert means["psnr"] - means["psnr_bicubic"] > 0.3
    assert means["ssim"] > means["ssim_bicubic"]
    with av.open(str(dst)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (640, 360)


def test_reference_mode(tmp_path: Path):
    src = write_clip(tmp_path / "lr.mp4", size=(32, 24))
    ref = write_clip(tmp_path / "hr.mp4", size=(64, 48))
    dst = tmp_path / "out.mp4"
    code, out = _run(["upscale", str(src), str(dst), "--reference", str(ref), "--model", "bicubic", "--quiet"])
    assert code == 0, out
    with open(str(dst) + ".frames.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12
    assert all(float(r["psnr"]) == pytest.approx(float(r["psnr_bicubic"])) for r in rows)  # model is bicubic
    bad = write_clip(tmp_path / "hr_wrong.mp4", size=(48, 48))
    code, out = _run(["upscale", str(src), str(tmp_path / "o2.mp4"), "--reference", str(bad), "--model", "bicubic",
                      "--quiet"])
    assert code == 1 and "reference frame is 48x48" in out
    assert not (tmp_path / "o2.mp4").exists()
    longer = write_clip(tmp_path / "hr_long.mp4", size=(64, 48), frames=14)
    code, out = _run(["upscale", str(src), str(tmp_path / "o3.mp4"), "--reference", str(longer), "--model", "bicubic",
                      "--quiet"])
    assert code == 1 and "more frames than the input" in out
    assert not list(tmp_path.glob("o3.mp4*"))


@pytest.mark.parametrize("rel", ["Set5/butterfly.png", "T91/t1.bmp", "Set14/bridge.png"])
def test_images(rel: str, tmp_path: Path):
    src = shared(*rel.split("/"))
    dst = tmp_path / ("out" + src.suffix)
    code, out = _run(["upscale", str(src), str(dst), "--model", _model("espcn", 2), "--eval", "--quiet"])
    assert code == 0, out
    hr = read_rgb(src)
    sr = read_rgb(dst)
    assert sr.ndim == hr.ndim
    assert sr.shape[:2] == (hr.shape[0] // 2 * 2, hr.shape[1] // 2 * 2)
    summary = json.loads(Path(str(dst) + ".summary.json").read_text())
    assert summary["means"]["psnr"] > 20
    assert summary["codec"] is None and summary["crf"] is None  # an image has no video encoder


def test_jpeg_plain(tmp_path: Path):
    import cv2

    src = tmp_path / "in.jpg"
    cv2.imwrite(str(src), imread(str(shared("Set5", "bird.png"))))
    dst = tmp_path / "out.jpg"
    code, out = _run(["upscale", str(src), str(dst), "--model", _model("espcn", 3), "--scale", "3", "--quiet"])
    assert code == 0, out
    assert read_rgb(dst).shape[:2] == tuple(3 * s for s in read_rgb(src).shape[:2])


def _bird_with_alpha(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """bird.png as written (BGR), and the same picture with a ramp-and-disc alpha channel."""
    bgr = imread(str(shared("Set5", "bird.png")))
    h, w = bgr.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    alpha = np.where((yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (h / 3) ** 2, 255, xx * 255 // w).astype(np.uint8)
    plain, rgba = tmp_path / "plain.png", tmp_path / "rgba.png"
    cv2.imwrite(str(plain), bgr)
    cv2.imwrite(str(rgba), np.dstack([bgr, alpha]))
    return plain, rgba, alpha


def test_alpha_is_kept_and_resized_like_chroma(tmp_path: Path):
    plain, rgba, alpha = _bird_with_alpha(tmp_path)
    model = _model("fast", 2)
    for src in (plain, rgba):
        code, out = _run(["upscale", str(src), str(tmp_path / ("o_" + src.name)), "--model", model, "--quiet"])
        assert code == 0, out
    sr_plain = imread(str(tmp_path / "o_plain.png"), cv2.IMREAD_UNCHANGED)
    sr_rgba = imread(str(tmp_path / "o_rgba.png"), cv2.IMREAD_UNCHANGED)
    assert sr_rgba.shape == (*sr_plain.shape[:2], 4)
    np.testing.assert_array_equal(sr_rgba[:, :, :3], sr_plain)  # alpha does not touch the colour
    h, w = sr_plain.shape[:2]
    np.testing.assert_array_equal(sr_rgba[:, :, 3], cv2.resize(alpha, (w, h), interpolation=cv2.INTER_CUBIC))
    summary = json.loads((tmp_path / "o_rgba.png.summary.json").read_text())
    assert summary["notes"] == []


def test_alpha_in_eval_mode_is_the_input_alpha_cropped_like_the_picture(tmp_path: Path):
    _, _, alpha = _bird_with_alpha(tmp_path)
    bgr = imread(str(shared("Set5", "bird.png")))
    src = tmp_path / "odd.png"  # 287 x 286: --eval at x3 crops the ground truth to 285 x 285
    cv2.imwrite(str(src), np.dstack([bgr, alpha])[:286, :287])
    code, out = _run(["upscale", str(src), str(tmp_path / "o.png"), "--model", "bicubic", "--scale", "3", "--eval",
                      "--quiet"])
    assert code == 0, out
    got = imread(tmp_path / "o.png", cv2.IMREAD_UNCHANGED)
    assert got.shape == (285, 285, 4)
    np.testing.assert_array_equal(got[:, :, 3], alpha[:285, :285])


def test_alpha_into_a_format_without_it_is_dropped_and_recorded(tmp_path: Path):
    _, rgba, _ = _bird_with_alpha(tmp_path)
    dst = tmp_path / "out.jpg"
    code, out = _run(["upscale", str(rgba), str(dst), "--model", _model("fast", 2), "--quiet"])
    assert code == 0, out
    assert imread(str(dst), cv2.IMREAD_UNCHANGED).shape[2] == 3
    notes = json.loads((tmp_path / "out.jpg.summary.json").read_text())["notes"]
    assert len(notes) == 1 and notes[0].startswith("alpha channel dropped: .jpg")


@pytest.mark.parametrize("grey", [False, True])
def test_sixteen_bit_images_stay_sixteen_bit(grey: bool, tmp_path: Path):
    bgr = imread(str(shared("Set5", "bird.png")))
    img8 = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if grey else bgr
    # 16-bit content with detail below the 8-bit step: the picture times 256 plus a fine ramp (< 256)
    ramp = (np.arange(img8.shape[1]) % 200).astype(np.uint16)
    img16 = img8.astype(np.uint16) * np.uint16(256) + (ramp if grey else ramp[:, None])
    src8, src16 = tmp_path / "in8.png", tmp_path / "in16.png"
    cv2.imwrite(str(src8), img8)
    cv2.imwrite(str(src16), img16)
    model = _model("fast", 2)
    for src, name in ((src8, "o8.png"), (src16, "o16.png"), (src16, "o16.jpg")):
        code, out = _run(["upscale", str(src), str(tmp_path / name), "--model", model, "--quiet"])
        assert code == 0, out
    out8 = imread(str(tmp_path / "o8.png"), cv2.IMREAD_UNCHANGED).astype(np.float64)
    out16 = imread(str(tmp_path / "o16.png"), cv2.IMREAD_UNCHANGED)
    assert out16.dtype == np.uint16 and out16.shape == out8.shape
    assert np.mean(out16 % 257 != 0) > 0.5  # real 16-bit values, not 8-bit ones times 257
    mse = np.mean((out16 / 257.0 - out8) ** 2)
    assert 10 * np.log10(255**2 / mse) > 40  # the same picture as the 8-bit path gives
    assert json.loads((tmp_path / "o16.png.summary.json").read_text())["notes"] == []
    jpg = imread(str(tmp_path / "o16.jpg"), cv2.IMREAD_UNCHANGED)
    assert jpg.dtype == np.uint8 and jpg.shape == out8.shape
    notes = json.loads((tmp_path / "o16.jpg.summary.json").read_text())["notes"]
    assert len(notes) == 1 and notes[0].startswith("16-bit input written at 8 bits")


def _exif_orientation(encoded: bytes, value: int) -> bytes:
    """A JPEG or PNG file with an EXIF orientation tag added (APP1 segment / eXIf chunk)."""
    import struct
    import zlib

    tiff = b"MM\x00*" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, value, 0) + b"\x00" * 4
    if encoded[:2] == b"\xff\xd8":
        app1 = b"\xff\xe1" + struct.pack(">H", 8 + len(tiff)) + b"Exif\x00\x00" + tiff
        return encoded[:2] + app1 + encoded[2:]
    chunk = struct.pack(">I", len(tiff)) + b"eXIf" + tiff + struct.pack(">I", zlib.crc32(b"eXIf" + tiff))
    return encoded[:33] + chunk + encoded[33:]  # after the signature and IHDR


def test_exif_orientation_is_applied_to_colour_and_alpha(tmp_path: Path):
    bgr = imread(str(shared("Set5", "bird.png")))[:, :200]  # not square: a turn shows in the shape
    _, _, alpha = _bird_with_alpha(tmp_path)
    rgba = np.dstack([bgr, alpha[:, :200]])
    inputs = {
        "rot_jpg.jpg": _exif_orientation(cv2.imencode(".jpg", bgr)[1].tobytes(), 6),
        "rot_rgba.png": _exif_orientation(cv2.imencode(".png", rgba)[1].tobytes(), 6),
        "upright_rgba.png": cv2.imencode(".png", np.rot90(rgba, -1))[1].tobytes(),  # 6: 90 degrees clockwise
    }
    # what a viewer shows for the JPEG: OpenCV's own oriented decode, stored without the tag
    (tmp_path / "shown.jpg").write_bytes(inputs["rot_jpg.jpg"])
    inputs["upright_jpg.png"] = cv2.imencode(".png", imread(tmp_path / "shown.jpg", cv2.IMREAD_COLOR))[1].tobytes()
    model = _model("fast", 2)
    out = {}
    for name, data in inputs.items():
        (tmp_path / name).write_bytes(data)
        dst = tmp_path / ("o_" + Path(name).stem + ".png")
        # one runtime for all: --runtime auto probes at the header's (unturned) size, and under load
        # it can pick bf16 for one file and fp32 for the other, which differ by a code value or two
        code, text = _run(["upscale", str(tmp_path / name), str(dst), "--model", model, "--quiet",
                           "--runtime", "torch", "--dtype", "fp32"])
        assert code == 0, text
        out[Path(name).stem] = imread(dst, cv2.IMREAD_UNCHANGED)
    assert out["rot_jpg"].shape == (2 * bgr.shape[1], 2 * bgr.shape[0], 3)
    np.testing.assert_array_equal(out["rot_jpg"], out["upright_jpg"])
    assert out["rot_rgba"].shape == (2 * bgr.shape[1], 2 * bgr.shape[0], 4)
    np.testing.assert_array_equal(out["rot_rgba"], out["upright_rgba"])


def test_an_icc_profile_that_is_not_carried_over_is_recorded(tmp_path: Path):
    import struct

    jpeg = cv2.imencode(".jpg", imread(str(shared("Set5", "bird.png"))))[1].tobytes()
    payload = b"ICC_PROFILE\x00\x01\x01" + b"\x00" * 128  # a stand-in profile: only its presence matters
    src = tmp_path / "p3.jpg"
    src.write_bytes(jpeg[:2] + b"\xff\xe2" + struct.pack(">H", 2 + len(payload)) + payload + jpeg[2:])
    code, text = _run(["upscale", str(src), str(tmp_path / "o.png"), "--model", _model("fast", 2), "--quiet"])
    assert code == 0, text
    notes = json.loads((tmp_path / "o.png.summary.json").read_text())["notes"]
    assert notes == ["ICC colour profile not carried over: the output is untagged (viewers assume sRGB)"]


def test_an_animated_image_is_refused_not_cut_to_its_first_frame(tmp_path: Path):
    src = tmp_path / "anim.png"
    with av.open(str(src), "w", format="apng") as out:  # an animated PNG under its usual extension
        vs = out.add_stream("apng", rate=10)
        vs.width, vs.height, vs.pix_fmt = 32, 24, "rgb24"
        for i in range(5):
            for p in vs.encode(av.VideoFrame.from_ndarray(gradient_rgb(24, 32, i), format="rgb24")):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    assert imread(src).shape == (24, 32, 3)  # OpenCV decodes it, as its first frame only
    code, out = _run(["upscale", str(src), str(tmp_path / "o.png"), "--model", "bicubic", "--quiet"])
    assert code == 1 and "anim.png is animated (5 frames)" in out, out
    assert not list(tmp_path.glob("o.png*"))
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), imread(src))
    code, out = _run(["upscale", str(still), str(tmp_path / "o2.png"), "--model", "bicubic", "--quiet"])
    assert code == 0, out


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bad_inputs_fail_cleanly(tmp_path: Path, tiny_clip: Path):
    src = shared("clips", "chaplin.mp4")
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    truncated = tmp_path / "trunc.mp4"
    # moov first, media cut in half: opens, but half the frames are missing
    import shutil
    import subprocess

    if shutil.which("ffmpeg"):
        full = tmp_path / "faststart.mp4"
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), "-c", "copy", "-movflags", "faststart",
                        str(full)], check=True)
        truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    else:
        truncated.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    cases = [
        (tmp_path / "missing.mp4", "input not found"),
        (tmp_path, "is a directory"),
        (zero, "empty file"),
        (text, "not a readable video"),
        (truncated, "truncated"),
    ]
    for bad, message in cases:
        before = _digest(bad) if bad.is_file() else None
        dst = tmp_path / "out.mp4"
        code, out = _run(["upscale", str(bad), str(dst), "--model", "bicubic", "--quiet"])
        assert code == 1, (bad, out)
        lines = out.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], out
        assert "Traceback" not in out
        assert not dst.exists() and not list(tmp_path.glob("out.mp4*"))
        if before is not None:
            assert _digest(bad) == before


def test_refusals(tmp_path: Path, tiny_clip: Path):
    code, out = _run(["upscale", str(tiny_clip), str(tiny_clip), "--model", "bicubic"])
    assert code == 1 and "output path is the input path" in out
    dst = tmp_path / "exists.mp4"
    dst.write_bytes(b"keep me")
    code, out = _run(["upscale", str(tiny_clip), str(dst), "--model", "bicubic"])
    assert code == 1 and "--overwrite" in out and dst.read_bytes() == b"keep me"
    code, out = _run(["upscale", str(tiny_clip), str(tmp_path / "o.mp4"), "--scale", "5"])
    assert code == 2 and "'5' is not one of" in out
    code, out = _run(["upscale", str(tiny_clip), str(tmp_path / "o.mp4"), "--scale", "8"])
    assert code == 1 and "unsupported scale 8" in out
    code, out = _run(["upscale", str(tiny_clip), str(tmp_path / "o.xyz"), "--model", "bicubic"])
    assert code == 1 and "unsupported output extension" in out
    code, out = _run(["upscale", str(tiny_clip), str(tmp_path / "o.mp4"), "--model", "edsr", "--weights",
                      str(tmp_path / "none.pt")])
    assert code == 1 and "weights file not found" in out
    assert not (tmp_path / "o.mp4").exists()


def test_passes_reach_x4(tmp_path: Path, tiny_clip: Path):
    dst = tmp_path / "x4.mp4"
    code, out = _run(["upscale", str(tiny_clip), str(dst), "--scale", "4", "--passes", "2",
                      "--model", _model("espcn", 2), "--quiet", "--no-audio"])
    assert code == 0, out
    with av.open(str(dst)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (256, 192)
        assert not c.streams.audio


def test_models_command_lists_registry():
    code, out = _run(["models"])
    assert code == 0
    for name in ("bicubic", "espcn", "edsr", "srcnn", "srresnet", "srgan"):
        assert name in out
    # every shipped checkpoint has a MANIFEST entry: its row carries PSNR and the machine its speed came from
    manifest = json.loads((ROOT / "weights" / "MANIFEST.json").read_text())["weights"]
    assert {e["file"] for e in manifest} == {p.name for p in (ROOT / "weights").glob("*.pt")}
    rows = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip()}
    for e in manifest:
        row = rows[e["file"]]
        assert row.endswith(e["timed_as"]) and f"{e['psnr_y']['Set5']:.2f}" in row
        card = (ROOT / "weights" / e["card"]).read_text()  # each with its card, which names its command
        assert card.startswith(f"# {e['file'][:-3]}") and "vsr train" in card
    shipped = {e["model"] for e in manifest}
    assert {"espcn", "edsr", "srcnn", "srresnet", "srgan", "fast"} <= shipped


def test_eval_command(tmp_path: Path):
    code, out = _run(["eval", str(shared("Set5")), "--model", "bicubic", "--scale", "2", "--out",
                      str(tmp_path / "res")])
    assert code == 0, out
    data = json.loads((tmp_path / "res.json").read_text())
    set5 = data["sets"][0]
    assert set5["images"] == 5
    # MATLAB bicubic on Set5 x2 is 33.66 dB in the literature (SRCNN, VDSR tables)
    assert set5["psnr_bicubic_matlab"] == pytest.approx(33.66, abs=0.05)
    assert set5["psnr"] == pytest.approx(set5["psnr_bicubic"])


def test_eval_self_ensemble_beats_the_plain_model_on_set5(tmp_path: Path):
    # Averaging over flips cancels part of the model's error (EDSR+, Lim et al. 2017);
    # a wrong inverse transform would misalign the copies and cost dB instead.
    means = {}
    for ensemble in ("1", "2"):
        code, out = _run(["eval", str(shared("Set5")), "--model", "edsr", "--scale", "2", "--no-ssim",
                          "--ensemble", ensemble, "--out", str(tmp_path / f"e{ensemble}")])
        assert code == 0, out
        data = json.loads((tmp_path / f"e{ensemble}.json").read_text())
        assert data["engine"]["ensemble"] == int(ensemble)
        means[ensemble] = data["sets"][0]["psnr"]
    assert means["2"] > means["1"] + 0.02, means


@pytest.mark.skipif(__import__("shutil").which("ffmpeg") is None, reason="ffmpeg binary needed to make the input")
def test_subtitles_rotation_and_metadata_survive(tmp_path: Path):
    import subprocess

    src_clip = shared("clips", "realshort.mp4")
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,800\nhello\n\n2\n00:00:00,800 --> 00:00:01,100\nworld\n")
    src = tmp_path / "in.mkv"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(src_clip), "-i", str(srt), "-map", "0", "-map", "1",
                    "-c", "copy", "-c:s", "srt", "-metadata", "title=kept", str(src)],
                   check=True)
    dst = tmp_path / "out.mkv"
    code, out = _run(["upscale", str(src), str(dst), "--model", "bicubic", "--quiet", "--preset", "ultrafast"])
    assert code == 0, out
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        assert [s.type for s in b.streams] == [s.type for s in a.streams] == ["video", "audio", "subtitle"]
        assert b.metadata.get("title") == "kept"
        subs_a = [bytes(p) for p in a.demux(a.streams.subtitles[0]) if p.size]
    with av.open(str(dst)) as b:
        subs_b = [bytes(p) for p in b.demux(b.streams.subtitles[0]) if p.size]
    assert subs_a == subs_b and len(subs_a) == 2

    rotated = tmp_path / "rot.mp4"  # MP4 carries the display matrix
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(src_clip), "-c", "copy", "-metadata:s:v",
                    "rotate=90", str(rotated)], check=True)
    code, out = _run(["upscale", str(rotated), str(tmp_path / "rot_x2.mp4"), "--model", "bicubic", "--quiet"])
    assert code == 0, out
    for path in (rotated, tmp_path / "rot_x2.mp4"):
        with av.open(str(path)) as c:
            assert next(c.decode(video=0)).rotation == 90


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The README's API example, verbatim, on a clip made here."""
    text = (ROOT / "README.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    write_clip(tmp_path / "in.mp4", frames=4, size=(64, 48))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "out.mp4").is_file() and (tmp_path / "out.mp4.summary.json").is_file()
    with av.open(str(tmp_path / "out_x4.mp4")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (256, 192)


def test_api_builds_once_and_refuses_bad_options(tmp_path: Path):
    import numpy as np

    import vsr
    from vsr import Upscaler
    from vsr.io.probe import MediaError

    write_clip(tmp_path / "a.mp4", frames=3, size=(64, 48))
    up = Upscaler(model="bicubic", scale=2, source="clean")
    first = up.file(tmp_path / "a.mp4", tmp_path / "b.mp4")
    second = up.file(tmp_path / "a.mp4", tmp_path / "b.mp4", overwrite=True, crf=30)
    assert first.frames == second.frames == 3 and len(up._engines) == 1  # one engine served both
    with pytest.raises(MediaError, match="output exists"):
        up.file(tmp_path / "a.mp4", tmp_path / "b.mp4")  # the per-file overwrite did not stick
    with pytest.raises(TypeError, match="unknown option 'crfs'"):
        Upscaler(crfs=3)
    with pytest.raises(TypeError, match="build another Upscaler"):
        up.file(tmp_path / "a.mp4", tmp_path / "c.mp4", scale=4)
    with pytest.raises(ValueError, match="uint8"):
        up.image(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(AttributeError):
        vsr.NoSuchThing  # noqa: B018
