"""``vsr bench``: where the time goes for one clip and model, measured side by side.

Stages are timed separately on the same frames in one run (decode alone,
engine alone in fp32 and bf16, encode alone), then the whole pipeline end to
end with the model and with plain bicubic, so ratios are not skewed by a
noisy machine drifting between runs.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from vsr.config import UpscaleConfig
from vsr.engine import Engine, build_engine, cpu_has_bf16, upscale_frames
from vsr.io.decode import iter_frames
from vsr.io.encode import ClipWriter, output_pix_fmt, resolve_codec
from vsr.io.probe import open_input, video_info

from .clip import upscale_path

__all__ = ["run_bench"]


def _engine_fps(engine: Engine, frames: list, batch: int) -> float:
    upscale_frames(engine, frames[:batch])  # warm-up (oneDNN primitive creation)
    t0 = time.perf_counter()
    for i in range(0, len(frames), batch):
        upscale_frames(engine, frames[i : i + batch])
    return len(frames) / (time.perf_counter() - t0)


def run_bench(src: Path, cfg: UpscaleConfig, *, frames: int = 48) -> dict[str, Any]:
    """Measure decode / engine / encode / end-to-end frames per second on ``src``."""
    result: dict[str, Any] = {"clip": str(src), "model": cfg.engine.model, "scale": cfg.engine.scale,
                              "threads": torch.get_num_threads()}
    t0 = time.perf_counter()
    n_total = 0
    held = []
    for frame in iter_frames(src):
        if n_total < frames:
            held.append(frame)
        n_total += 1
    result["frames"] = n_total
    result["size_in"] = (held[0].width, held[0].height)
    result["decode_fps"] = n_total / (time.perf_counter() - t0)

    engine, info = build_engine(replace(cfg.engine, dtype="fp32"))
    result["engine_fps_fp32"] = _engine_fps(engine, held, engine.batch_size)
    if engine.device.type == "cpu" and cpu_has_bf16():
        engine.dtype = torch.bfloat16
        result["engine_fps_bf16"] = _engine_fps(engine, held, engine.batch_size)
    auto, auto_info = build_engine(cfg.engine)
    result["dtype_auto"] = auto_info["dtype"]
    result["device"] = auto_info["device"]

    outs = upscale_frames(auto, held)
    result["size_out"] = (outs[0].width, outs[0].height)
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
        result["encode_fps"] = len(outs) / (time.perf_counter() - t0)
        container.close()

        for label, model_cfg in (("model", cfg.engine), ("bicubic", replace(cfg.engine, model="bicubic", weights=None))):
            run_cfg = replace(cfg, engine=model_cfg, overwrite=True, quiet=True)
            report = upscale_path(src, Path(tmp) / f"e2e_{label}{dst.suffix}", run_cfg, engine=build_engine(model_cfg))
            result[f"e2e_fps_{label}"] = report.fps
            result[f"e2e_split_{label}"] = {k: round(v, 2) for k, v in report.split_seconds.items()}
    result["e2e_model_over_bicubic"] = result["e2e_fps_model"] / result["e2e_fps_bicubic"]
    if "engine_fps_bf16" in result:
        result["engine_bf16_over_fp32"] = result["engine_fps_bf16"] / result["engine_fps_fp32"]
    return result
