"""The benchmark scripts run and report what they time (no timing asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
