"""The flow-guided temporal blend (vsr.temporal): it averages codec noise away on moving content,
leaves unrelated frames alone, streams exactly as it computes in one go, and `--temporal auto` runs
it only on compressed sources of known QP."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import clip_prefix, shared

from cli import main
from pipelines.clip import temporal_choice
from vsr.engine import EngineInfo
from vsr.metrics import psnr
from vsr.temporal import TemporalBlend, TemporalParams, TemporalStage, blend_sequence


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    """float32 (h, w) smooth random texture in about [40, 215]."""
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 2.0)
    t = (t - t.mean()) / (t.std() + 1e-6)
    return np.clip(128 + 40 * t, 0, 255).astype(np.float32)


def _moving(frames: int = 7, size: int = 96, step: int = 2, noise: float = 4.0, seed: int = 0):
    """A texture panning ``step`` HR px per frame: (truth, noisy 'upscaled' planes, their LR luma)."""
    base = _texture(size, size + step * frames, seed)
    rng = np.random.default_rng(seed + 1)
    truth = np.stack([base[:, k * step: k * step + size] for k in range(frames)])
    sr = np.clip(np.rint(truth + rng.normal(0, noise, truth.shape)), 0, 255).astype(np.uint8)
    lr = np.stack([cv2.resize(t, (size // 2, size // 2), interpolation=cv2.INTER_AREA) for t in truth])
    return truth.round().astype(np.uint8), sr, np.clip(np.rint(lr), 0, 255).astype(np.uint8)


def test_blend_removes_noise_on_moving_content():
    truth, sr, lr = _moving()
    out = blend_sequence(lr, sr, TemporalParams(), qp=34.0)
    assert out.dtype == np.uint8 and out.shape == sr.shape
    before = np.mean([psnr(s, t, crop_border=8) for s, t in zip(sr, truth, strict=True)])
    after = np.mean([psnr(o, t, crop_border=8) for o, t in zip(out, truth, strict=True)])
    assert after > before + 1.0, (before, after)


def test_blend_leaves_unrelated_frames_alone():
    # a scene cut at every frame: no neighbour matches, so none may leak in
    sr = np.stack([_texture(64, 64, seed).round().astype(np.uint8) for seed in range(5)])
    lr = np.stack([cv2.resize(s, (32, 32), interpolation=cv2.INTER_AREA) for s in sr])
    out = blend_sequence(lr, sr, TemporalParams(), qp=34.0)
    assert min(psnr(o, s) for o, s in zip(out, sr, strict=True)) > 40.0


def test_tolerance_follows_the_quantiser():
    p = TemporalParams()
    assert p.sigma(2, 34.0) == pytest.approx(2 * p.sigma(2, 28.0))
    assert p.sigma(2, 28.0) == pytest.approx(4 * 0.7) and p.sigma(4, None) == pytest.approx(6 * 0.7)
    _, sr, lr = _moving(noise=3.0)
    changed = {qp: np.abs(blend_sequence(lr, sr, p, qp).astype(int) - sr).mean() for qp in (16.0, 28.0, 40.0)}
    assert changed[16.0] < changed[28.0] < changed[40.0]  # a finer quantiser: less is averaged
    with pytest.raises(ValueError, match="radius"):
        TemporalParams(radius=0)
    with pytest.raises(ValueError, match="weight"):
        TemporalParams(weight=0.0)
    with pytest.raises(ValueError, match="strength"):
        TemporalParams(strength=-1.0)


def test_ten_bit_planes():
    _, sr, lr = _moving()
    out = blend_sequence((lr.astype(np.uint16) << 2), (sr.astype(np.uint16) << 2), TemporalParams(), 34.0, bit_depth=10)
    assert out.dtype == np.uint16 and int(out.max()) <= 1023
    eight = blend_sequence(lr, sr, TemporalParams(), 34.0)
    assert np.abs(out.astype(float) / 4 - eight).max() <= 1.0  # the same blend, at 4x the code values


def test_stage_streams_what_the_sequence_gives_in_file_order():
    _, sr, lr = _moving(frames=9)
    params = TemporalParams(radius=2)
    expected = blend_sequence(lr, sr, params, 30.0)
    items: list[object] = []
    for t in range(len(sr)):
        items.append({"t": t, "lr": lr[t], "sr": sr[t]})
        if t % 3 == 0:
            items.append(f"packet after {t}")  # not a frame: passes through in place
    out: list[object] = []
    stage: TemporalStage[object] = TemporalStage(
        params, 30.0, out.append,
        lambda item: (item["lr"], item["sr"], 8) if isinstance(item, dict) else None,
        lambda item, y: item.__setitem__("sr", y))
    for k, item in enumerate(items):
        stage.put(item)
        frames_out = sum(isinstance(i, dict) for i in out)
        frames_in = sum(isinstance(i, dict) for i in items[: k + 1])
        assert frames_out >= frames_in - params.radius  # it holds no more than the window
    stage.finish()
    assert [i if isinstance(i, str) else i["t"] for i in out] == [i if isinstance(i, str) else i["t"] for i in items]
    for item in out:
        if isinstance(item, dict):
            np.testing.assert_array_equal(item["sr"], expected[item["t"]])


def test_blend_with_no_neighbours_is_the_frame():
    _, sr, lr = _moving(frames=1)
    np.testing.assert_array_equal(TemporalBlend(TemporalParams(), 30.0)(lr[0], sr[0], []), sr[0])


def _info(source: str, qp: float | None) -> EngineInfo:
    return EngineInfo(model="fast", scale=2, weights=None, source=source, device="cpu", dtype="float32",
                      runtime="torch", runtime_reason="asked", passes=1, total_scale=2, ensemble=1, qp=qp)


def test_auto_runs_only_on_compressed_sources_of_known_qp():
    assert temporal_choice("auto", _info("compressed", 29.0)).on
    assert temporal_choice("auto", _info("compressed", 29.0)).sigma == pytest.approx(4 * 0.7 * 2 ** (1 / 6), abs=1e-3)
    for info, why in ((_info("clean", None), "runs its clean-source weights"),
                      (_info("compressed", None), "no measured quantiser"), (_info("given", 29.0), "given weights")):
        choice = temporal_choice("auto", info)
        assert not choice.on and why in choice.reason
    assert temporal_choice("on", _info("clean", None)).on
    assert not temporal_choice("off", _info("compressed", 29.0)).on


@pytest.mark.skipif(not shared("clips", "carphone_pristine.mp4").exists(), reason="../shared/data/clips not present")
def test_eval_crf_on_a_real_clip(tmp_path: Path):
    """`--eval --eval-crf 33` on real footage: auto blends (summary says so, with the QP), scores
    higher than off, and writes the same frames at the same times."""
    src = clip_prefix(shared("clips", "carphone_pristine.mp4"), tmp_path / "carphone30.mkv", 30)
    runs = {}
    for mode in ("auto", "off"):
        dst = tmp_path / f"{mode}.mp4"
        res = CliRunner().invoke(main, ["upscale", str(src), str(dst), "--eval", "--eval-crf", "33", "--temporal",
                                        mode, "--quiet", "--no-ssim", "--preset", "ultrafast"])
        assert res.exit_code == 0, res.output
        runs[mode] = json.loads(Path(str(dst) + ".summary.json").read_text())
        runs[mode]["times"] = [row.split(",")[2] for row in Path(str(dst) + ".frames.csv").read_text().splitlines()[1:]]
    auto, off = runs["auto"], runs["off"]
    assert auto["temporal"]["on"] and "compressed source, median QP" in auto["temporal"]["reason"]
    assert auto["engine"]["qp"] == pytest.approx(auto["temporal"]["qp"]) and auto["temporal"]["qp"] > 24
    assert not off["temporal"]["on"] and "temporal" not in off["split_seconds"]
    assert auto["frames"] == off["frames"] == 30 and auto["times"] == off["times"]
    assert auto["means"]["psnr_bicubic"] == pytest.approx(off["means"]["psnr_bicubic"])
    assert auto["means"]["psnr"] > off["means"]["psnr"] + 0.05
