"""Runtimes: ONNX export, equivalence with torch, the auto choice and its cache, missing extras."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import shared, write_clip
from torch import nn

import vsr.runtime as rt
from cli import main
from vsr.engine import Engine
from vsr.io.images import write_rgb
from vsr.weights import load_checkpoint, load_model, model_from_checkpoint, weights_dir

INSTALLED = [n for n in ("onnxruntime", "openvino") if rt.available(n)]
needs_extras = pytest.mark.skipif(not INSTALLED, reason="neither onnxruntime nor openvino is installed "
                                  "(pip install 'vsr[onnx,openvino]')")


def _shipped() -> list[Path]:
    return sorted(p for p in weights_dir().glob("*.pt"))


@needs_extras
@pytest.mark.parametrize("name", INSTALLED)
@pytest.mark.parametrize("path", _shipped(), ids=lambda p: p.stem)
def test_every_shipped_checkpoint_agrees_with_torch(path: Path, name: str):
    """Within 1e-4 on the [0, 1] scale, at a batch of 2 and odd frame sizes (dynamic axes)."""
    model = model_from_checkpoint(load_checkpoint(path))
    runner = rt.build_runner(name, model, "fp32")
    assert runner is not None  # every name in INSTALLED is a runtime other than torch
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for shape in ((2, 1, 23, 31), (1, 1, 40, 17)):
            x = torch.rand(*shape, generator=gen)
            ref = model(x).float()
            got = runner(x)
            assert got.shape == ref.shape
            assert float((got - ref).abs().max()) < 1e-4


@needs_extras
@pytest.mark.parametrize("name", INSTALLED)
@pytest.mark.parametrize("scale", [2, 3])
def test_space_to_depth_net_runs_at_odd_sizes(name: str, scale: int):
    """An unshuffled body needs even sizes inside the graph: the runner pads and crops as torch does."""
    from vsr.models import create_model

    torch.manual_seed(scale)
    model = create_model("fast", scale=scale, blocks=2, channels=8, unshuffle=2, fused=True).eval()
    runner = rt.build_runner(name, model, "fp32")
    assert runner is not None
    with torch.inference_mode():
        for shape in ((2, 1, 23, 31), (1, 1, 40, 18)):
            x = torch.rand(*shape)
            ref = model(x)
            got = runner(x)
            assert got.shape == ref.shape == (shape[0], 1, shape[2] * scale, shape[3] * scale)
            assert float((got - ref).abs().max()) < 1e-4


@needs_extras
def test_space_to_depth_export_is_checked_at_an_odd_size_and_says_what_it_needs(tmp_path: Path):
    pytest.importorskip("onnxruntime")
    from vsr.models import create_model
    from vsr.models.blocks import RangeGuard
    from vsr.models.ecb import size_multiple
    from vsr.weights import save_checkpoint

    kwargs = {"blocks": 2, "channels": 8, "unshuffle": 2, "fused": True}
    net = create_model("fast", scale=2, **kwargs)
    assert size_multiple(RangeGuard(net, 0.0, 1.0)) == 2 and size_multiple(create_model("fast", scale=2)) == 1
    ckpt = tmp_path / "s2d.pt"
    save_checkpoint(ckpt, model="fast", model_kwargs=kwargs, scale=2, state_dict=net.state_dict())
    res = CliRunner().invoke(main, ["export", "fast", "--scale", "2", "--weights", str(ckpt),
                                    "-o", str(tmp_path / "s2d.onnx")])
    assert res.exit_code == 0, res.output
    assert "agrees with torch" in res.output and "divisible by 2" in res.output


@needs_extras
def test_export_cli_writes_a_dynamic_graph(tmp_path: Path):
    onnx = pytest.importorskip("onnx")
    out = tmp_path / "fast_x2.onnx"
    res = CliRunner().invoke(main, ["export", "fast", "--scale", "2", "-o", str(out)])
    assert res.exit_code == 0, res.output
    graph = onnx.load(str(out))
    dims = [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["n", 1, "h", "w"]
    ops = {node.op_type for node in graph.graph.node}
    assert "Conv" in ops and not list(tmp_path.glob("*.part"))
    # the exported graph is the fused form: one conv per block, plus head and tail
    ckpt = load_checkpoint(Path(__file__).resolve().parents[1] / "weights" / "fast_x2.pt")
    blocks = ckpt["model_kwargs"].get("blocks", 4)
    assert sum(node.op_type == "Conv" for node in graph.graph.node) == blocks + 2
    # and it carries the engine's range guard: on superblack input it gives what the engine gives
    assert {"Clip", "Resize"} <= ops
    ort = pytest.importorskip("onnxruntime")
    y = np.random.default_rng(5).integers(0, 40, (1, 24, 30), dtype=np.uint8)  # mostly below 16
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"lr": (y[:, None].astype(np.float32) / 255)})[0][:, 0]
    engine = Engine(load_model("fast", 2)[0], device="cpu", dtype="fp32", batch_size=1)
    expect = engine.upscale_y(y).astype(int)
    assert np.abs(np.clip(np.round(got * 255), 0, 255).astype(int) - expect).max() <= 1
    again = CliRunner().invoke(main, ["export", "fast", "--scale", "2", "-o", str(out)])
    assert again.exit_code == 1 and "exists" in again.output


@needs_extras
@pytest.mark.parametrize("name", INSTALLED)
def test_engine_output_matches_torch_in_code_values(name: str):
    from vsr.weights import load_model

    model, _ = load_model("espcn", 3)
    y = np.random.default_rng(1).integers(0, 256, (3, 30, 44), dtype=np.uint8)
    ref = Engine(model, device="cpu", dtype="fp32", runtime="torch", batch_size=2).upscale_y(y)
    got = Engine(model, device="cpu", dtype="fp32", runtime=name, batch_size=2, tile=16).upscale_y(y)
    diff = np.abs(ref.astype(int) - got.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


@needs_extras
@pytest.mark.parametrize("name", INSTALLED)
def test_eval_psnr_within_a_hundredth_of_torch(name: str):
    from pipelines.evaluate import evaluate_sets
    from vsr.config import EngineConfig

    set5 = shared("Set5")
    psnr = {}
    for runtime in ("torch", name):
        results, info = evaluate_sets(EngineConfig(model="fast", scale=2, dtype="fp32", batch_size=1,
                                                   runtime=runtime), [set5], with_ssim=False)
        assert info.runtime == runtime
        psnr[runtime] = results[0].psnr
    assert abs(psnr[name] - psnr["torch"]) < 0.01


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = 2
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


def test_auto_picks_a_measured_candidate_and_caches_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VSR_CACHE_DIR", str(tmp_path))
    model = _Tiny().eval()
    first = rt.pick_runtime(model, ("fp32",), probe_size=(24, 32), reps=1)
    expected = {f"{n}/fp32" for n in ("torch", *INSTALLED)}
    if len(expected) == 1:
        assert first.runtime == "torch" and first.reason.startswith("rule")
        return
    assert first.reason == "probe" and first.ms is not None and set(first.ms) == expected
    # the fastest one measured (a single fp32 set: no bf16 margin involved)
    assert first.ms[f"{first.runtime}/fp32"] == min(first.ms.values())
    second = rt.pick_runtime(model, ("fp32",), probe_size=(24, 32), reps=1)
    assert (second.runtime, second.reason) == (first.runtime, "cache")
    # other weights are another key: measured again
    with torch.no_grad():
        model.conv.weight.add_(1.0)
    assert rt.pick_runtime(model, ("fp32",), probe_size=(24, 32), reps=1).reason == "probe"
    # a damaged cache is measured again, never an error
    (tmp_path / "runtime.json").write_text("{not json")
    assert rt.pick_runtime(model, ("fp32",), probe_size=(24, 32), reps=1).reason == "probe"
    assert json.loads((tmp_path / "runtime.json").read_text())


def test_bf16_needs_its_margin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A bf16 pair that is only slightly faster than fp32 loses (it costs precision)."""
    monkeypatch.setenv("VSR_CACHE_DIR", str(tmp_path))
    times = {("torch", "fp32"): 1.0, ("torch", "bf16"): 0.95}
    monkeypatch.setattr(rt, "available", lambda name: name == "torch")
    monkeypatch.setattr(rt, "_time_runner", lambda fn, x, reps, **_: times[fn.key])

    def fake_fn(model, precision):
        fn = lambda x: x  # noqa: E731
        fn.key = ("torch", precision)
        return fn

    monkeypatch.setattr(rt, "_torch_fn", fake_fn)
    assert rt.pick_runtime(_Tiny(), ("fp32", "bf16"), use_cache=False).precision == "fp32"
    times[("torch", "bf16")] = 0.5
    assert rt.pick_runtime(_Tiny(), ("fp32", "bf16"), use_cache=False).precision == "bf16"


