"""Streaming encoder (PyAV) with audio/subtitle passthrough.

:class:`ClipWriter` writes to ``OUT.part`` and renames to ``OUT`` only in
:meth:`ClipWriter.close`; :meth:`ClipWriter.abort` removes the part file.
Per-frame timestamps are written as given (the input's ``pts`` in the input
video stream's ``time_base``), so variable frame rate survives. The source's
colour tags (primaries, transfer, matrix, range) and container metadata are
copied. Passthrough packets are muxed unchanged (``add_stream_from_template``).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vsr.config import EncodeConfig
from vsr.frames import FORMATS, YuvFrame
from vsr.io.atomic import PendingOutput
from vsr.io.probe import MediaError, VideoInfo, frame_rate, main_video

__all__ = [
    "CONTAINER_FORMATS",
    "ClipWriter",
    "container_format",
    "output_pix_fmt",
    "resolve_codec",
    "video_encoders",
    "with_frame_colors",
]

log = logging.getLogger(__name__)

CONTAINER_FORMATS = {
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
    ".avi": "avi", ".ts": "mpegts", ".nut": "nut",
}
# Default encoder by container; libx264 wherever the container takes H.264.
_DEFAULT_CODECS = {"webm": "libvpx-vp9"}
_CRF_CODECS = ("libx264", "libx265", "libsvtav1", "libvpx-vp9", "libvpx")


def container_format(path: Path) -> str:
    """The container format for ``path``'s extension; MediaError for one we do not write."""
    fmt = CONTAINER_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        known = ", ".join(CONTAINER_FORMATS)
        raise MediaError(f"unsupported output extension {Path(path).suffix!r}; use one of {known}")
    return fmt


def resolve_codec(path: Path, requested: str | None) -> str:
    """The encoder to use for ``path``: the requested one, else the container's default."""
    if requested:
        return requested
    return _DEFAULT_CODECS.get(CONTAINER_FORMATS.get(Path(path).suffix.lower(), ""), "libx264")


# Tags a muxer computes for itself (Matroska statistics, durations): never copied.
_DERIVED_TAGS = ("DURATION", "NUMBER_OF_FRAMES", "NUMBER_OF_BYTES", "BPS", "_STATISTICS_", "ENCODER", "encoder")


def _stream_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if not k.upper().startswith(tuple(t.upper() for t in _DERIVED_TAGS))}


def with_frame_colors(info: VideoInfo, color: tuple[int, int, int, int] | None) -> VideoInfo:
    """``info`` with the colour tags of the planes actually written.

    A frame's own tags win where it has them: after an RGB -> YCbCr conversion
    the matrix and range are ours (BT.601, limited), never the source's GBR/pc,
    and a codec that signals tags in its bitstream (VP9) reports them per frame
    while the container leaves them unspecified.
    """
    if color is None:
        return info
    prim, trc, space, rng = color
    return replace(
        info,
        color_primaries=prim if prim != 2 else info.color_primaries,
        color_trc=trc if trc != 2 else info.color_trc,
        colorspace=space if space != 2 else info.colorspace,
        color_range=rng if rng != 0 else info.color_range,
    )


def x265_params(info: VideoInfo) -> str:
    """libx265's own options: quiet but for errors, and the source's HDR10 metadata where it has some."""
    return ":".join(["log-level=error", *([info.hdr.x265_params()] if info.hdr is not None else [])])


def hdr_note(codec: str) -> str:
    """What the summary says when a source's HDR10 static metadata cannot follow it."""
    return (f"HDR10 mastering-display / content-light metadata not carried: {codec} does not write it "
            "(use --codec libx265)")


def video_encoders() -> list[str]:
    """Names of the video encoders this FFmpeg build has, sorted."""
    names = []
    for name in av.codecs_available:
        try:
            codec = av.codec.Codec(name, "w")
        except (ValueError, av.error.FFmpegError):
            continue
        if codec.type == "video":
            names.append(name)
    return sorted(names)


