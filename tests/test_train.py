from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from cli import main
from vsr.config import EngineConfig, TrainConfig
from vsr.engine import build_engine
from vsr.models import create_model
from vsr.train import fit, lr_at
from vsr.train.loop import _init_from, embed_state_dict
from vsr.weights import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def _cfg(data: Path, out: Path, **kw) -> TrainConfig:
    base: dict[str, Any] = dict(
        model="espcn", scale=2, data=(data,), out=out, iterations=6, batch_size=4, patch_size=24,
        patches_per_image=2, lr=1e-3, val_every=3, ckpt_every=3, workers=0, seed=3,
        model_kwargs={"activation": "prelu", "num_features": 8, "mid_features": 8}, threads=1)
    base.update(kw)
    return TrainConfig(**base)


class _Killed(Exception):
    pass


def _gan_kw(tmp_path: Path) -> dict:
    """A tiny SRResNet generator checkpoint (also the feature net) for --gan runs."""
    kwargs = {"num_features": 8, "num_blocks": 2}
    gen = tmp_path / "gen.pt"
    torch.manual_seed(0)
    save_checkpoint(gen, model="srresnet", model_kwargs=kwargs, scale=2,
                    state_dict=create_model("srresnet", scale=2, **kwargs).state_dict())
    return dict(model="srgan", model_kwargs=kwargs, gan=True, init=gen, feature_net=gen, d_features=8)


@pytest.mark.parametrize("variant", ["plain", "gain-sampler", "gan"])
def test_resume_reaches_the_same_weights(frames_dir: Path, tmp_path: Path, variant: str):
    extra = {"plain": {}, "gain-sampler": {"sampler": "gain", "sampler_round": 2},  # checkpoint at 3: mid-round
             "gan": _gan_kw(tmp_path)}[variant]
    cfg = _cfg(frames_dir, tmp_path / "a", ema=0.9, **extra)
    fit(cfg)

    def crash_at_4(it: int, loss: float, seconds: float) -> None:
        if it == 4:  # after the checkpoint at 3, before the one at 6
            raise _Killed

    cut = TrainConfig(**{**cfg.__dict__, "out": tmp_path / "b"})
    with pytest.raises(_Killed):
        fit(cut, progress=crash_at_4)
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=True)["iteration"] == 3
    resumed = fit(TrainConfig(**{**cut.__dict__, "resume": True}))
    assert resumed.iterations == 6
    for name in ("final.pt",):
        a = load_checkpoint(tmp_path / "a" / name)["state_dict"]
        b = load_checkpoint(tmp_path / "b" / name)["state_dict"]
        assert all(torch.equal(a[k], b[k]) for k in a)
    sa = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert all(torch.equal(sa["model"][k], sb["model"][k]) for k in sa["model"])
    assert sa["optimizer"]["state"][0]["step"] == sb["optimizer"]["state"][0]["step"]
    if variant == "gain-sampler":  # the probabilities moved, and identically
        assert not torch.allclose(sa["sampler"]["probs"], torch.full_like(sa["sampler"]["probs"], 1 / 64))
        assert torch.equal(sa["sampler"]["probs"], sb["sampler"]["probs"])
    if variant == "gan":  # the discriminator state is in the checkpoint and resumed exactly
        da, db = sa["discriminator"]["model"], sb["discriminator"]["model"]
        assert da and all(torch.equal(da[k], db[k]) for k in da)


@pytest.mark.parametrize("native", [True, False])
def test_bf16_training_warns_only_without_native_bf16(frames_dir: Path, tmp_path: Path, monkeypatch, caplog, native):
    import vsr.train.loop as loop

    monkeypatch.setattr(loop, "cpu_has_bf16", lambda: native)
    with caplog.at_level("WARNING", logger="vsr.train.loop"):
        fit(_cfg(frames_dir, tmp_path / "run", iterations=1, precision="bf16", device="cpu"))
    warned = [r for r in caplog.records if "without native bf16" in r.getMessage()]
    assert len(warned) == (0 if native else 1)