def test_missing_runtime_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(rt, "available", lambda name: name == "torch")
    with pytest.raises(rt.RuntimeUnavailable, match=r"pip install 'vsr\[openvino\]'"):
        rt.require("openvino")
    src = write_clip(tmp_path / "in.mp4", frames=3)
    res = CliRunner().invoke(main, ["upscale", str(src), str(tmp_path / "out.mp4"), "--model", "fast",
                                    "--runtime", "openvino", "--quiet"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == ["Error: --runtime openvino: openvino (and onnx) are not installed; "
                                               "pip install 'vsr[openvino]'"]
    assert not list(tmp_path.glob("out.mp4*"))
    # auto still runs, on torch
    res = CliRunner().invoke(main, ["upscale", str(src), str(tmp_path / "out.mp4"), "--model", "fast", "--quiet"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "out.mp4.summary.json").read_text())
    assert summary["engine"]["runtime"] == "torch"


def test_runtime_precision_mismatch_is_refused():
    with pytest.raises(rt.RuntimeUnavailable, match="runs fp32, not bf16"):
        rt.require("onnxruntime", "bf16")
    with pytest.raises(rt.RuntimeUnavailable, match="unknown runtime"):
        rt.require("tensorrt")


@needs_extras
def test_summary_records_the_runtime_that_ran(tmp_path: Path):
    name = INSTALLED[-1]
    src = write_clip(tmp_path / "in.mp4", frames=3)
    dst = tmp_path / "out.mp4"
    res = CliRunner().invoke(main, ["upscale", str(src), str(dst), "--model", "fast", "--runtime", name,
                                    "--dtype", "fp32", "--quiet"])
    assert res.exit_code == 0, res.output
    engine = json.loads((tmp_path / "out.mp4.summary.json").read_text())["engine"]
    assert engine["runtime"] == name and engine["dtype"] == "float32"


def test_int8_guard_offers_only_small_drops_that_are_faster():
    assert rt.int8_verdict(0.05, 1.6)[0]
    offered, reason = rt.int8_verdict(0.11, 2.0)
    assert not offered and "0.110 dB > 0.10 dB" in reason
    offered, reason = rt.int8_verdict(0.02, 1.2)
    assert not offered and "1.20x" in reason
    assert not rt.int8_verdict(float("nan"), 3.0)[0]


def test_int8_without_a_shipped_graph_is_one_clear_line(tmp_path: Path):
    src = write_clip(tmp_path / "in.mp4", frames=3)
    res = CliRunner().invoke(main, ["upscale", str(src), str(tmp_path / "out.mp4"), "--model", "fast",
                                    "--precision", "int8", "--quiet"])
    assert res.exit_code == 1
    line = res.output.strip()
    assert line.startswith("Error: --precision int8 is not offered for fast x2") and "\n" not in line
    assert not list(tmp_path.glob("out.mp4*"))


@pytest.mark.skipif(not (rt.available("openvino") and __import__("importlib").util.find_spec("nncf")),
                    reason="int8 needs openvino and nncf (pip install 'vsr[int8]')")
def test_int8_graph_runs_in_the_engine(tmp_path: Path):
    import openvino as ov

    torch.manual_seed(0)
    model = _Tiny().eval()
    rng = np.random.default_rng(0)
    patches = [rng.random((1, 1, 24, 24), dtype=np.float32) for _ in range(8)]
    graph = tmp_path / "tiny.int8.xml"
    ov.save_model(rt.quantize_int8(model, patches), str(graph), compress_to_fp16=False)
    y = rng.integers(0, 256, (2, 20, 28), dtype=np.uint8)
    ref = Engine(model, device="cpu", dtype="fp32", runtime="torch").upscale_y(y)
    got = Engine(model, device="cpu", dtype="int8", runtime="auto", int8_graph=graph)
    assert got.choice.precision == "int8" and got.runtime == "openvino"
    out = got.upscale_y(y)
    assert out.shape == ref.shape
    # quantized, so not equal, but the same picture: within a few code values
    assert 0 < np.abs(out.astype(int) - ref.astype(int)).mean() < 4
    with pytest.raises(rt.RuntimeUnavailable, match="runs on OpenVINO"):
        Engine(model, device="cpu", dtype="int8", runtime="onnxruntime", int8_graph=graph)


def test_bench_times_every_installed_runtime(tmp_path: Path):
    from pipelines.bench import run_bench
    from vsr.config import EngineConfig, UpscaleConfig

    src = write_clip(tmp_path / "in.mp4", frames=6, size=(96, 64), crf=32)  # lossy: the compressed path
    report = run_bench(src, UpscaleConfig(engine=EngineConfig(model="fast", scale=2)), frames=4)
    assert report.frames == 6 and report.size_out == (192, 128)
    assert {f"{n}/fp32" for n in ("torch", *INSTALLED)} <= set(report.engine_fps)
    assert all(fps > 0 for fps in report.engine_fps.values())
    assert report.auto.split("/")[0] in ("torch", *INSTALLED)
    assert report.e2e_fps_model > 0 and report.e2e_fps_bicubic > 0
    # what it times end to end is what `vsr upscale` runs on this clip: the same weights and blend
    res = CliRunner().invoke(main, ["upscale", str(src), str(tmp_path / "up.mp4"), "--model", "fast", "--quiet"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "up.mp4.summary.json").read_text())
    assert report.weights == Path(summary["engine"]["weights"]).name
    assert report.temporal == summary["temporal"]["on"] == ("temporal" in report.e2e_split_model) is True
    res = CliRunner().invoke(main, ["bench", str(src), "--model", "fast", "--frames", "4",
                                    "--json-out", str(tmp_path / "b.json")])
    assert res.exit_code == 0, res.output
    assert "engine torch/fp32" in res.output
    assert json.loads((tmp_path / "b.json").read_text())["engine_fps"]


def test_probe_runs_are_bounded(monkeypatch: pytest.MonkeyPatch):
    """Timed runs stop at the budget, and a warm-up past the give-up time is not timed further."""
    clock = iter(float(i) for i in range(1000))  # every perf_counter call advances one second
    monkeypatch.setattr(rt.time, "perf_counter", lambda: next(clock))
    calls: list[int] = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return x

    x = torch.zeros(1)
    assert rt._time_runner(fn, x, reps=3, budget_s=10.0) == 1.0 and len(calls) == 4  # warm-up + 3
    calls.clear()
    assert rt._time_runner(fn, x, reps=3, budget_s=1.0) == 1.0 and len(calls) == 2  # warm-up + 1
    calls.clear()
    assert rt._time_runner(fn, x, reps=3, give_up_s=0.5) == 1.0 and len(calls) == 1  # warm-up only


def test_a_slow_candidate_is_not_timed_past_its_warm_up(monkeypatch: pytest.MonkeyPatch):
    """The probe passes each later candidate GIVE_UP times the best time so far."""
    seen: list[float] = []

    def fake(fn, x, reps, *, give_up_s=float("inf")):
        seen.append(give_up_s)
        return fn.key

    monkeypatch.setattr(rt, "available", lambda name: name == "torch")
    monkeypatch.setattr(rt, "_time_runner", fake)

    def fake_fn(model, precision):
        fn = lambda x: x  # noqa: E731
        fn.key = {"fp32": 2.0, "bf16": 1.0}[precision]
        return fn

    monkeypatch.setattr(rt, "_torch_fn", fake_fn)
    assert rt.pick_runtime(_Tiny(), ("fp32", "bf16"), use_cache=False).precision == "bf16"
    assert seen == [float("inf"), rt.GIVE_UP * 2.0]


def test_probe_size_follows_the_frames():
    """The probe input is the job's frame (or tile) size, rounded up to 16 and capped at 640x360."""
    assert rt.probe_size_for(None) == rt.PROBE_SIZE == (360, 640)
    assert rt.probe_size_for((144, 176)) == (144, 176)
    assert rt.probe_size_for((36, 44)) == (48, 48)
    assert rt.probe_size_for((1080, 1920)) == (360, 640)
    assert rt.probe_size_for((1080, 1920), tile=100) == (112, 112)


def test_engine_probes_at_the_frame_size(monkeypatch: pytest.MonkeyPatch):
    import vsr.engine as engine_mod

    seen: list[tuple[int, int]] = []

    def fake_pick(model, precisions, *, runtimes=None, probe_size=rt.PROBE_SIZE, **_):
        seen.append(probe_size)
        return rt.Choice("torch", precisions[0], reason="probe")

    monkeypatch.setattr(engine_mod, "pick_runtime", fake_pick)
    Engine(_Tiny(), device="cpu", dtype="fp32", runtime="auto", frame_size=(36, 44))
    Engine(_Tiny(), device="cpu", dtype="fp32", runtime="auto")
    assert seen == [(48, 48), (360, 640)]


def test_clip_frame_size_for_the_probe(tmp_path: Path):
    """What `vsr upscale` tells the engine: a video's or an image's size, its LR copy's in --eval mode,
    else None."""
    from pipelines.clip import engine_frame_size
    from vsr.config import EngineConfig, UpscaleConfig

    clip = write_clip(tmp_path / "c.mp4", frames=2, size=(64, 48))
    assert engine_frame_size(clip, UpscaleConfig()) == (48, 64)
    assert engine_frame_size(clip, UpscaleConfig(engine=EngineConfig(scale=4), eval=True)) == (12, 16)
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    assert engine_frame_size(tmp_path / "junk.mp4", UpscaleConfig()) is None  # the reader reports it
    assert engine_frame_size(tmp_path / "a.png", UpscaleConfig()) is None  # missing
    write_rgb(tmp_path / "b.png", np.zeros((30, 50, 3), np.uint8))
    assert engine_frame_size(tmp_path / "b.png", UpscaleConfig()) == (30, 50)
    assert engine_frame_size(tmp_path / "b.png", UpscaleConfig(engine=EngineConfig(scale=3), eval=True)) == (10, 16)