def output_pix_fmt(source: str, codec: str, requested: str | None) -> str:
    """The pixel format to encode: the requested one, else the source's if the
    codec takes it, else its non-``j`` twin, else the 8-bit 4:2:0 default."""
    try:
        encoder = av.codec.Codec(codec, "w")
    except (ValueError, av.error.FFmpegError):
        raise MediaError(f"unknown encoder {codec!r}; video encoders here: {', '.join(video_encoders())}") from None
    if encoder.type != "video":
        raise MediaError(f"{codec!r} is a {encoder.type} encoder; video encoders here: {', '.join(video_encoders())}")
    supported = [f.name for f in encoder.video_formats or []]
    if requested:
        if supported and requested not in supported:
            raise MediaError(f"encoder {codec} cannot write {requested}; it takes {', '.join(supported)}")
        return requested
    candidates = [source, source.replace("yuvj", "yuv")]
    for fmt in candidates:
        if not supported or fmt in supported:
            return fmt
    return "yuv420p10le" if FORMATS[source].bit_depth > 8 and "yuv420p10le" in supported else "yuv420p"


# The audio encoder for a container that cannot hold the source's audio as it is.
AUDIO_FOR_CONTAINER = {"webm": "libopus", "mp4": "aac", "mov": "aac", "mpegts": "aac", "avi": "libmp3lame"}


class _AudioTranscoder:
    """Decode one source audio stream's packets and re-encode them for the output container.

    Timestamps: the output starts where the source's first decoded frame starts and
    then counts samples, so the track stays in sync and gapless.
    """

    def __init__(self, container: av.container.OutputContainer, src: av.stream.Stream, codec: str) -> None:
        cc = src.codec_context
        encoder = av.codec.Codec(codec, "w")
        rates = list(encoder.audio_rates or [])
        rate = cc.sample_rate if not rates or cc.sample_rate in rates else max(rates)
        self.stream = container.add_stream(codec, rate=rate)
        layout = cc.layout.name if cc.layout.nb_channels <= 2 or codec != "libopus" else "stereo"
        self.stream.layout = layout
        fmt = (encoder.audio_formats or [None])[0]
        self.stream.metadata.update(_stream_tags(src.metadata))
        self.resampler = av.AudioResampler(format=fmt.name if fmt else None, layout=layout, rate=rate)
        self.rate = rate
        self.samples: int | None = None

    def _encode(self, frames: list[av.AudioFrame]) -> list[av.Packet]:
        out = []
        for frame in frames:
            frame.pts = self.samples
            frame.time_base = Fraction(1, self.rate)
            self.samples += frame.samples
            out.extend(self.stream.encode(frame))
        return out

    def feed(self, packet: av.Packet) -> list[av.Packet]:
        out = []
        for frame in packet.decode():
            if self.samples is None:
                start = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else 0.0
                self.samples = max(0, round(start * self.rate))
            out.extend(self._encode(self.resampler.resample(frame)))
        return out

    def flush(self) -> list[av.Packet]:
        if self.samples is None:
            return list(self.stream.encode(None))
        return self._encode(self.resampler.resample(None)) + list(self.stream.encode(None))


TEXT_SUBTITLES = ("subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text")
SUBTITLES_FOR_CONTAINER = {"mp4": "mov_text", "mov": "mov_text", "webm": "webvtt"}
# The minimal ASS header that text subtitle encoders need (decoded events are ASS lines).
_ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\nScaledBorderAndShadow: yes\n\n"
    b"[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
    b"Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, "
    b"MarginL, MarginR, MarginV, Encoding\nStyle: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,"
    b"1,1,0,2,10,10,10,0\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, "
    b"Text\n"
)


