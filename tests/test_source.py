"""--source auto|clean|compressed: which weights run, decided from the stream and recorded."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write_clip

from cli import main
from vsr.frames import YuvFrame
from vsr.io.probe import frame_qp, side_data, stream_qp, stream_source
from vsr.io.recompress import Recompressor
from vsr.weights import qp_bands, qp_floor, weights_dir


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
    assert stream_source(lossless).source == "clean"
    engine = _engine(tmp_path, lossless)
    assert engine["source"] == "clean" and engine["weights"].endswith("fast_x2.pt")
    assert "lossless" in engine["source_reason"]


def test_auto_runs_compressed_weights_on_a_crf28_clip(tmp_path: Path, two_sources: Path):
    crf28 = write_clip(tmp_path / "crf28.mp4", frames=12, size=(320, 240), crf=28)
    choice = stream_source(crf28)
    assert choice.source == "compressed" and "bits per pixel" in choice.reason
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


def test_stream_qp_reads_the_quantiser_of_h264_and_nothing_else(tmp_path: Path):
    mild = stream_qp(write_clip(tmp_path / "crf18.mp4", frames=8, size=(128, 96), crf=18))
    coarse = stream_qp(write_clip(tmp_path / "crf36.mp4", frames=8, size=(128, 96), crf=36))
    assert mild is not None and coarse is not None
    assert 14 <= mild < coarse - 10 and coarse <= 51  # x264's QP follows its CRF
    assert stream_qp(write_clip(tmp_path / "ffv1.mkv", frames=4, size=(64, 48), codec="ffv1")) is None
    choice = stream_source(tmp_path / "crf36.mp4")
    assert choice.source == "compressed" and choice.qp == coarse and f"QP {coarse:.1f}" in choice.reason


def test_side_data_reads_both_pyav_container_forms(tmp_path: Path):
    """PyAV 18.1.1 iterates a frame's side data as a mapping (types); 18.1.0 iterated the entries.
    The same decoded frame, seen through either form, gives the same entries and the same QP."""
    import av

    with av.open(str(write_clip(tmp_path / "crf30.mp4", frames=2, size=(64, 48), crf=30))) as container:
        stream = container.streams.video[0]
        stream.codec_context.options = {"export_side_data": "venc_params"}
        frame = next(container.decode(stream))
        entries = side_data(frame)
        assert any(getattr(e.type, "name", "") == "VIDEO_ENC_PARAMS" for e in entries)

        old = SimpleNamespace(side_data=entries)  # iterates the entries, as PyAV <= 18.1.0 did
        new = SimpleNamespace(side_data={e.type: e for e in entries})  # a mapping, as in PyAV 18.1.1
        assert side_data(old) == side_data(new) == entries
        qp = frame_qp(frame)
        assert qp is not None and 20 < qp <= 51 and frame_qp(old) == frame_qp(new) == qp


def test_recompressor_reports_the_qp_it_coded_at():
    frame = YuvFrame((np.tile(np.arange(64, dtype=np.uint8) * 3, (48, 1)), np.full((24, 32), 128, np.uint8),
                      np.full((24, 32), 128, np.uint8)), "yuv420p", 0, Fraction(1, 25), 0)
    low, high = Recompressor(64, 48, "yuv420p", crf=20), Recompressor(64, 48, "yuv420p", crf=40)
    low(frame)
    high(frame)
    assert low.qp is not None and high.qp is not None and low.qp < high.qp - 10


@pytest.fixture()
def banded(two_sources: Path) -> Path:
    """``two_sources`` plus a QP-banded compressed file for QP >= 30 that differs from both."""
    import torch

    ckpt = torch.load(two_sources / "fast_x2_compressed.pt", weights_only=True)
    ckpt["state_dict"] = {k: v * 0.8 if k.endswith("weight") else v for k, v in ckpt["state_dict"].items()}
    torch.save(ckpt, two_sources / "fast_x2_compressed_qp30.pt")
    torch.save(ckpt, two_sources / "fast_x2_compressed_qpX.pt")  # not a band: ignored
    return two_sources


def test_qp_bands_pick_the_weights_for_the_streams_quantiser(tmp_path: Path, banded: Path):
    assert {k: v.name for k, v in qp_bands("fast", 2).items()} == {30: "fast_x2_compressed_qp30.pt"}
    assert qp_floor("fast", 2, 29.9) is None and qp_floor("fast", 2, 30.0) == 30 and qp_floor("fast", 2, None) is None
    mild = write_clip(tmp_path / "crf24.mp4", frames=8, size=(320, 240), crf=24)
    coarse = write_clip(tmp_path / "crf38.mp4", frames=8, size=(320, 240), crf=38)
    engine = _engine(tmp_path, mild)
    assert engine["weights"].endswith("fast_x2_compressed.pt") and engine["qp"] < 30
    engine = _engine(tmp_path, coarse)
    assert engine["weights"].endswith("fast_x2_compressed_qp30.pt") and engine["qp"] >= 30
    assert f"QP {engine['qp']:.1f}" in engine["source_reason"]
    # an explicit --source compressed is banded too; --source clean is not
    assert _engine(tmp_path, coarse, "--source", "compressed")["weights"].endswith("_qp30.pt")
    assert _engine(tmp_path, coarse, "--source", "clean")["weights"].endswith("fast_x2.pt")
    # --eval-crf: the band follows the re-encoded copy's quantiser, not the file's
    engine = _engine(tmp_path, mild, "--eval", "--eval-crf", "40")
    assert engine["weights"].endswith("_qp30.pt") and engine["qp"] >= 30
    engine = _engine(tmp_path, coarse, "--eval", "--eval-crf", "18")
    assert engine["weights"].endswith("fast_x2_compressed.pt") and engine["qp"] < 30


def test_one_upscaler_keeps_an_engine_per_band(tmp_path: Path, banded: Path):
    from pipelines.api import Upscaler

    up = Upscaler("fast", scale=2, runtime="torch", dtype="fp32")
    mild = write_clip(tmp_path / "crf24.mp4", frames=4, size=(320, 240), crf=24)
    coarse = write_clip(tmp_path / "crf38.mp4", frames=4, size=(320, 240), crf=38)
    reports = [up.file(src, tmp_path / f"up_{src.name}", overwrite=True) for src in (mild, coarse, mild)]
    names = [Path(r.engine.weights).name for r in reports if r.engine is not None and r.engine.weights]
    assert names == ["fast_x2_compressed.pt", "fast_x2_compressed_qp30.pt", "fast_x2_compressed.pt"]
    assert len(up._engines) == 2
