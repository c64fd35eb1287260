"""What a media file holds, and the user-facing errors for what it does not."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

__all__ = [
    "CLEAN_BPP",
    "CLEAN_CODECS",
    "FALLBACK_RATE",
    "MediaError",
    "VideoInfo",
    "bits_per_pixel",
    "frame_rate",
    "open_input",
    "probe",
    "stream_source",
    "video_info",
]

# Codecs whose frames carry no block-transform artefacts to undo: lossless, or intra-only
# mezzanine codecs at high rates. Anything else is judged by its bit rate.
CLEAN_CODECS = frozenset({"ffv1", "huffyuv", "ffvhuff", "utvideo", "rawvideo", "png", "apng", "qtrle", "magicyuv",
                          "v210", "v308", "v408", "r210", "zlib", "tiff", "bmp", "prores", "dnxhd", "cfhd"})
# A stream at or above this many bits per pixel per frame is treated as clean: far above
# streaming rates (about 0.02-0.5 for H.264/VP8 at 720p), where the codec leaves little to undo.
CLEAN_BPP = 1.0


# The frame rate assumed where a stream states none (or zero): PAL's, and ffmpeg's own default.
FALLBACK_RATE = Fraction(25)


def frame_rate(rate: Fraction | None) -> Fraction:
    """``rate`` when it is a positive rate, else :data:`FALLBACK_RATE`."""
    return rate if rate and rate > 0 else FALLBACK_RATE


class MediaError(ValueError):
    """Input that cannot be processed; the message is one line for the user."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    rate: Fraction | None  # average frame rate as the container reports it
    time_base: Fraction
    pix_fmt: str
    codec: str
    color_primaries: int
    color_trc: int
    colorspace: int
    color_range: int
    has_audio: bool
    duration: float | None  # seconds, from the container (not trusted for counts)
    nb_frames: int  # container's claim; 0 when unknown. Only used to detect truncation.


def open_input(path: Path) -> av.container.InputContainer:
    """Open ``path`` for reading, turning every kind of bad input into a MediaError."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"input not found: {path}")
    if path.is_dir():
        raise MediaError(f"input is a directory, not a file: {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"input is an empty file: {path}")
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(f"not a readable video or image: {path} ({_reason(exc)})") from None
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        container.close()
        what = "audio-only file" if kinds == ["audio"] else "file with no video stream"
        raise MediaError(f"{what}: {path}")
    return container


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or exc.__class__.__name__


def video_info(container: av.container.InputContainer) -> VideoInfo:
    stream = container.streams.video[0]
    cc = stream.codec_context
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    return VideoInfo(
        width=cc.width,
        height=cc.height,
        rate=stream.average_rate,
        time_base=stream.time_base or Fraction(1, 90000),
        pix_fmt=cc.pix_fmt or "unknown",
        codec=cc.name,
        color_primaries=int(cc.color_primaries),
        color_trc=int(cc.color_trc),
        colorspace=int(cc.colorspace),
        color_range=int(cc.color_range),
        has_audio=bool(container.streams.audio),
        duration=duration,
        nb_frames=int(stream.frames or 0),
    )


def probe(path: Path) -> VideoInfo:
    """VideoInfo of the first video stream of ``path``."""
    with open_input(path) as container:
        return video_info(container)


def bits_per_pixel(container: av.container.InputContainer) -> float | None:
    """The first video stream's bits per pixel per frame, from its bit rate (or the file's,
    less its audio); None when neither rate nor frame rate is known."""
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate
    bit_rate = stream.bit_rate
    if not bit_rate and container.bit_rate:
        bit_rate = container.bit_rate - sum(s.bit_rate or 0 for s in container.streams.audio)
    if not bit_rate or not rate or not stream.codec_context.width:
        return None
    return float(bit_rate) / (stream.codec_context.width * stream.codec_context.height * float(rate))


def stream_source(path: Path) -> tuple[str, str]:
    """``("clean" | "compressed", reason)`` for a video file: what ``--source auto`` decides from
    the stream itself (its codec, then its bits per pixel per frame against :data:`CLEAN_BPP`)."""
    with open_input(path) as container:
        codec = container.streams.video[0].codec_context.name
        if codec in CLEAN_CODECS:
            return "clean", f"{codec} is a lossless or intra-only codec"
        bpp = bits_per_pixel(container)
    if bpp is None:
        return "compressed", f"{codec} at an unknown bit rate"
    if bpp >= CLEAN_BPP:
        return "clean", f"{codec} at {bpp:.3f} bits per pixel per frame (>= {CLEAN_BPP:g})"
    return "compressed", f"{codec} at {bpp:.3f} bits per pixel per frame (< {CLEAN_BPP:g})"
