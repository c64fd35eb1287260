"""The benchmark scripts run and report what they time (no timing asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vsr.models import create_model
from vsr.weights import save_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def test_checkpoint_speed_times_each_file_with_its_passes(tmp_path: Path):
    path = tmp_path / "tiny_x2.pt"
    kwargs = {"num_blocks": 1, "num_features": 8}
    model = create_model("edsr", scale=2, **kwargs)
    save_checkpoint(path, model="edsr", model_kwargs=kwargs, scale=2, state_dict=model.state_dict())
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "checkpoint_speed.py"), str(path), f"{path}:2",
         "--rounds", "2", "--width", "24", "--height", "16"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "median" in line]
    assert len(rows) == 2
    one_pass, two_passes = rows
    assert one_pass.startswith(str(path) + " ") and " x2 " in one_pass and one_pass.endswith("1.00x")
    # FILE:2 is the same weights run twice, so the engine reports x4
    assert two_passes.startswith(f"{path}:2 ") and " x4 " in two_passes


def test_gpu_check_says_so_without_cuda():
    import torch

    if torch.cuda.is_available():
        import pytest

        pytest.skip("a CUDA device is present: run benchmarks/gpu_check.py itself")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2 and result.stderr.strip() == "no CUDA device: nothing checked"


def _bench(name: str = "compressed"):
    """benchmarks/NAME.py as a module (it is a script, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_bench", ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_compressed_benchmark_runs_multi_frame_weights_on_windows(tmp_path: Path):
    """A 3-frame net grown from a single-frame checkpoint (neighbour weights zero) gives, through the
    benchmark's window runner, exactly the single-frame engine's output; with weight on the neighbours,
    a moving sequence's output changes and a still window's does not."""
    import copy

    import numpy as np
    import torch

    from vsr.engine import Engine
    from vsr.models.ecb import ECBNet
    from vsr.train.loop import embed_state_dict
    from vsr.weights import load_checkpoint, model_from_checkpoint

    bench = _bench()
    ckpt = load_checkpoint(ROOT / "weights" / "fast_x2.pt")
    trained = ckpt["train_form"]["model_kwargs"]
    size = {"blocks": 4, "channels": 16, **{k: v for k, v in trained.items() if k in ("blocks", "channels")}}
    grown = ECBNet(2, frames=3, **size)
    embed_state_dict(grown, ckpt["train_form"]["state_dict"])
    path = tmp_path / "mf.pt"
    save_checkpoint(path, model="fast", model_kwargs={**size, "frames": 3, "fused": True}, scale=2,
                    state_dict=copy.deepcopy(grown).reparameterize().state_dict())
    rng = np.random.default_rng(0)
    ys = np.stack([np.roll(rng.integers(16, 236, (24, 40), dtype=np.uint8), k, axis=1) for k in range(4)])
    window = bench.WindowEngine(path)
    single = Engine(model_from_checkpoint(ckpt), device="cpu", dtype=torch.float32, batch_size=1)
    expect = np.concatenate([single.upscale_y(ys[i : i + 1]) for i in range(4)])
    np.testing.assert_array_equal(window.upscale_sequence(ys), expect)
    with torch.no_grad():
        window.net.body[0].weight[:, 1:] += 0.05  # the neighbours now matter
    moved = window.upscale_sequence(ys)
    assert not np.array_equal(moved, expect)
    still = np.stack([ys[1]] * 3)
    np.testing.assert_array_equal(window.upscale_sequence(still)[1], window.upscale_y(ys[1:2])[0])


def test_compressed_benchmark_ensembles_reach_every_engine():
    """--ensembles N builds plain and routed engines that run the N-copy self-ensemble (their
    output differs from one copy's), and labels their rows LABEL+eN with the checkpoint kept."""
    import numpy as np

    bench = _bench()
    assert bench._ensemble_spec("qp24=weights/x.pt", 2) == "qp24+e2=weights/x.pt"
    assert bench._ensemble_spec("fast:auto", 1) == "fast:auto"
    ys = np.random.default_rng(1).integers(16, 236, (1, 24, 32), dtype=np.uint8)
    one = bench._engine("fast", 2, "fp32", "torch", 1)
    two = bench._engine("fast", 2, "fp32", "torch", 2)
    assert two.ensemble == 2 and not np.array_equal(one.upscale_y(ys), two.upscale_y(ys))
    routed = bench._engine("fast:auto", 2, "fp32", "torch", 4)
    assert routed.pick("compressed", 30.0).ensemble == 4 and routed.last.endswith("_qp24.pt")


def test_qp_floor_choice_maximises_the_routed_gain_ties_going_up():
    choose = _bench("qp_floor").choose_floor
    # the band loses below QP 26 and wins from 26 on: 26 is the best floor
    rows = [{"qp": q, "gain_base": 1.0, "gain_band": 1.0 + (0.1 if q >= 26 else -0.1)} for q in range(18, 34)]
    floor, means = choose(rows, range(14, 31))
    assert floor == 26 and means[26] > means[24] > means[14]
    # no stream between QP 22 and 26: floors 23-26 route alike, and the tie goes to the highest
    rows = [r for r in rows if not 22 < r["qp"] < 26]
    assert choose(rows, range(14, 31))[0] == 26


def test_qp_floor_measures_real_streams(tmp_path: Path):
    """Two Vimeo-90K septuplets at x2 through libx264 at CRF 14 and 30 with the shipped nets: the
    stronger compression reads as a higher QP and a lower bicubic PSNR, and every gain is finite."""
    import pytest

    bench = _bench("qp_floor")
    if not bench.DATA.is_dir():
        pytest.skip(f"{bench.DATA} absent: the Vimeo-90K sample of ../shared/data")
    from vsr.weights import qp_bands

    band = qp_bands("fast", 2)
    if not band:
        pytest.skip("no x2 QP band shipped")
    path = next(iter(band.values()))
    engines = bench._engine(path.with_name("fast_x2_compressed.pt"), 2), bench._engine(path, 2)
    rows = bench.measure(bench.sequences(bench.DATA)[:2], 2, [14, 30], *engines)
    assert len(rows) == 4
    for light, heavy in (rows[0:2], rows[2:4]):
        assert (light["crf"], heavy["crf"]) == (14, 30) and light["sequence"] == heavy["sequence"]
        assert heavy["qp"] > light["qp"] + 8
        assert heavy["psnr_bicubic"] < light["psnr_bicubic"] - 1
    assert all(abs(r[k]) < 10 for r in rows for k in ("gain_base", "gain_band"))


def test_block_phase_finds_error_on_the_grid_and_only_there():
    import numpy as np

    bench = _bench("block_phase")
    flat = np.ones((2, 64, 96))
    cols, rows = bench.phase_profile(flat, 2)
    assert bench.edge_ratio(cols) == pytest.approx(1.0) and bench.flat_bound_db(cols, rows) == pytest.approx(0.0)
    # extra error on the HR columns of LR columns 0, 8, 16, ... (x2: HR columns 0-1, 16-17, ...)
    blocky = flat.copy()
    lr_col = np.arange(96) // 2
    blocky[:, :, lr_col % 8 == 0] += 3.0
    cols, rows = bench.phase_profile(blocky, 2)
    assert cols[0] == pytest.approx(4.0) and np.allclose(cols[1:], 1.0) and np.allclose(rows, 1.375)
    assert bench.edge_ratio(cols) == pytest.approx(2.5) and bench.edge_ratio(rows) == pytest.approx(1.0)
    # removing that excess leaves 1 everywhere: the mean squared error falls from 1.375 to 1
    assert bench.flat_bound_db(cols, rows) == pytest.approx(10 * np.log10(1.375))
    # and excess on both axes adds up
    blocky[:, (np.arange(64) // 2) % 8 == 0, :] += 3.0  # rows too: HR rows 0-1, 16-17, ...
    cols, rows = bench.phase_profile(blocky, 2)
    assert bench.flat_bound_db(cols, rows) == pytest.approx(10 * np.log10(blocky.mean()), rel=1e-9)
    # a shaved map keeps each pixel's phase: cut 2 HR pixels (one LR pixel), the excess stays on phase 0
    cols, _ = bench.phase_profile(blocky[:, 2:-2, 2:-2], 2, offset=2)
    assert cols.argmax() == 0 and np.allclose(np.delete(cols, 0), cols[1])
