"""--source auto|clean|compressed: which weights run, decided from the stream and recorded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_clip

from cli import main
from vsr.io.probe import stream_source
from vsr.weights import weights_dir


@pytest.fixture()
def two_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A weights folder with clean and compressed-source fast x2 weights that differ (x3 clean only)."""
    import torch

    folder = tmp_path / "weights"
    folder.mkdir()
    shutil.copy(weights_dir() / "fast_x2.pt", folder / "fast_x2.pt")
    shutil.copy(weights_dir() / "fast_x3.pt", folder / "fast_x3.pt")
    ckpt = torch.load(folder / "fast_x2.pt", weights_only=True)
    ckpt["state_dict"] = {k: v * 0.5 if k.endswith("weight") else v for k, v in ckpt["state_dict"].items()}
    torch.save(ckpt, folder / "fast_x2_compressed.pt")
    monkeypatch.setenv("VSR_WEIGHTS_DIR", str(folder))
    return folder


def _engine(tmp_path: Path, src: Path, *args: str) -> dict:
    dst = tmp_path / f"out_{src.stem}{src.suffix}"
    res = CliRunner().invoke(main, ["upscale", str(src), str(dst), "--model", "fast", "--runtime", "torch",
                                    "--dtype", "fp32", "--quiet", "--overwrite", *args])
    assert res.exit_code == 0, res.output
    return json.loads(Path(str(dst) + ".summary.json").read_text())["engine"]


def test_auto_runs_clean_weights_on_a_lossless_clip(tmp_path: Path, two_sources: Path):
    lossless = write_clip(tmp_path / "lossless.mkv", frames=4, size=(96, 64), codec="ffv1")
    assert stream_source(lossless)[0] == "clean"
    engine = _engine(tmp_path, lossless)
    assert engine["source"] == "clean" and engine["weights"].endswith("fast_x2.pt")
    assert "lossless" in engine["source_reason"]


def test_auto_runs_compressed_weights_on_a_crf28_clip(tmp_path: Path, two_sources: Path):
    crf28 = write_clip(tmp_path / "crf28.mp4", frames=12, size=(320, 240), crf=28)
    source, reason = stream_source(crf28)
    assert source == "compressed" and "bits per pixel" in reason
    engine = _engine(tmp_path, crf28)
    assert engine["source"] == "compressed" and engine["weights"].endswith("fast_x2_compressed.pt")
    # asked for clean, clean it is; the choice and its reason are in the summary
    engine = _engine(tmp_path, crf28, "--source", "clean")
    assert engine["source"] == "clean" and engine["source_reason"] == "--source clean"


def test_eval_mode_follows_the_degraded_copy(tmp_path: Path, two_sources: Path):
    crf28 = write_clip(tmp_path / "crf28.mp4", frames=4, size=(320, 240), crf=28)
    assert _engine(tmp_path, crf28, "--eval")["source"] == "clean"
    assert _engine(tmp_path, crf28, "--eval", "--eval-crf", "30")["source"] == "compressed"


def test_auto_falls_back_and_an_explicit_source_does_not(tmp_path: Path, two_sources: Path):
    crf28 = write_clip(tmp_path / "crf28.mp4", frames=4, size=(240, 180), crf=28)
    engine = _engine(tmp_path, crf28, "--scale", "3")  # no compressed x3 weights: clean ones, said so
    assert engine["source"] == "clean" and engine["weights"].endswith("fast_x3.pt")
    res = CliRunner().invoke(main, ["upscale", str(crf28), str(tmp_path / "o.mp4"), "--model", "fast",
                                    "--scale", "3", "--source", "compressed", "--quiet"])
    assert res.exit_code == 1
    assert res.output.strip() == "Error: no compressed-source weights for fast x3; models that have them: fast"
    assert not list(tmp_path.glob("o.mp4*"))
