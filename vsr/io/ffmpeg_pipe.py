"""The ffmpeg backend: decode and encode through the system ``ffmpeg`` binary.

Frames cross the process boundary as raw planar YUV on pipes (commands built
with ffmpeg-python, run as argument lists, never through a shell). Audio and
subtitles are copied by the encoding ffmpeg straight from the source file.
What differs from the PyAV backend, because raw video on a pipe carries no
timestamps: the output is constant frame rate at the source's average rate
(per-frame timestamps of a variable-rate source are not kept), and timestamps
reported for decoded frames come from ffprobe's packet list.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import IO

import ffmpeg
import numpy as np

from vsr.config import EncodeConfig
from vsr.frames import FORMATS, YuvFrame, chroma_size
from vsr.io.atomic import PendingOutput
from vsr.io.encode import (
    AUDIO_FOR_CONTAINER,
    SUBTITLES_FOR_CONTAINER,
    TEXT_SUBTITLES,
    container_format,
    hdr_note,
    resolve_codec,
    x265_params,
)
from vsr.io.probe import MediaError, VideoInfo, frame_rate, hdr_static, main_video, open_input, pixel_aspect

__all__ = ["FfmpegReader", "FfmpegWriter", "require_ffmpeg"]

log = logging.getLogger(__name__)

_QUIET = ["-hide_banner", "-loglevel", "error", "-nostdin"]
# ffprobe prints colour tags by name; FFmpeg's enum codes (libavutil/pixfmt.h)
# are what VideoInfo holds and what the ffmpeg command takes back.
_RANGE = {"tv": 1, "pc": 2}
_PRIMARIES = {"bt709": 1, "bt470m": 4, "bt470bg": 5, "smpte170m": 6, "smpte240m": 7, "film": 8, "bt2020": 9,
              "smpte428": 10, "smpte431": 11, "smpte432": 12, "jedec-p22": 22}
_TRC = {"bt709": 1, "gamma22": 4, "gamma28": 5, "smpte170m": 6, "smpte240m": 7, "linear": 8, "log100": 9,
        "log316": 10, "iec61966-2-4": 11, "bt1361e": 12, "iec61966-2-1": 13, "bt2020-10": 14, "bt2020-12": 15,
        "smpte2084": 16, "smpte428": 17, "arib-std-b67": 18}
_SPACE = {"gbr": 0, "bt709": 1, "fcc": 4, "bt470bg": 5, "smpte170m": 6, "smpte240m": 7, "ycgco": 8,
          "bt2020nc": 9, "bt2020c": 10}


def require_ffmpeg() -> tuple[str, str]:
    """Paths of ffmpeg and ffprobe, or a MediaError saying what is missing."""
    ff, fp = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if not ff or not fp:
        raise MediaError("--backend ffmpeg needs the ffmpeg and ffprobe binaries on PATH (e.g. apt-get install ffmpeg)")
    return ff, fp


def _args(stream: ffmpeg.nodes.Node) -> list[str]:
    args = ffmpeg.compile(stream)
    return [args[0], *_QUIET, *args[1:]]


# What each container can take as it is; a stream outside its set is transcoded (audio, text
# subtitles) or dropped (bitmap subtitles). Containers not listed take every codec.
_COPYABLE = {
    "webm": {"audio": {"opus", "vorbis"}, "subtitle": {"webvtt"}},
    "mp4": {"subtitle": {"mov_text"}},
    "mov": {"subtitle": {"mov_text"}},
}


def _side_streams(source: Path, fmt: str, video_index: int) -> tuple[list[tuple[str, str]], list[str]]:
    """The source's audio and subtitle streams as (ffmpeg selector, output codec), ``copy`` where
    ``fmt`` takes them as they are, and a note (logged here) for each stream not copied as it is."""
    _, ffprobe = require_ffmpeg()
    out = subprocess.run([ffprobe, "-v", "error", "-show_entries", "stream=index,codec_type,codec_name", "-of", "json",
                          str(source)], capture_output=True, check=True)
    plan: list[tuple[str, str]] = []
    notes: list[str] = []

    def note(text: str, *, lost: bool = False) -> None:  # as the PyAV writer logs them
        notes.append(text)
        (log.warning if lost else log.info)("%s", text)

    counts = {"audio": 0, "subtitle": 0}
    for st in json.loads(out.stdout).get("streams", []):
        kind, name, index = st.get("codec_type"), st.get("codec_name", "?"), st["index"]
        if kind == "video" and index != video_index:
            note(f"video stream {index} ({name}) not copied: the output holds one video stream")
        if kind not in counts:
            continue
        selector = f"{kind[0]}:{counts[kind]}"
        counts[kind] += 1
        allowed = _COPYABLE.get(fmt, {}).get(kind)
        if allowed is None or name in allowed:
            plan.append((selector, "copy"))
            continue
        if kind == "audio":
            target: str | None = AUDIO_FOR_CONTAINER.get(fmt, "aac")
        else:
            target = SUBTITLES_FOR_CONTAINER.get(fmt) if name in TEXT_SUBTITLES else None
        if target is None:
            note(f"{kind} stream {index} ({name}) dropped: .{fmt} cannot hold it", lost=True)
            continue
        plan.append((selector, target))
        note(f"{kind} stream {index} ({name}) transcoded to {target}: .{fmt} cannot hold it")
    return plan, notes


def _stderr_tail(fh: IO[bytes]) -> str:
    fh.seek(0)
    lines = fh.read().decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no message"


class FfmpegReader:
    """Stream frames of the main video stream of ``path`` (as the PyAV backend picks it) from an ffmpeg pipe."""

    def __init__(self, path: Path, *, allow_partial: bool = False) -> None:
        require_ffmpeg()
        self.path = Path(path)
        self.allow_partial = allow_partial
        try:
            meta = ffmpeg.probe(str(self.path), select_streams="v", show_entries="stream:format")
        except ffmpeg.Error as exc:
            msg = exc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["unreadable"]
            raise MediaError(f"not a readable video: {self.path} ({msg[0]})") from None
        streams = meta.get("streams", [])
        if not streams:
            raise MediaError(f"file with no video stream: {self.path}")
        with open_input(self.path) as container:  # the stream the PyAV backend upscales, by one rule
            self.stream_index = main_video(container).index
        s = next((st for st in streams if st.get("index") == self.stream_index), streams[0])
        rotation = next((sd["rotation"] for sd in s.get("side_data_list", []) if "rotation" in sd), 0)
        rotation = rotation or int(s.get("tags", {}).get("rotate", 0) or 0)
        if rotation:
            # ffmpeg auto-rotates on decode, which changes the frame size the pipe is read at.
            raise MediaError(f"--backend ffmpeg does not handle rotated video ({self.path} is rotated "
                             f"{rotation} degrees); use the default --backend pyav")
        src_fmt = s.get("pix_fmt", "yuv420p")
        self.pix_fmt = src_fmt if src_fmt in FORMATS else ("yuv420p10le" if "10" in src_fmt else "yuv420p")
        self.width, self.height = int(s["width"]), int(s["height"])
        rate = Fraction(s.get("avg_frame_rate", "0/1"))
        tb = Fraction(s.get("time_base", "1/90000"))
        duration = float(s.get("duration") or meta.get("format", {}).get("duration") or 0) or None
        rgb_source = src_fmt not in FORMATS and (src_fmt.startswith(("rgb", "bgr", "gbr", "argb", "abgr", "0rgb",
                                                                     "0bgr", "pal8")))
        self.info = VideoInfo(
            width=self.width, height=self.height, rate=rate if rate > 0 else Fraction(s.get("r_frame_rate", "25/1")),
            time_base=tb, pix_fmt=src_fmt, codec=s.get("codec_name", "?"),
            color_primaries=_PRIMARIES.get(s.get("color_primaries", ""), 2),
            color_trc=_TRC.get(s.get("color_transfer", ""), 2),
            # An RGB source reaches the pipe as BT.601 limited-range YUV (swscale's default): tag that.
            colorspace=6 if rgb_source else _SPACE.get(s.get("color_space", ""), 2),
            color_range=1 if rgb_source else _RANGE.get(s.get("color_range", ""), 0),
            has_audio=False, duration=duration, nb_frames=int(s.get("nb_frames") or 0),
            sample_aspect_ratio=pixel_aspect(s.get("sample_aspect_ratio")),
            field_order={"progressive": 1, "tt": 2, "bb": 3, "tb": 4, "bt": 5}.get(s.get("field_order", ""), 0),
            hdr=hdr_static(self.path),
        )

    def _packet_pts(self) -> list[int]:
        _, ffprobe = require_ffmpeg()
        out = subprocess.run(
            [ffprobe, "-v", "error", "-select_streams", str(self.stream_index), "-show_entries", "packet=pts",
             "-of", "json", str(self.path)],
            capture_output=True, check=True,
        )
        pts = [p.get("pts") for p in json.loads(out.stdout).get("packets", [])]
        return sorted(int(p) for p in pts if p is not None)

    def items(self) -> Iterator[YuvFrame]:
        """The Reader interface (vsr.io.backends): frames only; ffmpeg copies the other streams itself."""
        return self.frames()

    def close(self) -> None:
        """Nothing held open between reads (each read is its own ffmpeg process)."""

    def __enter__(self) -> FfmpegReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def frames(self) -> Iterator[YuvFrame]:
        """YuvFrames in display order; MediaError if ffmpeg fails."""
        info = FORMATS[self.pix_fmt]
        dtype = np.uint16 if info.bit_depth > 8 else np.uint8
        cw, ch = chroma_size(self.width, self.height, self.pix_fmt)
        shapes = [(self.height, self.width)] + ([] if info.subsampling is None else [(ch, cw), (ch, cw)])
        sizes = [h * w * np.dtype(dtype).itemsize for h, w in shapes]
        pts_list = self._packet_pts()
        cmd = _args(ffmpeg.input(str(self.path)).output("pipe:", format="rawvideo", pix_fmt=self.pix_fmt,
                                                          fps_mode="passthrough", map=f"0:{self.stream_index}"))
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
            index = 0
            try:
                while True:
                    assert proc.stdout is not None  # Popen(stdout=PIPE)
                    raw = proc.stdout.read(sum(sizes))
                    if not raw:
                        break
                    if len(raw) < sum(sizes):
                        raise MediaError(f"ffmpeg delivered a partial frame after {index} frames")
                    planes, offset = [], 0
                    for (h, w), n in zip(shapes, sizes, strict=False):
                        planes.append(np.frombuffer(raw, dtype, count=h * w, offset=offset).reshape(h, w).copy())
                        offset += n
                    pts = pts_list[index] if index < len(pts_list) else None
                    yield YuvFrame(tuple(planes), self.pix_fmt, pts, self.info.time_base, index)
                    index += 1
            finally:
                if proc.stdout is not None:
                    proc.stdout.close()
                code = proc.wait()
            if code != 0:
                raise MediaError(f"ffmpeg could not decode {self.path}: {_stderr_tail(err)}")
            if index == 0:
                raise MediaError("no video frame could be decoded (corrupt or truncated file)")
            problem = None
            if self.info.nb_frames and index < self.info.nb_frames:
                problem = f"truncated file: the index lists {self.info.nb_frames} video frames, only {index} decoded"
            elif len(pts_list) > index + 1:  # a cut packet: the decoder dropped the frames in flight
                problem = f"truncated file: {len(pts_list)} video packets, only {index} frames decoded"
            if problem is not None:
                if not self.allow_partial:
                    raise MediaError(problem + " (pass --allow-partial to keep what decodes)")
                log.warning("%s; keeping the %d decoded frames (--allow-partial)", problem, index)


class FfmpegWriter:
    """Encode YuvFrames with the system ffmpeg; audio/subtitles copied from ``source`` (or converted where
    the container cannot take them), whose upscaled video stream is ``video_index``."""

    def __init__(self, path: Path, *, width: int, height: int, pix_fmt: str, info: VideoInfo,
                 encode: EncodeConfig, source: Path | None, codec: str | None = None, video_index: int = 0) -> None:
        require_ffmpeg()
        self.path = Path(path)
        self.output = PendingOutput(self.path)
        fmt = container_format(self.path)
        codec = codec or resolve_codec(self.path, encode.codec)  # an OutputSpec brings it decided
        rate = frame_rate(info.rate)
        video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt=pix_fmt, s=f"{width}x{height}",
                             framerate=f"{rate.numerator}/{rate.denominator}")
        opts: dict[str, object] = {"vcodec": codec, "pix_fmt": encode.pix_fmt or pix_fmt, "f": fmt}
        if codec in ("libx264", "libx265", "libsvtav1", "libvpx-vp9"):
            opts["crf"] = encode.crf
        if codec in ("libx264", "libx265"):
            opts["preset"] = encode.preset
        if codec == "libx265":
            opts["x265-params"] = x265_params(info)
        for key, value in (("color_primaries", info.color_primaries), ("color_trc", info.color_trc),
                           ("colorspace", info.colorspace)):
            if value != 2:  # 2 = unspecified: let ffmpeg leave it out
                opts[key] = value
        if info.color_range:
            opts["color_range"] = info.color_range
        if info.sample_aspect_ratio:
            sar = info.sample_aspect_ratio
            opts["vf"] = f"setsar={sar.numerator}/{sar.denominator}"
        inputs = [video]
        self.stream_notes: list[str] = []  # what the output does not keep as the source had it, and why
        if source is not None and encode.audio:
            src = ffmpeg.input(str(source))
            plan, self.stream_notes = _side_streams(source, fmt, video_index)
            for out_index, (selector, codec_out) in enumerate(plan, start=1):
                inputs.append(src[selector])
                opts[f"c:{out_index}"] = codec_out
            if not plan:  # an optional map that matches nothing keeps the source in the command
                inputs.append(src["a?"])
            opts.update(map_metadata=1, map_chapters=1)
        if info.hdr is not None and codec != "libx265":
            self.stream_notes.append(hdr_note(codec))
            log.warning("%s", self.stream_notes[-1])
        cmd = _args(ffmpeg.output(*inputs, str(self.output.part), **opts).overwrite_output())
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 (ffmpeg's stderr until the writer closes)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._err)
        self.frames = 0

    def write(self, frame: YuvFrame) -> None:
        try:
            for plane in frame.planes:
                self.proc.stdin.write(np.ascontiguousarray(plane).tobytes())  # type: ignore[union-attr]
        except BrokenPipeError:
            raise MediaError(f"ffmpeg stopped encoding: {_stderr_tail(self._err)}") from None
        self.frames += 1

    def write_packet(self, packet: object) -> None:
        """Never called with this backend's reader, whose items are frames only: ffmpeg copies
        audio and subtitles from the source itself."""

    def close(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]  # Popen(stdin=PIPE)
        if self.proc.wait() != 0:
            msg = _stderr_tail(self._err)
            self.abort()
            raise MediaError(f"ffmpeg failed to encode: {msg}")
        self._err.close()
        self.output.commit()

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._err.close()
        self.output.discard()
