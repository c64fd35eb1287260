"""Lossy re-encoding of LR frames in memory: the compressed-source case of ``--eval``.

:class:`Recompressor` encodes each frame it is given with a video encoder
(libx264 by default, at a CRF) and decodes it straight back, so the engine sees
what a streaming service would deliver: blocking, ringing and mosquito noise,
with P-frames referencing earlier frames. No B-frames and zero-latency tuning
keep it one frame in, one frame out. PyAV only; no torch.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import av
import numpy as np

from vsr.frames import FORMATS, YuvFrame
from vsr.io.probe import FALLBACK_RATE, MediaError, frame_qp

__all__ = ["CRF_RANGES", "Recompressor", "check_recompress", "h264_roundtrip_sequence", "h264_roundtrip_y"]

# The CRF scale of each encoder the option takes (FFmpeg's ranges).
CRF_RANGES = {"libx264": (0, 51), "libx265": (0, 51), "libvpx-vp9": (0, 63)}
_DECODERS = {"libx264": "h264", "libx265": "hevc", "libvpx-vp9": "vp9"}


def check_recompress(codec: str, crf: int) -> None:
    """MediaError unless ``codec`` is a supported encoder here and ``crf`` is in its range."""
    if codec not in CRF_RANGES:
        raise MediaError(f"--eval-codec {codec!r} is not supported; use one of {', '.join(CRF_RANGES)}")
    try:
        av.codec.Codec(codec, "w")
    except (ValueError, av.error.FFmpegError):
        raise MediaError(f"--eval-codec {codec}: this FFmpeg build has no such encoder") from None
    lo, hi = CRF_RANGES[codec]
    if not lo <= crf <= hi:
        raise MediaError(f"--eval-crf {crf} is outside {codec}'s range {lo}..{hi}")


class Recompressor:
    """Encode and decode 8-bit YuvFrames one at a time (same size and format for the whole clip)."""

    def __init__(self, width: int, height: int, pix_fmt: str, *, codec: str = "libx264", crf: int = 28,
                 rate: Fraction = FALLBACK_RATE, threads: int = 0) -> None:
        """``threads``: encoder and decoder threads, 0 for the codecs' own choice. The training
        patches use 1: a codec's thread pool costs more to start than a 48 px frame costs to code."""
        check_recompress(codec, crf)
        if FORMATS[pix_fmt].bit_depth != 8 or FORMATS[pix_fmt].subsampling is None:
            raise MediaError(f"--eval-crf needs 8-bit YUV frames, not {pix_fmt}")
        self.pix_fmt = pix_fmt
        self.encoder = av.CodecContext.create(codec, "w")
        self.encoder.width, self.encoder.height = width, height
        self.encoder.pix_fmt = pix_fmt.replace("yuvj", "yuv")
        self.encoder.time_base = 1 / rate
        self.encoder.framerate = rate
        options = {"crf": str(crf)}
        if threads:
            options["threads"] = str(threads)
        if codec in ("libx264", "libx265"):
            options.update(preset="veryfast", tune="zerolatency", bframes="0")
        else:
            options.update(deadline="realtime", **{"cpu-used": "8", "lag-in-frames": "0", "b": "0"})
        self.encoder.options = options
        self.encoder.open()
        self.decoder = av.CodecContext.create(_DECODERS[codec], "r")
        self.decoder.options = {"export_side_data": "venc_params"}  # the QP of each frame, for qp
        if threads:
            self.decoder.thread_count = threads
        self.index = 0
        self.qp: float | None = None  # the last frame's mean macroblock QP (H.264 only; see frame_qp)

    def __call__(self, frame: YuvFrame) -> YuvFrame:
        """The frame after one trip through the encoder: same planes' shapes, dtype and timestamps."""
        vf = av.VideoFrame(frame.width, frame.height, self.encoder.pix_fmt)
        for plane, src in zip(vf.planes, frame.planes, strict=False):
            dst = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, -1)
            dst[:, : src.shape[1]] = src
        vf.pts = self.index
        self.index += 1
        decoded = []
        for packet in self.encoder.encode(vf):
            decoded.extend(self.decoder.decode(packet))
        if len(decoded) != 1:
            raise MediaError(f"the {self.encoder.name} round trip returned {len(decoded)} frames for one")
        self.qp = frame_qp(decoded[0])
        out = decoded[0].reformat(format=self.encoder.pix_fmt)
        planes = tuple(np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].copy()
                       for p in out.planes)
        return replace(frame, planes=planes)


def h264_roundtrip_y(y: np.ndarray, crf: int, reference: np.ndarray | None = None) -> np.ndarray:
    """One luma patch (uint8 (H, W)) through libx264 at ``crf`` and back.

    The training degradation's codec step. Without ``reference`` the patch is coded as an
    intra frame; with one (uint8, same shape) the reference is coded first and the patch
    second, as a P-frame predicted from it: the motion-compensated residual coding that
    most frames of a real stream carry.
    """
    return h264_roundtrip_sequence([y] if reference is None else [reference, y], crf)[-1]


def h264_roundtrip_sequence(planes: list[np.ndarray], crf: int) -> list[np.ndarray]:
    """Consecutive luma planes (uint8 (H, W), one shape) through one libx264 stream at ``crf`` and back.

    The first is coded as an intra frame, every later one as a P-frame predicted from the
    frames before it, as :class:`Recompressor` codes a clip (``veryfast``, no B-frames).
    Chroma is flat grey; odd sides are padded by repeating the last line and cropped again
    after decoding. One encoder and decoder thread: the same planes as the codecs' default
    threading at patch sizes (tests/test_recompress.py), at a fraction of the start-up cost.
    Returns the decoded planes, same shapes, uint8.
    """
    check_recompress("libx264", crf)
    if not planes:
        return []
    h, w = planes[0].shape
    padded = [np.pad(f, ((0, h % 2), (0, w % 2)), mode="edge") for f in planes]
    ph, pw = padded[0].shape
    grey = np.full((ph // 2, pw // 2), 128, np.uint8)
    recompress = Recompressor(pw, ph, "yuv420p", crf=crf, threads=1)
    return [recompress(YuvFrame((plane, grey, grey), "yuv420p", i, Fraction(1, 25), 0)).y[:h, :w]
            for i, plane in enumerate(padded)]
