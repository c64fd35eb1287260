"""Video backends behind one interface: a :class:`Reader` and a :class:`Writer` per backend.

``pyav`` decodes and encodes in process (PyAV) and passes audio and subtitle packets through;
``ffmpeg`` streams raw frames through the system ffmpeg binary, which copies audio and
subtitles itself. :func:`plan_output` decides once, from the input and its first upscaled
frame, what the output is (:class:`OutputSpec`); :func:`open_writer` builds the backend's
writer from that spec alone. No torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from vsr.config import EncodeConfig
from vsr.frames import YuvFrame
from vsr.io.decode import demux
from vsr.io.encode import ClipWriter, output_pix_fmt, resolve_codec, with_frame_colors
from vsr.io.ffmpeg_pipe import FfmpegReader, FfmpegWriter
from vsr.io.probe import MediaError, VideoInfo, hdr_static, open_input, video_info

__all__ = ["BACKENDS", "OutputSpec", "Reader", "Writer", "open_reader", "open_writer", "plan_output"]


class Reader(Protocol):
    """Decoded frames of the first video stream and, where the backend passes them through, the
    other streams' packets, in file order. A context manager."""

    info: VideoInfo

    def items(self) -> Iterator[YuvFrame | Any]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Reader: ...

    def __exit__(self, *exc: object) -> None: ...


class Writer(Protocol):
    """Frames (and passthrough packets) to ``OUT.part``; ``close`` renames it into place, ``abort``
    removes it. ``stream_notes``: the audio/subtitle streams transcoded or dropped, and why."""

    @property
    def stream_notes(self) -> Sequence[str]: ...

    def write(self, frame: YuvFrame) -> None: ...

    def write_packet(self, packet: Any) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


@dataclass(frozen=True)
class OutputSpec:
    """What the output clip is, decided once: encoder, pixel format, size, colour tags and rate
    (``info``, the source's with the frames' own colour tags), rotation."""

    path: Path
    codec: str
    pix_fmt: str
    width: int
    height: int
    rotation: int
    info: VideoInfo


def plan_output(dst: Path, info: VideoInfo, first: YuvFrame, source: YuvFrame, encode: EncodeConfig) -> OutputSpec:
    """The OutputSpec for ``dst`` from the input's ``info``, its first decoded frame ``source``
    and that frame upscaled (``first``); MediaError when the encoder cannot take the frames."""
    codec = resolve_codec(dst, encode.codec)
    pix = output_pix_fmt(first.pix_fmt, codec, encode.pix_fmt)
    if pix.replace("yuvj", "yuv") != first.pix_fmt.replace("yuvj", "yuv"):
        raise MediaError(f"{codec} cannot encode {first.pix_fmt}; pick another --codec")
    return OutputSpec(Path(dst), codec, pix, first.width, first.height, source.rotation,
                      with_frame_colors(info, source.color))


class PyAvReader:
    """The PyAV reader: one pass over the file, frames and passthrough packets interleaved."""

    def __init__(self, path: Path, *, passthrough: bool = True, allow_partial: bool = False) -> None:
        self.path = Path(path)
        self.container = open_input(self.path)
        self.info = replace(video_info(self.container), hdr=hdr_static(self.path))
        self.passthrough = passthrough
        self.allow_partial = allow_partial

    def items(self) -> Iterator[YuvFrame | Any]:
        return demux(self.container, passthrough=self.passthrough, allow_partial=self.allow_partial)

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> PyAvReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pyav_writer(spec: OutputSpec, encode: EncodeConfig, reader: Reader) -> Writer:
    return ClipWriter(spec.path, width=spec.width, height=spec.height, pix_fmt=spec.pix_fmt, info=spec.info,
                      encode=encode, source=getattr(reader, "container", None), rotation=spec.rotation,
                      codec=spec.codec)


def _ffmpeg_writer(spec: OutputSpec, encode: EncodeConfig, reader: Reader) -> Writer:
    return FfmpegWriter(spec.path, width=spec.width, height=spec.height, pix_fmt=spec.pix_fmt, info=spec.info,
                        encode=encode, source=getattr(reader, "path", None), codec=spec.codec,
                        video_index=getattr(reader, "stream_index", 0))


def _ffmpeg_reader(path: Path, *, passthrough: bool = True, allow_partial: bool = False) -> Reader:
    return FfmpegReader(path, allow_partial=allow_partial)  # ffmpeg copies the other streams itself


# backend name -> (reader factory, writer factory)
BACKENDS: dict[str, tuple[Callable[..., Reader], Callable[[OutputSpec, EncodeConfig, Reader], Writer]]] = {
    "pyav": (PyAvReader, _pyav_writer),
    "ffmpeg": (_ffmpeg_reader, _ffmpeg_writer),
}


def open_reader(backend: str, path: Path, *, passthrough: bool = True, allow_partial: bool = False) -> Reader:
    """The backend's reader for ``path`` (MediaError for an unreadable input)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    return BACKENDS[backend][0](path, passthrough=passthrough, allow_partial=allow_partial)


def open_writer(backend: str, spec: OutputSpec, encode: EncodeConfig, reader: Reader) -> Writer:
    """The backend's writer for ``spec`` (audio and subtitles taken from ``reader``'s input)."""
    return BACKENDS[backend][1](spec, encode, reader)
