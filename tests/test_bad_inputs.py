"""The bad-input corpus: every case ends in one clear line and a non-zero exit, or in a correct output.

For each case: no traceback (the CLI's exception is a clean SystemExit),
nothing at the final output path (nor a ``.part``), and the input unchanged.
The files are made here, from small synthetic clips and from the real ones.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import gradient_rgb, imread, shared, write_clip

from cli import main
from vsr.models import create_model
from vsr.weights import save_checkpoint

FFMPEG = shutil.which("ffmpeg")


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("corpus")
    files: dict[str, Path] = {}
    files["clip"] = write_clip(d / "clip.mp4", frames=30, size=(64, 48), audio=True)
    (d / "empty.mp4").write_bytes(b"")
    files["empty"] = d / "empty.mp4"
    files["garbage"] = d / "garbage.mp4"
    files["garbage"].write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    files["text"] = d / "notes.mkv"
    files["text"].write_text("this is not a video\n" * 50)
    img = d / "img.png"
    cv2.imwrite(str(img), gradient_rgb(40, 56)[:, :, ::-1])
    files["image"] = img
    tiny = d / "tiny.png"
    cv2.imwrite(str(tiny), np.full((1, 1, 3), 128, np.uint8))
    files["1x1"] = tiny
    cut_png = d / "cut.png"
    cut_png.write_bytes(img.read_bytes()[: img.stat().st_size // 2])
    files["cut_png"] = cut_png
    # truncated clips: the index-first mp4 cut at 99 %, and cut mkv / webm
    long = write_clip(d / "long.mp4", frames=120, size=(96, 64))
    if FFMPEG:
        for name, args in (("fs.mp4", ["-c", "copy", "-movflags", "+faststart"]), ("c.mkv", ["-c", "copy"]),
                           ("c.webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"])):
            whole = d / f"whole_{name}"
            subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-i", str(long), *args, str(whole)], check=True)
            data = whole.read_bytes()
            cut = d / f"cut_{name}"
            cut.write_bytes(data[: int(len(data) * 0.99)])
            files[f"cut_{name}"] = cut
        rotated = d / "rotated.mp4"
        subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-i", str(files["clip"]), "-c", "copy",
                        "-metadata:s:v:0", "rotate=90", str(rotated)], check=True)
        files["rotated"] = rotated
        audio_only = d / "audio.mp4"
        subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-i", str(files["clip"]), "-vn", "-c", "copy",
                        str(audio_only)], check=True)
        files["audio_only"] = audio_only
    # weights: random bytes, NaN, wrong shape, missing key, bad arguments, another scale, a pickle
    net = create_model("espcn", scale=2)
    sd = net.state_dict()
    files["w_garbage"] = d / "garbage.pt"
    files["w_garbage"].write_bytes(b"\x80\x04not a checkpoint" * 10)
    nan_sd = {k: torch.full_like(v, float("nan")) for k, v in sd.items()}
    for key, state, kwargs, scale in (
        ("w_nan", nan_sd, {}, 2),
        ("w_shape", {**sd, "body.0.weight": torch.zeros(3, 1, 5, 5)}, {}, 2),
        ("w_missing", {k: v for k, v in sd.items() if k != "body.0.bias"}, {}, 2),
        ("w_args", sd, {"no_such_argument": 3}, 2),
        ("w_x3", create_model("espcn", scale=3).state_dict(), {}, 3),
    ):
        files[key] = d / f"{key}.pt"
        save_checkpoint(files[key], model="espcn", model_kwargs=kwargs, scale=scale, state_dict=state)
    files["w_pickle"] = d / "pickle.pt"
    torch.save({"format": 1, "evil": Path("/")}, files["w_pickle"])
    # a real checkpoint cut off halfway, as an interrupted copy leaves it
    ckpt_bytes = files["w_x3"].read_bytes()
    files["w_truncated"] = d / "truncated.pt"
    files["w_truncated"].write_bytes(ckpt_bytes[: len(ckpt_bytes) // 2])
    return files


def _needs(corpus: dict[str, Path], *keys: str) -> None:
    for key in keys:
        if key not in corpus:
            pytest.skip(f"{key} needs the ffmpeg binary to be made")


# (case, input key, output name, extra args, expected words in the error line)
CASES = [
    ("missing input", None, "out.mp4", [], "not found"),
    ("empty file", "empty", "out.mp4", [], "empty"),
    ("garbage bytes", "garbage", "out.mp4", [], "not a readable"),
    ("text file", "text", "out.mkv", [], "not a readable"),
    ("audio only", "audio_only", "out.mp4", [], "audio-only"),
    ("truncated faststart mp4", "cut_fs.mp4", "out.mp4", [], "truncated"),
    ("truncated mkv", "cut_c.mkv", "out.mkv", [], "truncated"),
    ("truncated webm", "cut_c.webm", "out.webm", [], "truncated"),
    ("unsupported scale", "clip", "out.mp4", ["--scale", "5"], "5"),
    ("scale 8 in one pass", "clip", "out.mp4", ["--scale", "8"], "unsupported scale"),
    ("unknown device", "clip", "out.mp4", ["--device", "banana"], "unknown device"),
    ("unknown model", "clip", "out.mp4", ["--model", "nosuchmodel"], "'nosuchmodel' is not one of"),
    ("cuda without a GPU", "clip", "out.mp4", ["--device", "cuda:7"], "cuda"),
    ("corrupt weights", "clip", "out.mp4", ["--weights", "{w_garbage}"], "cannot read weights"),
    ("truncated weights", "clip", "out.mp4", ["--weights", "{w_truncated}"], "truncated or not a pytorch"),
    ("NaN weights", "clip", "out.mp4", ["--weights", "{w_nan}"], "non-finite"),
    ("wrong tensor shape", "clip", "out.mp4", ["--weights", "{w_shape}"], "shape"),
    ("missing tensor", "clip", "out.mp4", ["--weights", "{w_missing}"], "missing"),
    ("bad model arguments", "clip", "out.mp4", ["--weights", "{w_args}"], "cannot be built"),
    ("weights of another scale", "clip", "out.mp4", ["--weights", "{w_x3}"], "x3"),
    ("weights of another model", "clip", "out.mp4", ["--model", "edsr", "--weights", "{w_x3}"], "espcn"),
    ("a pickle, not weights", "clip", "out.mp4", ["--weights", "{w_pickle}"], "weights"),
    ("missing weights file", "clip", "out.mp4", ["--weights", "nope.pt"], "not found"),
    ("unknown codec", "clip", "out.mp4", ["--codec", "nosuchcodec"], "unknown encoder"),
    ("pix fmt the codec lacks", "clip", "out.mp4", ["--pix-fmt", "rgb48le"], "cannot write"),
    ("unsupported extension", "clip", "out.xyz", [], "unsupported output extension"),
    ("image to a video name", "image", "out.mp4", [], "matching extension"),
    ("video to an image name", "clip", "out.png", [], "matching extension"),
    ("output folder missing", "clip", "no/such/dir/out.mp4", [], "does not exist"),
    ("1x1 image at x3", "1x1", "out.png", ["--scale", "3", "--model", "bicubic"], None),
    ("1x1 image in eval mode", "1x1", "out.png", ["--eval", "--model", "bicubic"], "too small"),
    ("truncated png", "cut_png", "out.png", [], "cannot decode"),
    ("rotated clip on the ffmpeg backend", "rotated", "out.mp4", ["--backend", "ffmpeg"], "rotated"),
    ("missing reference", "clip", "out.mp4", ["--reference", "nope.mp4"], "not found"),
    ("eval with a reference", "clip", "out.mp4", ["--eval", "--reference", "{clip}"], "cannot be combined"),
    ("eval crf outside the codec's range", "clip", "out.mp4", ["--eval", "--eval-crf", "60"], "range 0..51"),
    ("eval crf without eval", "clip", "out.mp4", ["--eval-crf", "28"], "needs --eval"),
    ("eval codec unavailable", "clip", "out.mp4", ["--eval", "--eval-crf", "28", "--eval-codec", "nosuch"],
     "not supported"),
]


@pytest.mark.parametrize(("case", "key", "out_name", "extra", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(corpus: dict[str, Path], tmp_path: Path, case: str, key: str | None, out_name: str,
                   extra: list[str], words: str | None):
    if key is not None:
        _needs(corpus, key)
    src = corpus[key] if key else tmp_path / "missing.mp4"
    before = _digest(src)
    dst = tmp_path / out_name
    args = [a.format(**{k: str(v) for k, v in corpus.items()}) for a in extra]
    if "--model" not in args and "--weights" not in args:
        args += ["--model", "bicubic"]
    if "--model" not in args:
        args += ["--model", "espcn"]
    res = CliRunner().invoke(main, ["upscale", str(src), str(dst), "--quiet", "--preset", "ultrafast", *args])
    assert res.exception is None or isinstance(res.exception, SystemExit), f"{case}: traceback {res.exception!r}"
    assert _digest(src) == before, f"{case}: the input changed"
    assert not list(tmp_path.rglob("*.part")), f"{case}: a .part file was left"
    if words is None:  # a correct output is fine too: then it must be right
        if res.exit_code == 0:
            assert dst.is_file()
            out = imread(str(dst))
            assert out.shape == (3, 3, 3) and np.abs(out.astype(int) - 128).max() <= 1
        else:
            assert not dst.exists()
        return
    assert res.exit_code != 0, f"{case}: exit 0: {res.output}"
    assert not dst.exists(), f"{case}: something at the output path"
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    if res.exit_code == 2:  # click's usage error: the usage line, a hint, then the one error line
        lines = [ln for ln in lines if ln.startswith("Error:")]
    assert len(lines) == 1, f"{case}: not one line: {res.output!r}"
    assert words.lower() in lines[0].lower(), f"{case}: {lines[0]!r}"


def test_allow_partial_keeps_what_decodes(corpus: dict[str, Path], tmp_path: Path):
    _needs(corpus, "cut_c.mkv")
    dst = tmp_path / "out.mkv"
    res = CliRunner().invoke(main, ["upscale", str(corpus["cut_c.mkv"]), str(dst), "--model", "bicubic",
                                    "--allow-partial", "--quiet", "--preset", "ultrafast"])
    assert res.exit_code == 0, res.output
    with av.open(str(dst)) as c:
        n = sum(1 for _ in c.decode(video=0))
    assert 100 <= n < 120


def test_truncated_real_clip(tmp_path: Path):
    """A real clip cut at 99 %: refused, with nothing at the output."""
    src = shared("clips", "chaplin.mp4")
    data = src.read_bytes()
    cut = tmp_path / "chaplin_cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.99)])
    dst = tmp_path / "out.mp4"
    res = CliRunner().invoke(main, ["upscale", str(cut), str(dst), "--model", "bicubic", "--quiet",
                                    "--preset", "ultrafast"])
    assert res.exit_code != 0 and "truncated" in res.output, res.output
    assert not dst.exists() and not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("verb", sorted(main.commands))
def test_every_verb_has_examples(verb: str):
    res = CliRunner().invoke(main, [verb, "--help"])
    assert res.exit_code == 0
    assert "Examples:" in res.output and f"vsr {verb}" in res.output.split("Examples:")[1]


def test_no_progress_bar_fragments_when_stderr_is_not_a_terminal(corpus: dict[str, Path], tmp_path: Path):
    res = CliRunner().invoke(main, ["upscale", str(corpus["clip"]), str(tmp_path / "o.mp4"), "--model", "bicubic",
                                    "--preset", "ultrafast"])
    assert res.exit_code == 0
    assert "frame/s" not in res.output and "it/s" not in res.output and "\r" not in res.output
