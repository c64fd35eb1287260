"""Streaming decoder (PyAV): frames as :class:`vsr.frames.YuvFrame`, in order.

:func:`demux` walks the file once and yields, in file order, decoded video
frames and the untouched packets of the streams we pass through (audio,
subtitles), so that the writer can interleave them without buffering a whole
track. Nothing is read ahead beyond what the decoder itself needs; frame
counts come from decoding, never from the container's ``nb_frames``.

Pixel formats: the ones in :data:`vsr.frames.FORMATS` are used as they are;
``nv12``/``nv21`` → ``yuv420p`` and ``p010le`` → ``yuv420p10le`` (same
samples, other layout); other planar YUV drops its alpha plane and goes to 8 or 10 bits at its
own subsampling (a warning says so); RGB-family formats → ``yuv444p`` through
:func:`vsr.color.rgb_to_ycbcr` (BT.601 studio swing), the one RGB→YUV path;
anything else → ``yuv444p`` through libswscale, with a warning.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TypeAlias

import av
import numpy as np
from numpy.typing import NDArray

from vsr.color import rgb_to_ycbcr, to_uint
from vsr.frames import FORMATS, YuvFrame
from vsr.io.probe import MediaError, frame_rate, main_video, open_input

__all__ = ["BT601_MATRIX", "LIMITED_RANGE", "PASSTHROUGH_TYPES", "demux", "frame_to_yuv", "iter_frames"]

log = logging.getLogger(__name__)

PASSTHROUGH_TYPES = ("audio", "subtitle")

BT601_MATRIX = 6  # AVCOL_SPC_SMPTE170M
LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG
_SAME_SAMPLES = {"nv12": "yuv420p", "nv21": "yuv420p", "p010le": "yuv420p10le", "nv16": "yuv422p"}
# Planar YUV outside FORMATS: alpha planes (yuva*) are dropped, other bit depths (9, 12, 14, 16;
# big-endian) go to the 8- or 10-bit format of the same subsampling; neither changes the matrix.
_PLANAR_YUV = re.compile(r"^yuva?(420|422|444)p(\d+)?(le|be)?$")
_RGB_FAMILY = ("rgb", "bgr", "gbr", "argb", "abgr", "rgba", "bgra", "pal8", "0rgb", "rgb0", "bgr0", "0bgr")

Item: TypeAlias = YuvFrame | av.Packet


def _plane_array(plane: av.video.plane.VideoPlane, dtype: type) -> NDArray:
    itemsize = np.dtype(dtype).itemsize
    arr: NDArray = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // itemsize)
    return arr[:, : plane.width].copy()


def frame_to_yuv(frame: av.VideoFrame, index: int) -> YuvFrame:
    """Convert a decoded PyAV frame into a YuvFrame (see the module doc for formats)."""
    name = frame.format.name
    pts = frame.pts
    time_base = frame.time_base
    rotation = int(getattr(frame, "rotation", 0) or 0)
    prim, trc = int(frame.color_primaries), int(frame.color_trc)
    # What our own conversions write: BT.601 (SMPTE 170M matrix), limited range (vsr.color).
    converted = (prim, trc, BT601_MATRIX, LIMITED_RANGE)
    if name in _SAME_SAMPLES:
        frame = frame.reformat(format=_SAME_SAMPLES[name])
        name = frame.format.name
    planar = _PLANAR_YUV.match(name) if name not in FORMATS else None
    if planar is not None:
        sub, bits = planar.group(1), int(planar.group(2) or 8)
        target = f"yuv{sub}p" if bits <= 8 else f"yuv{sub}p10le"
        if index == 0:
            what = "alpha plane dropped" if name.startswith("yuva") else ""
            if bits != FORMATS[target].bit_depth or planar.group(3) == "be":
                what += (", " if what else "") + f"{bits}-bit samples converted to {FORMATS[target].bit_depth}-bit"
            log.warning("pixel format %s read as %s: %s", name, target, what)
        if bits == FORMATS[target].bit_depth and planar.group(3) != "be":
            dtype = np.uint16 if bits > 8 else np.uint8  # same samples: the first three planes as they are
            planes = tuple(_plane_array(p, dtype) for p in frame.planes[:3])
            return YuvFrame(planes, target, pts, time_base, index, rotation,
                            (prim, trc, int(frame.colorspace), int(frame.color_range)))
        frame = frame.reformat(format=target)
        name = target
    if name in FORMATS:
        dtype = np.uint16 if FORMATS[name].bit_depth > 8 else np.uint8
        planes = tuple(_plane_array(p, dtype) for p in frame.planes)
        tags = (prim, trc, int(frame.colorspace), int(frame.color_range))
        return YuvFrame(planes, name, pts, time_base, index, rotation, tags)
    if name.startswith(_RGB_FAMILY) or name in ("gbrp", "gbrap"):
        rgb = frame.to_ndarray(format="rgb24")
        ycc = to_uint(rgb_to_ycbcr(rgb))
        return YuvFrame(tuple(np.ascontiguousarray(ycc[:, :, i]) for i in range(3)), "yuv444p", pts, time_base,
                        index, rotation, converted)
    if index == 0:
        log.warning("pixel format %s converted to yuv444p by libswscale", name)
    frame = frame.reformat(format="yuv444p", dst_colorspace="ITU601", dst_color_range="MPEG")
    return YuvFrame(tuple(_plane_array(p, np.uint8) for p in frame.planes), "yuv444p", pts, time_base, index, rotation,
                    converted)


def declared_seconds(container: av.container.InputContainer) -> float | None:
    """The video stream's declared duration in seconds: its own, else its
    Matroska ``DURATION`` tag, else the container's when video is its only stream."""
    video = main_video(container)
    if video.duration and video.time_base:
        return float(video.duration * video.time_base)
    tag = video.metadata.get("DURATION")
    if tag:
        try:
            h, m, sec = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec)
        except ValueError:
            pass
    if container.duration and len(container.streams) == 1:
        return container.duration / 1e6
    return None


