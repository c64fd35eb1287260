"""What a media file holds, and the user-facing errors for what it does not."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.sidedata.encparams import VideoEncParams, VideoEncParamsType
from av.sidedata.sidedata import Type as SideDataType

__all__ = [
    "CLEAN_BPP",
    "CLEAN_CODECS",
    "FALLBACK_RATE",
    "QP_FRAMES",
    "HdrStatic",
    "MediaError",
    "SourceChoice",
    "VideoInfo",
    "bits_per_pixel",
    "frame_qp",
    "frame_rate",
    "hdr_static",
    "main_video",
    "open_input",
    "pixel_aspect",
    "probe",
    "side_data",
    "stream_qp",
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


# How many leading frames ``stream_qp`` reads: one GOP's intra frame and enough P-frames that
# their median, not the intra frame's lower quantiser, is what is reported.
QP_FRAMES = 12


# The frame rate assumed where a stream states none (or zero): PAL's, and ffmpeg's own default.
FALLBACK_RATE = Fraction(25)


def frame_rate(rate: Fraction | None) -> Fraction:
    """``rate`` when it is a positive rate, else :data:`FALLBACK_RATE`."""
    return rate if rate and rate > 0 else FALLBACK_RATE


class MediaError(ValueError):
    """Input that cannot be processed; the message is one line for the user."""


@dataclass(frozen=True)
class HdrStatic:
    """HDR10 static metadata in libx265's option syntax, or None for a part the stream lacks.

    ``master_display``: ``G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)``, chromaticities in 0.00002 and
    luminances in 0.0001 cd/m² (SMPTE ST 2086); ``max_cll``: ``MaxCLL,MaxFALL`` in cd/m² (CTA-861.3).
    """

    master_display: str | None
    max_cll: str | None

    def x265_params(self) -> str:
        parts = [f"master-display={self.master_display}"] if self.master_display else []
        return ":".join([*parts, *([f"max-cll={self.max_cll}"] if self.max_cll else [])])


_PQ_OR_HLG = (16, 18)  # AVColorTransferCharacteristic: SMPTE ST 2084, ARIB STD-B67


def side_data(frame: av.VideoFrame) -> list:
    """The side-data entries (``av.sidedata.SideData`` and subclasses) a decoded frame carries.

    PyAV 18.1.1 made ``frame.side_data`` a mapping whose iteration yields the entry types;
    18.1.0 and earlier iterate the entries themselves. Both are supported here, in one place.
    """
    container = frame.side_data
    return [container[key] if isinstance(key, SideDataType) else key for key in container]


def hdr_static(path: Path) -> HdrStatic | None:
    """The HDR10 static metadata the first frame of ``path``'s main video stream carries; None for
    SDR streams (not PQ or HLG; nothing is decoded then) and for HDR ones without it."""
    with open_input(path) as container:
        stream = main_video(container)
        if int(stream.codec_context.color_trc) not in _PQ_OR_HLG:
            return None
        try:
            frame = next(container.decode(stream))
        except (StopIteration, av.error.FFmpegError, ValueError):
            return None
        master = cll = None
        for data in side_data(frame):
            raw = bytes(memoryview(data))
            name = getattr(data.type, "name", "")
            if name == "MASTERING_DISPLAY_METADATA" and len(raw) >= 88:
                # AVMasteringDisplayMetadata: primaries R, G, B then white point (x, y rationals),
                # min and max luminance (rationals), has_primaries, has_luminance
                v = struct.unpack("<22i", raw[:88])
                if v[20] and v[21]:
                    xy = [round(50000 * v[i] / v[i + 1]) if v[i + 1] else 0 for i in range(0, 16, 2)]
                    lum = [round(10000 * v[i] / v[i + 1]) if v[i + 1] else 0 for i in (18, 16)]
                    master = (f"G({xy[2]},{xy[3]})B({xy[4]},{xy[5]})R({xy[0]},{xy[1]})"
                              f"WP({xy[6]},{xy[7]})L({lum[0]},{lum[1]})")
            elif name == "CONTENT_LIGHT_LEVEL" and len(raw) >= 8:
                cll = "{},{}".format(*struct.unpack("<2I", raw[:8]))
        return HdrStatic(master, cll) if master or cll else None


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
    # Shape of one pixel (anamorphic video: DVD, DV, broadcast); None when square or unknown.
    # An integer upscale keeps it, so the output is shown at the input's aspect ratio.
    sample_aspect_ratio: Fraction | None = None
    field_order: int = 0  # FFmpeg's AVFieldOrder: 0 unknown, 1 progressive, 2-5 interlaced (tt, bb, tb, bt)
    hdr: HdrStatic | None = None  # HDR10 static metadata of a PQ / HLG stream (:func:`hdr_static`)

    @property
    def interlaced(self) -> bool:
        return self.field_order >= 2


def main_video(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The video stream vsr upscales: not a cover picture (``attached_pic``), then the largest
    picture, the first of equals (FFmpeg's own default choice). ``container`` has one at least."""
    videos = list(container.streams.video)
    moving = [s for s in videos if not s.disposition & av.stream.Disposition.attached_pic] or videos
    return max(moving, key=lambda s: (s.codec_context.width or 0) * (s.codec_context.height or 0))


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
    stream = main_video(container)
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
        sample_aspect_ratio=pixel_aspect(stream.sample_aspect_ratio or cc.sample_aspect_ratio),
        field_order=int(cc.field_order or 0),
    )


