"""``vsr bench``: where the time goes for one clip and model, measured side by side.

Stages are timed separately on the same frames in one run (decode alone, the
engine alone under every installed runtime and precision, encode alone), then
the whole pipeline end to end with the model and with plain bicubic, so ratios
are not skewed by a noisy machine drifting between runs.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from vsr.config import UpscaleConfig
from vsr.engine import Engine, build_engine, cpu_has_bf16, upscale_frames
from vsr.io.decode import iter_frames
from vsr.io.encode import ClipWriter, output_pix_fmt, resolve_codec
from vsr.io.probe import open_input, video_info
from vsr.runtime import runtime_pairs

from .clip import input_source, note_source, temporal_choice, upscale_path

__all__ = ["BenchReport", "run_bench"]


@dataclass
class BenchReport:
    """Frames per second of each stage (fps), for one clip and model."""

    clip: str
    model: str
    scale: int
    threads: int
    frames: int = 0  # frames in the clip (decode is timed over all of them)
    size_in: tuple[int, int] = (0, 0)
    size_out: tuple[int, int] = (0, 0)
    device: str = "cpu"
    decode_fps: float = 0.0
    engine_fps: dict[str, float] = field(default_factory=dict)  # "runtime/precision" -> fps, engine alone
    auto: str = ""  # the runtime/precision the configured engine chose
    weights: str = ""  # the file `vsr upscale` runs on this clip (--source auto: from the stream)
    temporal: bool = False  # whether `vsr upscale` blends this clip (--temporal auto: from the stream)
    encode_fps: float = 0.0
    e2e_fps_model: float = 0.0
    e2e_fps_bicubic: float = 0.0
    e2e_split_model: dict[str, float] = field(default_factory=dict)
    e2e_split_bicubic: dict[str, float] = field(default_factory=dict)

    @property
    def e2e_model_over_bicubic(self) -> float:
        return self.e2e_fps_model / self.e2e_fps_bicubic


def _engine_fps(engine: Engine, frames: list, batch: int) -> float:
    upscale_frames(engine, frames[:batch])  # warm-up (oneDNN primitive creation, OpenVINO kernels)
    t0 = time.perf_counter()
    for i in range(0, len(frames), batch):
        upscale_frames(engine, frames[i : i + batch])
    return len(frames) / (time.perf_counter() - t0)


def run_bench(src: Path, cfg: UpscaleConfig, *, frames: int = 48) -> BenchReport:
    """Measure decode / engine / encode / end-to-end frames per second on ``src``, with the
    weights and temporal blend that ``vsr upscale`` would choose for it."""
    report = BenchReport(clip=str(src), model=cfg.engine.model, scale=cfg.engine.scale,
                         threads=torch.get_num_threads())
    t0 = time.perf_counter()
    held = []
    for frame in iter_frames(src):
        if report.frames < frames:
            held.append(frame)
        report.frames += 1
    report.size_in = (held[0].width, held[0].height)
    report.decode_fps = report.frames / (time.perf_counter() - t0)

    stream = input_source(src, cfg)  # the weights (and temporal blend) `vsr upscale` would run here
    auto, auto_info = build_engine(cfg.engine, stream)
    auto_info = note_source(auto_info, stream)
    report.weights = Path(auto_info.weights).name if auto_info.weights else "-"
    report.temporal = temporal_choice(cfg.temporal, auto_info).on
    report.device = auto_info.device
    report.auto = f"{auto.runtime}/{auto_info.dtype.replace('float32', 'fp32').replace('bfloat16', 'bf16')}"
    if cfg.engine.model != "bicubic":
        on_cpu = auto.device.type == "cpu"
        precisions = ("fp32", "bf16") if on_cpu and cpu_has_bf16() else ("fp32",)
        for runtime, precision in runtime_pairs(precisions, None if on_cpu else ("torch",)):
            engine = Engine(auto.model, device=auto.device, runtime=runtime,  # the weights auto loaded
                            dtype=torch.float32 if precision == "fp32" else torch.bfloat16,
                            batch_size=cfg.engine.batch_size, tile=cfg.engine.tile, passes=cfg.engine.passes)
            report.engine_fps[f"{runtime}/{precision}"] = _engine_fps(engine, held, engine.batch_size)

    outs = upscale_frames(auto, held)
    report.size_out = (outs[0].width, outs[0].height)
    with tempfile.TemporaryDirectory() as tmp:
        container = open_input(src)
        info_v = video_info(container)
        dst = Path(tmp) / f"enc{Path(src).suffix if Path(src).suffix in ('.mp4', '.mkv', '.webm') else '.mp4'}"
        pix = output_pix_fmt(outs[0].pix_fmt, resolve_codec(dst, cfg.encode.codec), cfg.encode.pix_fmt)
        writer = ClipWriter(dst, width=outs[0].width, height=outs[0].height, pix_fmt=pix, info=info_v,
                            encode=cfg.encode)
        t0 = time.perf_counter()
        for f in outs:
            writer.write(f)
        writer.close()
        report.encode_fps = len(outs) / (time.perf_counter() - t0)
        container.close()

        bicubic = replace(cfg.engine, model="bicubic", weights=None)
        for label, model_cfg in (("model", cfg.engine), ("bicubic", bicubic)):
            run_cfg = replace(cfg, engine=model_cfg, overwrite=True, quiet=True)
            pair = (auto, auto_info) if label == "model" else build_engine(model_cfg)
            clip = upscale_path(src, Path(tmp) / f"e2e_{label}{dst.suffix}", run_cfg, engine=pair)
            setattr(report, f"e2e_fps_{label}", clip.fps)
            setattr(report, f"e2e_split_{label}", {k: round(v, 2) for k, v in clip.split_seconds.items()})
    return report