class _SubtitleTranscoder:
    """Decode one text subtitle stream's packets to ASS events and re-encode them (mov_text, webvtt)."""

    def __init__(self, container: av.container.OutputContainer, src: av.stream.Stream, codec: str) -> None:
        self.src = src
        self.stream = container.add_stream(codec)
        self.stream.codec_context.subtitle_header = src.codec_context.subtitle_header or _ASS_HEADER
        self.stream.time_base = Fraction(1, 1000)
        self.stream.metadata.update(_stream_tags(src.metadata))

    def feed(self, packet: av.Packet) -> list[av.Packet]:
        if packet.pts is None or not packet.time_base:
            return []
        subs = self.src.codec_context.decode2(packet)
        if subs is None or len(subs) == 0:
            return []
        lines = [r.ass for r in subs if getattr(r, "ass", None)]
        if not lines:
            return []
        start_ms = round(packet.pts * packet.time_base * 1000)
        duration_ms = round((packet.duration or 0) * packet.time_base * 1000) or subs.end_display_time
        event = av.subtitles.subtitle.SubtitleSet.create(text=b"\n".join(lines), start=0, end=duration_ms,
                                                         pts=start_ms * 1000)
        out = self.stream.codec_context.encode_subtitle(event)
        out.stream = self.stream
        out.time_base = Fraction(1, 1000)
        out.pts = out.dts = start_ms
        out.duration = duration_ms
        return [out]

    def flush(self) -> list[av.Packet]:
        return []


