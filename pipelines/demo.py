"""``vsr demo``: make a sample clip, then upscale it, so a fresh clone has something to run.

The sample is drawn with OpenCV (text, rings, a moving checkerboard and
gradients: edges of every orientation) and carries an AAC tone, so the demo
shows audio passthrough too. Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from vsr.color import rgb_to_ycbcr, to_uint
from vsr.config import DEFAULT_MODEL, EngineConfig, UpscaleConfig

from .clip import ClipReport, ProgressFn, upscale_path

__all__ = ["DemoResult", "make_sample_clip", "mux_tone", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    sample: Path
    plain: ClipReport  # the sample upscaled with the default model
    eval: ClipReport  # the sample as ground truth: downscaled, upscaled, compared


def run_demo(out: Path, scale: int, *, quiet: bool = False,
             progress_for: Callable[[str], ProgressFn | None] | None = None) -> DemoResult:
    """Draw ``OUT/sample.mp4``, upscale it with the default model, then run it in ``--eval`` mode.

    The default model's weights must be there: no quiet fallback to bicubic.
    ``progress_for(mode)``: a progress callback for the ``plain`` and ``eval`` runs.
    """
    src = make_sample_clip(Path(out) / "sample.mp4")
    reports = {}
    for mode in ("plain", "eval"):
        dst = Path(out) / (f"sample_x{scale}.mp4" if mode == "plain" else "sample_eval.mp4")
        cfg = UpscaleConfig(engine=EngineConfig(model=DEFAULT_MODEL, scale=scale), eval=mode == "eval",
                            overwrite=True, quiet=quiet)
        reports[mode] = upscale_path(src, dst, cfg, progress=progress_for(mode) if progress_for else None)
    return DemoResult(src, reports["plain"], reports["eval"])


def _picture(t: int, width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    img[..., 0] = 60 + 120 * xx / width
    img[..., 1] = 80 + 100 * yy / height
    img[..., 2] = 140 + 60 * np.sin((xx + 2 * t) / 23.0)
    board = ((((xx + 3 * t) // 12) + (yy // 12)) % 2).astype(np.float32)
    img[height // 2 :, : width // 3] = (40 + 180 * board[height // 2 :, : width // 3])[..., None]
    img = img.astype(np.uint8)
    cx, cy = width * 2 // 3 + int(20 * np.sin(t / 10)), height // 2
    for r in range(6, min(width, height) // 3, 7):
        cv2.circle(img, (cx, cy), r, (250, 250, 250) if r % 2 else (20, 20, 20), 1, cv2.LINE_AA)
    cv2.putText(img, "vsr demo", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(img, f"frame {t:03d}", (10, 55), cv2.FONT_HERSHEY_PLAIN, 1.2, (10, 10, 10), 1, cv2.LINE_AA)
    return img


def mux_tone(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, samples: int, *,
             hz: float, amplitude: float) -> None:
    """Encode and mux a mono float sine of ``samples`` samples at the stream's rate, then flush the stream."""
    rate = stream.rate
    tone = (amplitude * np.sin(np.arange(samples) * 2 * np.pi * hz / rate)).astype(np.float32)[None]
    for start in range(0, samples, 1024):
        chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start : start + 1024]), format="flt",
                                           layout="mono")
        chunk.sample_rate = rate
        chunk.pts = start
        for packet in stream.encode(chunk):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def make_sample_clip(path: Path, *, seconds: float = 3.0, width: int = 320, height: int = 180,
                     rate: int = 25) -> Path:
    """Write the demo clip (H.264 yuv420p + AAC mono) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = int(seconds * rate)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=Fraction(rate))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": "16", "preset": "fast"}
        audio = out.add_stream("aac", rate=44100)
        audio.layout = "mono"
        for t in range(frames):
            ycc = to_uint(rgb_to_ycbcr(_picture(t, width, height)))
            frame = av.VideoFrame(width, height, "yuv420p")
            planes = [ycc[..., 0], cv2.resize(ycc[..., 1], (width // 2, height // 2), interpolation=cv2.INTER_AREA),
                      cv2.resize(ycc[..., 2], (width // 2, height // 2), interpolation=cv2.INTER_AREA)]
            for plane, src in zip(frame.planes, planes, strict=False):
                np.frombuffer(plane, np.uint8).reshape(plane.height, -1)[:, : src.shape[1]] = src
            frame.pts = t
            frame.time_base = Fraction(1, rate)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        mux_tone(out, audio, int(44100 * seconds), hz=330, amplitude=0.2)
    return path