def pixel_aspect(sar: Fraction | str | None) -> Fraction | None:
    """A sample aspect ratio as a Fraction, or None when square or unknown (``0/1``, ``N/A``).
    Takes PyAV's Fraction or ffprobe's ``"4:3"``."""
    if isinstance(sar, str):
        num, _, den = sar.partition(":")
        sar = Fraction(int(num), int(den)) if num.isdigit() and den.isdigit() and int(den) else None
    return sar if sar is not None and sar > 0 and sar != 1 else None


def probe(path: Path) -> VideoInfo:
    """VideoInfo of the first video stream of ``path``."""
    with open_input(path) as container:
        return video_info(container)


def bits_per_pixel(container: av.container.InputContainer) -> float | None:
    """The first video stream's bits per pixel per frame, from its bit rate (or the file's,
    less its audio); None when neither rate nor frame rate is known."""
    stream = main_video(container)
    rate = stream.average_rate or stream.guessed_rate
    bit_rate = stream.bit_rate
    if not bit_rate and container.bit_rate:
        bit_rate = container.bit_rate - sum(s.bit_rate or 0 for s in container.streams.audio)
    if not bit_rate or not rate or not stream.codec_context.width:
        return None
    return float(bit_rate) / (stream.codec_context.width * stream.codec_context.height * float(rate))


@dataclass(frozen=True)
class SourceChoice:
    """What ``--source`` resolves to for one input.

    ``source``: ``clean`` or ``compressed``; ``reason``: one line for the summary; ``qp``: the
    stream's H.264 quantiser (0..51, see :func:`stream_qp`) where it was measured, which picks
    among QP-banded compressed-source weights; None elsewhere.
    """

    source: str
    reason: str
    qp: float | None = None


def frame_qp(frame: av.VideoFrame) -> float | None:
    """Mean quantiser over a decoded H.264 frame's macroblocks (0..51), from the encoding
    parameters the decoder exports when opened with ``export_side_data=venc_params``; None
    when the frame carries none (another codec, or the option was not set)."""
    for data in side_data(frame):
        if isinstance(data, VideoEncParams) and data.codec_type == VideoEncParamsType.H264:
            if data.nb_blocks == 0:
                return float(data.qp)
            try:
                return float(np.mean(data.qp_map()))
            except RuntimeError:  # field-coded (interlaced) pictures: blocks of one field, not the frame
                return data.qp + float(np.mean([data.block_params(i).delta_qp for i in range(data.nb_blocks)]))
    return None


def stream_qp(path: Path, frames: int = QP_FRAMES) -> float | None:
    """Median over the first ``frames`` frames of :func:`frame_qp`: how coarsely the stream's
    pictures were quantised, the codec's own measure of the compression a net has to undo.

    H.264 only (its decoder exports the per-macroblock QP); None for other codecs, or when
    the first frames cannot be decoded (the real decode reports that).
    """
    with open_input(path) as container:
        return _median_qp(container, frames)


def _median_qp(container: av.container.InputContainer, frames: int) -> float | None:
    """:func:`stream_qp` on a container nothing has been decoded from yet."""
    stream = main_video(container)
    if stream.codec_context.name != "h264":
        return None
    stream.codec_context.options = {"export_side_data": "venc_params"}  # before the decoder opens
    qps: list[float] = []
    try:
        for frame in container.decode(stream):
            qp = frame_qp(frame)
            if qp is not None:
                qps.append(qp)
            if len(qps) >= frames:
                break
    except (av.error.FFmpegError, ValueError):
        pass
    return float(np.median(qps)) if qps else None


def stream_source(path: Path) -> SourceChoice:
    """What ``--source auto`` decides for a video file from the stream itself: its codec, then
    its bits per pixel per frame against :data:`CLEAN_BPP`; a compressed H.264 stream also
    gets its quantiser (:func:`stream_qp`)."""
    with open_input(path) as container:
        codec = main_video(container).codec_context.name
        if codec in CLEAN_CODECS:
            return SourceChoice("clean", f"{codec} is a lossless or intra-only codec")
        bpp = bits_per_pixel(container)
        if bpp is not None and bpp >= CLEAN_BPP:
            return SourceChoice("clean", f"{codec} at {bpp:.3f} bits per pixel per frame (>= {CLEAN_BPP:g})")
        qp = _median_qp(container, QP_FRAMES)
    why = f"{codec} at an unknown bit rate" if bpp is None else \
        f"{codec} at {bpp:.3f} bits per pixel per frame (< {CLEAN_BPP:g})"
    if qp is not None:
        why += f", median macroblock QP {qp:.1f}"
    return SourceChoice("compressed", why, qp)