def demux(container: av.container.InputContainer, *, passthrough: bool = True,
          allow_partial: bool = False) -> Iterator[Item]:
    """Yield YuvFrames of the main video stream (:func:`vsr.io.probe.main_video`) and, if ``passthrough``, the
    packets of audio/subtitle streams, in file order. Raises MediaError on a
    corrupt or truncated stream: a decode error, fewer packets than the index
    lists, or a decoded span that falls short of the declared duration by more
    than 1.5 frames (frame-threaded decoders drop the frames in flight at a
    cut packet without an error). ``allow_partial`` turns the last two into a
    warning."""
    video = main_video(container)
    video.thread_type = "AUTO"
    streams = [video]
    if passthrough:
        streams += [s for s in container.streams if s.type in PASSTHROUGH_TYPES]
    index = 0
    packets = 0
    last_pts: int | None = None
    step = _frame_step(video)
    first_pts: int | None = None
    try:
        for packet in container.demux(streams):
            if packet.stream.index != video.index:
                if packet.dts is not None:  # the flush packet at the end has none
                    yield packet
                continue
            packets += packet.size > 0
            for frame in packet.decode():
                if frame.pts is None:  # synthesise from the previous frame and the rate
                    frame.pts = 0 if last_pts is None else last_pts + step
                    frame.time_base = video.time_base
                last_pts = frame.pts
                if first_pts is None:
                    first_pts = frame.pts
                yield frame_to_yuv(frame, index)
                index += 1
    except av.error.FFmpegError as exc:
        raise MediaError(f"corrupt or truncated video after {index} frames: {exc.strerror or exc}") from None
    if index == 0:
        raise MediaError("no video frame could be decoded (corrupt or truncated file)")
    # The container's frame count is not trusted as a count, but fewer packets
    # than the index lists means the file was cut short.
    problem = None
    if video.frames and packets < video.frames:
        problem = f"truncated file: the index lists {video.frames} video frames, only {packets} are present"
    declared = declared_seconds(container)
    if problem is None and declared and first_pts is not None and last_pts is not None and video.time_base:
        frame_s = float(step * video.time_base)
        span = float((last_pts - first_pts) * video.time_base) + frame_s
        if declared - span > 1.5 * frame_s and not (video.frames and index >= video.frames):
            problem = (f"truncated file: decoded {index} frames covering {span:.2f} s of the "
                       f"{declared:.2f} s the file declares")
    if problem is not None:
        if not allow_partial:
            raise MediaError(problem + " (pass --allow-partial to keep what decodes)")
        log.warning("%s; keeping the %d decoded frames (--allow-partial)", problem, index)


def _frame_step(stream: av.video.stream.VideoStream) -> int:
    rate = frame_rate(stream.average_rate or stream.guessed_rate)
    tb = stream.time_base or Fraction(1, 90000)
    return max(1, round(1 / (rate * tb)))


def iter_frames(path: Path) -> Iterator[YuvFrame]:
    """Just the video frames of ``path``, streamed; the file is closed at the end."""
    container = open_input(path)
    try:
        yield from demux(container, passthrough=False)
    finally:
        container.close()