class ClipWriter:
    """Encode YuvFrames of one size to ``path`` (via ``path.part``)."""

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        pix_fmt: str,
        info: VideoInfo,
        encode: EncodeConfig,
        source: av.container.InputContainer | None = None,
        rotation: int = 0,
        codec: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.rotation = rotation
        self.output = PendingOutput(self.path)
        self.format = fmt = container_format(self.path)
        self.pix_fmt = pix_fmt
        self.codec = codec or resolve_codec(self.path, encode.codec)  # an OutputSpec brings it decided
        self.container = av.open(str(self.output.part), mode="w", format=fmt)
        try:
            self._setup(width, height, info, encode, source)
        except Exception:
            self.abort()
            raise
        self.frames = 0

    def _setup(self, width: int, height: int, info: VideoInfo, encode: EncodeConfig,
               source: av.container.InputContainer | None) -> None:
        rate, codec = frame_rate(info.rate), self.codec
        try:
            stream = self.container.add_stream(codec, rate=rate)
        except (ValueError, av.error.FFmpegError) as exc:
            raise MediaError(f"cannot write {codec} into {self.path.suffix}: {exc}") from None
        stream.width, stream.height, stream.pix_fmt = width, height, self.pix_fmt
        stream.time_base = info.time_base
        cc = stream.codec_context
        cc.time_base = info.time_base
        cc.color_primaries = info.color_primaries
        cc.color_trc = info.color_trc
        cc.colorspace = info.colorspace
        cc.color_range = info.color_range or (2 if FORMATS[self.pix_fmt].full_range else 0)
        self.stream_notes: list[str] = []  # what the output does not keep as the source had it, and why
        if info.sample_aspect_ratio:
            cc.sample_aspect_ratio = sar = info.sample_aspect_ratio
            # Matroska stores the pixel shape from the stream, which PyAV does not expose; it then
            # survives only inside the bitstream (H.264 / HEVC VUI, MPEG-4 Part 2).
            if self.format in ("matroska", "webm") and codec not in ("libx264", "libx265", "mpeg4"):
                note = (f"pixel aspect ratio {sar.numerator}:{sar.denominator} not stored: {codec} in "
                        f"{self.path.suffix} cannot carry it here (use --backend ffmpeg, or .mp4)")
                self.stream_notes.append(note)
                log.warning("%s", note)
        options = {}
        if codec in _CRF_CODECS:
            options["crf"] = str(encode.crf)
            if codec in ("libvpx-vp9", "libvpx"):
                options["b"] = "0"
                options["row-mt"] = "1"
                # x264 preset names mapped onto libvpx's speed knobs
                fast = encode.preset in ("ultrafast", "superfast", "veryfast", "faster", "fast")
                options["deadline"] = "realtime" if fast else "good"
                options["cpu-used"] = "8" if fast else "2"
        if codec in ("libx264", "libx265"):
            options["preset"] = encode.preset
        if codec == "libx265":
            options["x265-params"] = x265_params(info)
        if info.hdr is not None and codec != "libx265":
            note = hdr_note(codec)
            self.stream_notes.append(note)
            log.warning("%s", note)
        stream.options = options
        if self.rotation:
            stream.set_display_rotation(self.rotation)
        self.stream = stream
        self.passthrough: dict[int, av.stream.Stream] = {}
        self.transcoders: dict[int, _AudioTranscoder | _SubtitleTranscoder] = {}
        if source is not None:
            self.container.metadata.update({k: v for k, v in source.metadata.items() if k != "encoder"})
            chapters = source.chapters()
            if chapters:
                self.container.set_chapters(chapters)
            src_video = main_video(source)
            stream.metadata.update(_stream_tags(src_video.metadata))
            stream.disposition = src_video.disposition
            for s in source.streams.video:
                if s.index != src_video.index:
                    self.stream_notes.append(f"video stream {s.index} ({s.codec_context.name}) not copied: "
                                             "the output holds one video stream")
            if encode.audio:
                for s in source.streams:
                    if s.type not in ("audio", "subtitle"):
                        continue
                    try:
                        out = self.container.add_stream_from_template(s)
                        out.metadata.update(_stream_tags(s.metadata))  # language, title, handler
                        out.disposition = s.disposition  # default, forced, comment...: which track plays
                        self.passthrough[s.index] = out
                        continue
                    except (ValueError, av.error.FFmpegError) as exc:
                        reason = str(exc)
                    fmt = self.format
                    target: str | None
                    make: type[_AudioTranscoder] | type[_SubtitleTranscoder]
                    if s.type == "audio":
                        target = AUDIO_FOR_CONTAINER.get(fmt, "aac")
                        make = _AudioTranscoder
                    else:  # text subtitles into the container's text format; bitmaps cannot be converted
                        text = s.codec_context.name in TEXT_SUBTITLES
                        target = SUBTITLES_FOR_CONTAINER.get(fmt) if text else None
                        make = _SubtitleTranscoder
                        if not text:
                            reason += "; bitmap subtitles cannot be converted to text"
                    if target is not None:
                        try:
                            self.transcoders[s.index] = make(self.container, s, target)
                            self.transcoders[s.index].stream.disposition = s.disposition
                            note = (f"{s.type} stream {s.index} ({s.codec_context.name}) transcoded to {target}: "
                                    f"{self.path.suffix} cannot hold it")
                            self.stream_notes.append(note)
                            log.info("%s", note)
                            continue
                        except (ValueError, av.error.FFmpegError) as exc:
                            reason = f"{reason}; transcoding to {target} failed: {exc}"
                    note = f"{s.type} stream {s.index} ({s.codec_context.name}) dropped: {reason}"
                    self.stream_notes.append(note)
                    log.warning("%s stream %d (%s) cannot go into %s and is dropped: %s",
                                s.type, s.index, s.codec_context.name, self.path.suffix, reason)

    def write(self, frame: YuvFrame) -> None:
        """Encode one frame (its planes must match the writer's size and format)."""
        out = av.VideoFrame(frame.width, frame.height, self.pix_fmt)
        dtype = np.uint16 if FORMATS[self.pix_fmt].bit_depth > 8 else np.uint8
        for plane, src in zip(out.planes, frame.planes, strict=False):
            dst = np.frombuffer(plane, dtype=dtype).reshape(plane.height, -1)
            dst[:, : src.shape[1]] = src
        out.pts = frame.pts
        out.time_base = frame.time_base
        for packet in self.stream.encode(out):
            self.container.mux(packet)
        self.frames += 1

    def write_packet(self, packet: av.Packet) -> None:
        """Mux a passthrough packet from the source, or transcode it (dropped if its stream was not kept)."""
        transcoder = self.transcoders.get(packet.stream.index)
        if transcoder is not None:
            for out in transcoder.feed(packet):
                self.container.mux(out)
            return
        stream = self.passthrough.get(packet.stream.index)
        if stream is None:
            return
        packet.stream = stream
        self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoders, finish the file and move it into place."""
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        for transcoder in self.transcoders.values():
            for packet in transcoder.flush():
                self.container.mux(packet)
        self.container.close()
        self.output.commit()

    def abort(self) -> None:
        """Drop everything written so far (no partial file is left)."""
        with contextlib.suppress(Exception):  # the container may be half set up; removal below is what matters
            self.container.close()
        self.output.discard()