def test_training_improves_over_bicubic_and_loads_in_engine(frames_dir: Path, tmp_path: Path):
    cfg = _cfg(frames_dir, tmp_path / "run", iterations=60, val=frames_dir, val_every=60, ckpt_every=60,
               lr=3e-3, batch_size=8, patch_size=32)
    result = fit(cfg)
    with open(tmp_path / "run" / "val.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and rows[0]["iteration"] == "60"
    engine, info = build_engine(EngineConfig(model="espcn", scale=2, weights=tmp_path / "run" / "best.pt",
                                             device="cpu", dtype="fp32"))
    assert info.weights is not None and info.weights.endswith("best.pt")
    from vsr.evaluate import evaluate_images, summarize

    mean = summarize(evaluate_images(engine.upscale_y, engine.bicubic_y, frames_dir, 2, with_ssim=False))
    # Same Y, crop, shave and rounding: the figures agree to float noise. Not exactly: training
    # validates with NCHW weights, the engine runs channels-last, and on some CPUs (AVX512_BF16
    # without AMX) oneDNN's two kernels round a few pixels differently (4e-5 dB seen). A
    # convention mismatch (full-swing Y, another shave) moves PSNR by tenths of a dB.
    assert mean["psnr"] == pytest.approx(result.best_psnr, abs=1e-3)
    assert mean["psnr"] > mean["psnr_bicubic"] + 0.05  # it learned something real
    assert 0.0 <= result.data_wait_share < 1.0


def test_lr_schedules():
    cfg = TrainConfig(model="espcn", scale=2, data=(Path("."),), out=Path("."), iterations=100, lr=1.0,
                      lr_min=0.0, warmup=10)
    assert lr_at(cfg, 0) == pytest.approx(0.1)
    assert lr_at(cfg, 10) == pytest.approx(1.0)
    assert lr_at(cfg, 99) < 0.01
    step = TrainConfig(**{**cfg.__dict__, "schedule": "step", "warmup": 0})
    assert [lr_at(step, i) for i in (0, 50, 75, 95)] == [1.0, 0.5, 0.25, 0.125]


def test_extract_frames_then_train_cli(tmp_path: Path):
    from conftest import shared

    clip = shared("clips", "carphone_pristine.mp4")
    runner = CliRunner()
    res = runner.invoke(main, ["extract-frames", str(clip), str(tmp_path / "frames"), "--every", "20", "--quiet"])
    assert res.exit_code == 0, res.output
    pngs = sorted((tmp_path / "frames").glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:06d}.png" for i in range(0, 120, 20)]
    res = runner.invoke(main, ["extract-frames", str(clip), str(tmp_path / "yframes"), "--every", "60",
                               "--y-only", "--quiet"])
    assert res.exit_code == 0 and len(list((tmp_path / "yframes").glob("*.y.png"))) == 2
    res = runner.invoke(main, [
        "train", "--model", "espcn", "--scale", "2", "--data", str(tmp_path / "frames"),
        "--data", str(tmp_path / "yframes"), "--val", str(tmp_path / "frames"), "--out", str(tmp_path / "run"),
        "--iterations", "8", "--batch-size", "4", "--patch-size", "32", "--patches-per-image", "2",
        "--val-every", "4", "--ckpt-every", "4", "--workers", "0", "--quiet", "--model-arg", "num_features=8",
    ])
    assert res.exit_code == 0, res.output
    ckpt = load_checkpoint(tmp_path / "run" / "best.pt")
    assert ckpt["model"] == "espcn" and ckpt["scale"] == 2 and ckpt["model_kwargs"] == {"num_features": 8}
    assert ckpt["meta"]["iteration"] in (4, 8)
    assert (tmp_path / "run" / "command.txt").read_text().startswith("vsr ")  # the line the model card quotes


def test_two_cpu_ranks_with_torchrun(frames_dir: Path, tmp_path: Path):
    pytest.importorskip("torch.distributed.run")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29517",
           str(ROOT / "cli.py"), "train", "--model", "espcn", "--scale", "2", "--data", str(frames_dir),
           "--out", str(tmp_path / "ddp"), "--iterations", "4", "--batch-size", "8", "--patch-size", "24",
           "--patches-per-image", "2", "--workers", "0", "--threads", "1", "--quiet", "--ckpt-every", "2",
           "--model-arg", "num_features=8"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    # torchrun's own report comes last and names only the signal: show the ranks' lines before it too
    ranks = "\n".join(line for line in res.stderr.splitlines()[:-40] if line.strip())[-3000:]
    assert res.returncode == 0, ranks + "\n...\n" + res.stderr[-1500:]
    state = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert state["iteration"] == 4
    assert (tmp_path / "ddp" / "best.pt").exists()


@pytest.mark.parametrize(
    ("name", "small", "big"),
    [
        ("espcn", {"activation": "prelu"}, {"activation": "prelu", "num_features": 96, "mid_features": 48}),
        ("espcn", {"activation": "prelu"}, {"activation": "prelu", "mid_features": 40, "mid_layers": 3}),
        ("edsr", {"num_blocks": 2, "num_features": 16, "tail": "shuffle"},
         {"num_blocks": 2, "num_features": 24, "tail": "shuffle"}),
        ("edsr", {"num_blocks": 2, "num_features": 16, "tail": "shuffle"},
         {"num_blocks": 4, "num_features": 16, "tail": "shuffle"}),
        ("edsr", {"num_blocks": 2, "num_features": 16, "tail": "shuffle"},
         {"num_blocks": 3, "num_features": 24, "tail": "shuffle"}),
    ],
)
def test_init_grows_a_narrow_net_into_a_wider_deeper_one_exactly(name: str, small: dict, big: dict):
    """--init embeds a narrower checkpoint: the grown net starts as the same function, then trains."""
    torch.manual_seed(0)
    narrow = create_model(name, scale=3, **small).eval()
    for p in narrow.parameters():  # residual models start at zero output; make the test non-trivial
        torch.nn.init.normal_(p, std=0.05)
    wide = create_model(name, scale=3, **big).eval()
    copied, embedded = embed_state_dict(wide, narrow.state_dict())
    assert copied + embedded >= len(narrow.state_dict())  # every source tensor was loaded
    x = torch.rand(2, 1, 17, 23)
    with torch.no_grad():
        torch.testing.assert_close(wide(x), narrow(x), rtol=0, atol=1e-5)
    # the new channels and blocks are live: two optimizer steps move every parameter
    # (a new EDSR block's first conv gets a gradient once its zero second conv has moved)
    wide.train()
    before = [p.detach().clone() for p in wide.parameters()]
    opt = torch.optim.SGD(wide.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        wide(x).square().mean().backward()
        opt.step()
    moved = [not torch.equal(b, p) for b, p in zip(before, wide.parameters(), strict=True)]
    assert all(moved), [n for (n, _), m in zip(wide.named_parameters(), moved, strict=True) if not m]


def test_init_across_scales_copies_only_matching_tensors(tmp_path: Path):
    """x2 → x4: the body is copied; the last conv (other sub-pixel layout) keeps its zero start."""
    torch.manual_seed(0)
    x2 = create_model("edsr", scale=2, num_blocks=1, num_features=8, tail="shuffle")
    for p in x2.parameters():
        torch.nn.init.normal_(p, std=0.05)
    path = tmp_path / "x2.pt"
    save_checkpoint(path, model="edsr", model_kwargs={"num_blocks": 1, "num_features": 8, "tail": "shuffle"},
                    scale=2, state_dict=x2.state_dict())
    x4 = create_model("edsr", scale=4, num_blocks=1, num_features=8, tail="shuffle")
    _init_from(x4, path)
    torch.testing.assert_close(x4.get_parameter("head.weight"), x2.get_parameter("head.weight"))
    assert x4.get_parameter("tail.0.weight").abs().sum() == 0


def test_each_rank_takes_its_local_gpu(monkeypatch: pytest.MonkeyPatch):
    """torchrun sets LOCAL_RANK: rank 1 must run on cuda:1, not every rank on cuda:0."""
    from vsr.train import loop

    calls: list[torch.device] = []
    monkeypatch.setattr(loop.torch.cuda, "set_device", calls.append)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert loop._rank_device(torch.device("cuda")) == torch.device("cuda", 1)
    assert calls == [torch.device("cuda", 1)]
    assert loop._rank_device(torch.device("cuda", 0)) == torch.device("cuda", 0)  # an explicit index wins
    assert loop._rank_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.delenv("LOCAL_RANK")
    assert loop._rank_device(torch.device("cuda")) == torch.device("cuda")


def test_ema_warms_up_so_a_short_run_forgets_its_random_start():
    from vsr.train.loop import ema_decay

    assert ema_decay(0.999, 0) == pytest.approx(0.1) and ema_decay(0.999, 10**6) == 0.999
    kept = 1.0
    for it in range(2000):  # the share of the initial weights left in the average
        kept *= ema_decay(0.999, it)
    assert kept < 1e-3 < 0.999**2000
