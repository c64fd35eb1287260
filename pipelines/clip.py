"""One input through the engine: a video clip (streamed) or a still image.

Video: a reader thread decodes (and, in ``--eval`` mode, degrades) frames, the
calling thread batches luma planes through the engine, a writer thread
encodes, muxes passthrough packets and measures. Queues between them are
bounded, so memory stays flat however long the clip. Outputs: ``DST`` (via
``DST.part``), ``DST.frames.csv`` (one row per frame) and
``DST.summary.json``.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vsr.color import grey_to_y8, rgb_to_y, rgb_to_ycbcr, to_uint, y8_to_grey, y_to_grey, ycbcr_to_rgb
from vsr.config import EngineConfig, UpscaleConfig
from vsr.engine import Engine, EngineInfo, EngineStats, build_engine, upscale_frames
from vsr.frames import YuvFrame, resize_plane
from vsr.io.atomic import PendingOutput, atomic_output, write_text_atomic
from vsr.io.backends import OutputSpec, Reader, Writer, open_reader, open_writer, plan_output
from vsr.io.decode import iter_frames
from vsr.io.encode import container_format
from vsr.io.images import (
    ALPHA_EXTENSIONS,
    DEEP_EXTENSIONS,
    IMAGE_EXTENSIONS,
    Picture,
    animated_frames,
    is_image_path,
    read_image,
    write_image,
)
from vsr.io.probe import QP_FRAMES, MediaError, SourceChoice, open_input, probe, stream_qp, stream_source
from vsr.io.recompress import Recompressor, check_recompress
from vsr.temporal import TemporalParams, TemporalStage
from vsr.weights import qp_floor

from .metrics import COLUMNS, Mode, degrade_frame, frame_metrics, mode_of
from .plot import Series, plot
from .prefetch import Prefetch, Sink

__all__ = ["ClipReport", "FrameJob", "TemporalChoice", "check_paths", "engine_key", "eval_stream_qp", "input_source",
           "note_source", "sidecar_paths", "temporal_choice", "upscale_path"]

log = logging.getLogger(__name__)

# progress(frames_done, frames_expected_or_None)
ProgressFn = Callable[[int, int | None], None]


@dataclass(frozen=True)
class TemporalChoice:
    """Whether the flow-guided temporal blend (``vsr.temporal``) ran on a clip, and why.
    ``sigma``: its difference tolerance at this scale and QP, 8-bit code values (None: off)."""

    on: bool
    reason: str
    qp: float | None = None
    sigma: float | None = None


@dataclass(frozen=True)
class ClipReport:
    src: str
    dst: str
    frames: int
    seconds: float
    fps: float
    size_in: tuple[int, int]
    size_out: tuple[int, int]
    means: dict[str, float]
    split_seconds: dict[str, float] = field(default_factory=dict)
    engine: EngineInfo | None = None
    # What the writer could not keep as the source had it (streams transcoded or dropped, pixel
    # aspect, HDR metadata), and why; then what the image path dropped (alpha, 16 bits, ICC) or
    # the video path could not do (deinterlace).
    streams: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    temporal: TemporalChoice | None = None  # None for an image


def sidecar_paths(dst: Path) -> tuple[Path, Path]:
    """``DST.frames.csv`` and ``DST.summary.json``."""
    dst = Path(dst)
    return dst.with_name(dst.name + ".frames.csv"), dst.with_name(dst.name + ".summary.json")


def check_paths(src: Path, dst: Path, overwrite: bool) -> None:
    """Refuse what would lose data or cannot work, before any work is done."""
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise MediaError(f"input not found: {src}")
    if src.is_dir():
        raise MediaError(f"input is a directory, not a file: {src} (use 'vsr batch' for folders)")
    if dst.exists() and dst.resolve() == src.resolve():
        raise MediaError("output path is the input path; refusing to overwrite the input")
    if dst.is_dir():
        raise MediaError(f"output is a directory: {dst}")
    if dst.exists() and not overwrite:
        raise MediaError(f"output exists: {dst} (pass --overwrite to replace it)")
    if is_image_path(src) and (frames := animated_frames(src)) > 1:
        how = f" (e.g. ffmpeg -i {src.name} -c:v ffv1 frames.mkv)" if src.suffix.lower() == ".png" else ""
        raise MediaError(f"{src.name} is animated ({frames} frames) and only still images are upscaled as images; "
                         f"make it a video first{how}")
    if is_image_path(src) != is_image_path(dst):
        kind = "an image" if is_image_path(src) else "a video"
        raise MediaError(f"input is {kind}; give the output a matching extension")
    if is_image_path(dst):
        if dst.suffix.lower() not in IMAGE_EXTENSIONS:
            raise MediaError(f"unsupported output extension {dst.suffix!r}; use one of {', '.join(IMAGE_EXTENSIONS)}")
    else:
        container_format(dst)
    if not dst.parent.exists():
        raise MediaError(f"output folder does not exist: {dst.parent}")


def upscale_path(
    src: Path, dst: Path, cfg: UpscaleConfig, *, engine: tuple[Engine, EngineInfo] | None = None,
    progress: ProgressFn | None = None,
) -> ClipReport:
    """Upscale one video or image from ``src`` to ``dst`` (see module doc)."""
    src, dst = Path(src), Path(dst)
    check_paths(src, dst, cfg.overwrite)
    if cfg.eval_crf is not None:
        if is_image_path(src):
            raise MediaError("--eval-crf applies to videos (images: not supported)")
        check_recompress(cfg.eval_codec, cfg.eval_crf)
    if engine is None:
        stream = input_source(src, cfg)
        built, info = build_engine(cfg.engine, stream, engine_frame_size(src, cfg))
        engine = (built, note_source(info, stream))
    engine[0].stats = EngineStats()  # per clip, also when one engine serves a whole batch
    if is_image_path(src):
        return _upscale_image(src, dst, cfg, engine)
    return _upscale_video(src, dst, cfg, engine, progress)


def engine_frame_size(src: Path, cfg: UpscaleConfig) -> tuple[int, int] | None:
    """(H, W) of the frames the engine will see for ``src``, a video or an image (its LR copy in
    ``--eval`` mode), or None where unknown (a file that does not open: the reader reports that).

    Only the header is read (FFmpeg's image demuxers give an image's size too), so this costs
    nothing beside decoding; the engine's runtime probe then runs at this size.
    """
    try:
        info = probe(src)
    except (MediaError, OSError):
        return None
    if info.width < 1 or info.height < 1:
        return None
    if cfg.eval:
        return max(1, info.height // cfg.engine.scale), max(1, info.width // cfg.engine.scale)
    return info.height, info.width


def input_source(src: Path, cfg: UpscaleConfig) -> SourceChoice:
    """What the engine's ``source`` means for ``src``: clean or compressed, why, and the QP.

    ``auto`` follows what the engine will see: in ``--eval`` mode the degraded copy (compressed
    only with ``--eval-crf``), an image as clean, and a video by its stream (codec, bit rate).
    Compressed H.264 input also gets its quantiser (the stream's own, or in ``--eval-crf``
    mode that of the re-encoded copy), which picks among QP-banded compressed-source weights.
    """
    asked = cfg.engine.source
    if asked == "clean":
        return SourceChoice("clean", "--source clean")
    if is_image_path(src) or (cfg.eval and cfg.eval_crf is None):
        if asked == "compressed":
            return SourceChoice("compressed", "--source compressed")
        return SourceChoice("clean", "--eval upscales a clean downscale" if cfg.eval else "an image")
    if asked == "auto" and not cfg.eval:
        return stream_source(src)
    qp = eval_stream_qp(src, cfg) if cfg.eval else stream_qp(src)
    why = f"--eval-crf {cfg.eval_crf} re-encodes the LR with {cfg.eval_codec}" if asked == "auto" else \
        "--source compressed"
    return SourceChoice("compressed", why + (f", median macroblock QP {qp:.1f}" if qp is not None else ""), qp)


def eval_stream_qp(src: Path, cfg: UpscaleConfig) -> float | None:
    """Median QP of the first :data:`QP_FRAMES` frames of ``src``'s ``--eval-crf`` copy (the
    downscale re-encoded as :func:`_jobs` does it): the quantiser the engine will see. None for
    codecs that report none."""
    recompress: Recompressor | None = None
    qps = []
    for frame in itertools.islice(iter_frames(src), QP_FRAMES):
        lr, _ = degrade_frame(frame, cfg.engine.scale, cfg.degrade)
        if recompress is None:
            recompress = Recompressor(lr.width, lr.height, lr.pix_fmt, codec=cfg.eval_codec, crf=cfg.eval_crf or 0)
        recompress(lr)
        if recompress.qp is not None:
            qps.append(recompress.qp)
    return float(np.median(qps)) if qps else None


def engine_key(cfg: EngineConfig, stream: SourceChoice) -> tuple[str, int | None]:
    """What tells two inputs' engines apart: the source, and for compressed input the floor
    of the QP band whose weights run (None: the unbanded ones)."""
    banded = stream.source == "compressed" and cfg.weights is None
    return stream.source, qp_floor(cfg.model, cfg.model_scale, stream.qp) if banded else None


def note_source(info: EngineInfo, stream: SourceChoice) -> EngineInfo:
    """``info`` with the reason its weights' source was chosen (and when auto fell back, that too)."""
    why = stream.reason
    if info.source in ("clean", "compressed") and info.source != stream.source and info.model != "bicubic":
        why += f"; {info.model} x{info.scale} has no {stream.source}-source weights, so the {info.source} ones run"
    return replace(info, source_reason=why, qp=stream.qp)


def temporal_choice(mode: str, info: EngineInfo) -> TemporalChoice:
    """``--temporal`` for a clip run by the engine ``info`` describes. ``auto`` blends where it was
    measured to help (``runs/SHIP_RULE_temporal.md``): the compressed-source weights on a stream whose
    quantiser is known, since the tolerance follows it; clean sources are left as the net made them."""
    if mode == "off":
        return TemporalChoice(False, "--temporal off")
    if mode == "auto" and not (info.source == "compressed" and info.qp is not None):
        why = f"{info.model} x{info.scale} runs its clean-source weights" if info.source == "clean" else \
            "no measured quantiser" if info.source == "compressed" else f"{info.source} weights"
        return TemporalChoice(False, f"--temporal auto: {why}")
    why = "--temporal on" if mode == "on" else "--temporal auto: compressed source"
    qp_note = f"median QP {info.qp:.1f}" if info.qp is not None else "QP unknown, taken as 28"
    sigma = TemporalParams().sigma(info.total_scale, info.qp)  # the parameters _upscale_video's stage runs with
    return TemporalChoice(True, f"{why}, {qp_note}", info.qp, round(sigma, 3))


class _Sidecars:
    """Per-frame CSV and the summary JSON, both written as .part then renamed."""

    def __init__(self, dst: Path) -> None:
        self.csv_path, self.json_path = sidecar_paths(dst)
        self.png_path = Path(dst).with_name(Path(dst).name + ".psnr.png")
        self._csv = PendingOutput(self.csv_path)
        self._fh = open(self._csv.part, "w", newline="")  # noqa: SIM115 (open for the clip; closed by finish/abort)
        self._writer = csv.writer(self._fh)
        self._writer.writerow(COLUMNS)
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def row(self, frame: YuvFrame, engine_ms: float, metrics: dict[str, float]) -> None:
        t = frame.time
        values = {"index": frame.index, "pts": "" if frame.pts is None else frame.pts,
                  "time": "" if t is None else f"{t:.6f}", "engine_ms": f"{engine_ms:.2f}"}
        for key, val in metrics.items():
            values[key] = "" if math.isnan(val) else ("inf" if math.isinf(val) else f"{val:.4f}")
            if not math.isnan(val) and not math.isinf(val):
                self.sums[key] = self.sums.get(key, 0.0) + val
                self.counts[key] = self.counts.get(key, 0) + 1
        self._writer.writerow([values.get(c, "") for c in COLUMNS])

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums}

    def finish(self, summary: dict[str, Any]) -> None:
        self._fh.close()
        if summary.get("mode") != Mode.PLAIN.value:  # a per-frame PSNR to plot
            self._plot_psnr()
        self._csv.commit()
        write_text_atomic(self.json_path, json.dumps(summary, indent=2, default=str) + "\n")

    def _plot_psnr(self) -> None:
        """``DST.psnr.png``: per-frame PSNR-Y of the model and of bicubic, read back from the CSV (flat memory)."""
        index, model, bicubic = [], [], []
        with open(self._csv.part, newline="") as fh:
            for row in csv.DictReader(fh):
                try:
                    m, b = float(row["psnr"]), float(row["psnr_bicubic"])
                except ValueError:  # an empty or 'inf' cell (identical frames)
                    continue
                if math.isfinite(m) and math.isfinite(b):
                    index.append(float(row["index"]))
                    model.append(m)
                    bicubic.append(b)
        if not index:
            return
        with atomic_output(self.png_path) as part:
            plot([("per-frame PSNR-Y", [Series("model", index, model, line=True),
                                        Series("bicubic", index, bicubic, line=True)])],
                 part, xlabel="frame", ylabel="PSNR-Y (dB)")

    def abort(self) -> None:
        self._fh.close()
        self._csv.discard()
        PendingOutput(self.png_path).discard()


@dataclass
class FrameJob:
    """One decoded frame on its way from the reader through the engine to the writer."""

    source: YuvFrame  # as decoded: timestamps, rotation, colour tags
    lr: YuvFrame  # what the engine upscales: the source, or its degraded copy in --eval mode
    target: NDArray[Any] | None  # the Y to score against (--eval, --reference), else None
    out: YuvFrame | None = None  # the upscaled frame
    bicubic: NDArray[Any] | None = None  # bicubic's Y beside it (--eval, --reference)
    engine_ms: float = 0.0


def _jobs(items: Iterator[YuvFrame | Any], cfg: UpscaleConfig, scale: int) -> Iterator[FrameJob | Any]:
    """A FrameJob per decoded frame (degraded in --eval mode, paired with its reference frame in
    --reference mode); the passthrough packets between them as they are."""
    refs = iter_frames(cfg.reference) if cfg.reference is not None else None
    recompress: Recompressor | None = None
    for item in items:
        if not isinstance(item, YuvFrame):
            yield item
        elif cfg.eval:
            lr, gt = degrade_frame(item, scale, cfg.degrade)
            if cfg.eval_crf is not None:
                if recompress is None:
                    recompress = Recompressor(lr.width, lr.height, lr.pix_fmt, codec=cfg.eval_codec,
                                              crf=cfg.eval_crf)
                lr = recompress(lr)
            yield FrameJob(item, lr, gt)
        elif refs is not None:
            ref = next(refs, None)
            if ref is None:
                raise MediaError("the reference clip has fewer frames than the input")
            yield FrameJob(item, item, ref.y)
        else:
            yield FrameJob(item, item, None)
    if refs is not None and next(refs, None) is not None:
        raise MediaError("the reference clip has more frames than the input")


class _Output:
    """The writer side of a clip: the writer and the sidecars open at the first frame (when the
    output's size and format are known), then each frame is encoded, muxed and logged."""

    def __init__(self, dst: Path, cfg: UpscaleConfig, reader: Reader, mode: Mode, scale: int) -> None:
        self.dst, self.cfg, self.reader, self.mode, self.scale = dst, cfg, reader, mode, scale
        self.writer: Writer | None = None
        self.sidecars: _Sidecars | None = None
        self.spec: OutputSpec | None = None
        self.size: tuple[int, int] = (0, 0)
        self.written = 0
        self._pending: list[Any] = []  # packets that come before the first frame

    def __call__(self, item: FrameJob | Any) -> None:
        if not isinstance(item, FrameJob):
            if self.writer is None:
                self._pending.append(item)
            else:
                self.writer.write_packet(item)
            return
        if self.writer is None:
            self._open(item)
        assert self.writer is not None and self.sidecars is not None and item.out is not None
        self.writer.write(item.out)
        metrics = frame_metrics(mode=self.mode, lr_y=item.lr.y, sr_y=item.out.y, bicubic_y=item.bicubic,
                                target_y=item.target, scale=self.scale, bits=item.out.info.bit_depth,
                                degradation=self.cfg.degrade, with_ssim=self.cfg.ssim)
        self.sidecars.row(item.out, item.engine_ms, metrics)
        self.written += 1

    def _open(self, first: FrameJob) -> None:
        assert first.out is not None
        self.spec = spec = plan_output(self.dst, self.reader.info, first.out, first.source, self.cfg.encode)
        self.writer = open_writer(self.cfg.encode.backend, spec, self.cfg.encode, self.reader)
        self.sidecars = _Sidecars(self.dst)
        self.size = (spec.width, spec.height)
        for packet in self._pending:
            self.writer.write_packet(packet)
        self._pending.clear()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
        if self.sidecars is not None:
            self.sidecars.abort()


def _stream(jobs: Iterator[FrameJob | Any], engine: Engine, mode: Mode, put: Callable[[FrameJob | Any], None],
            progress: Callable[[int], None]) -> int:
    """Batch the frames through the engine and hand frames and packets to ``put`` in file order;
    returns the number of frames."""
    decoded = 0
    batch: list[FrameJob] = []
    held: list[Any] = []  # packets that arrive while frames are batched go after those frames

    def flush() -> None:
        t0 = time.perf_counter()
        outs = upscale_frames(engine, [j.lr for j in batch])
        bics: list[Any] = [None] * len(batch)
        if mode is not Mode.PLAIN:  # bicubic beside the model, for the per-frame gain
            bics = list(engine.bicubic_y(np.stack([j.lr.y for j in batch]), batch[0].lr.info.bit_depth))
        ms = (time.perf_counter() - t0) * 1000 / len(batch)
        for job, out, bic in zip(batch, outs, bics, strict=True):
            job.out, job.bicubic, job.engine_ms = out, bic, ms
            put(job)
        for packet in held:
            put(packet)
        batch.clear()
        held.clear()
        progress(decoded)

    for item in jobs:
        if not isinstance(item, FrameJob):
            (held.append if batch else put)(item)
            continue
        if batch and item.lr.planes[0].shape != batch[0].lr.planes[0].shape:
            raise MediaError("frame size changes in the middle of the clip; not supported")
        batch.append(item)
        decoded += 1
        if len(batch) >= engine.batch_size:
            flush()
    if batch:
        flush()
    return decoded


def _job_planes(item: FrameJob | Any) -> tuple[NDArray[Any], NDArray[Any], int] | None:
    """A frame job's (LR luma, upscaled luma, bit depth) for the temporal stage; None for a packet."""
    if not isinstance(item, FrameJob) or item.out is None:
        return None
    return item.lr.y, item.out.y, item.out.info.bit_depth


def _set_job_y(item: FrameJob, y: NDArray[Any]) -> None:
    assert item.out is not None
    item.out = replace(item.out, planes=(y, *item.out.planes[1:]))


def _upscale_video(src: Path, dst: Path, cfg: UpscaleConfig, engine_info: tuple[Engine, EngineInfo],
                   progress: ProgressFn | None) -> ClipReport:
    """Plan, open the reader, run the stream (decode ahead, engine here, encode behind), report."""
    engine, einfo = engine_info
    mode, scale = mode_of(cfg.eval, cfg.reference), engine.total_scale
    t_start = time.perf_counter()
    with open_reader(cfg.encode.backend, src, passthrough=cfg.encode.audio, allow_partial=cfg.allow_partial) as reader:
        info = reader.info
        if cfg.reference is not None:
            open_input(cfg.reference).close()  # fail early on a bad reference
        notes = []
        if info.interlaced:
            notes.append("interlaced source: its frames were upscaled as progressive pictures, which scales the "
                         "combing too; deinterlace first for clean motion (e.g. ffmpeg -vf bwdif)")
            log.warning("%s: %s", src.name, notes[-1])
        expected = info.nb_frames or (round(info.duration * float(info.rate)) if info.duration and info.rate else None)
        output = _Output(dst, cfg, reader, mode, scale)
        temporal = temporal_choice(cfg.temporal, einfo)
        stage: TemporalStage[FrameJob | Any] | None = None
        try:
            with Prefetch(_jobs(reader.items(), cfg, scale), maxsize=engine.batch_size * 3) as jobs, \
                    Sink(output, maxsize=4) as sink:
                put: Callable[[FrameJob | Any], None] = sink.put
                if temporal.on:
                    stage = TemporalStage(TemporalParams(), temporal.qp, sink.put, _job_planes, _set_job_y)
                    put = stage.put
                decoded = _stream(jobs, engine, mode, put,
                                  lambda n: progress(n, expected) if progress is not None else None)
                if stage is not None:
                    stage.finish()
            if output.written != decoded or output.writer is None or output.sidecars is None:
                raise RuntimeError(f"frame count mismatch: decoded {decoded}, wrote {output.written}")
            output.writer.close()
        except BaseException:
            output.abort()
            raise
    wall = time.perf_counter() - t_start
    report = ClipReport(
        src=str(src), dst=str(dst), frames=decoded, seconds=wall, fps=decoded / wall if wall else 0.0,
        size_in=(info.width, info.height), size_out=output.size, means=output.sidecars.means(),
        split_seconds={"decode": jobs.busy, "engine": engine.stats.seconds, "encode": sink.busy,
                       **({"temporal": stage.seconds} if stage is not None else {})},
        engine=einfo, streams=tuple(output.writer.stream_notes), notes=tuple(notes), temporal=temporal,
    )
    output.sidecars.finish(_summary(report, cfg, mode, output.spec.codec if output.spec else None))
    return report


def _summary(report: ClipReport, cfg: UpscaleConfig, mode: Mode, codec: str | None) -> dict[str, Any]:
    """The summary JSON: the report, the mode, and the encoder the output plan chose (None for an image)."""
    d = asdict(report)
    d["mode"] = mode.value
    d["codec"] = codec
    d["crf"] = cfg.encode.crf if codec else None
    d["degradation"] = cfg.degrade if mode is not Mode.REFERENCE else None
    if mode is Mode.EVAL and cfg.eval_crf is not None:
        d["eval_compression"] = {"codec": cfg.eval_codec, "crf": cfg.eval_crf}
    return d


def image_to_frame(pixels: np.ndarray, bit_depth: int = 8) -> YuvFrame:
    """An image as the engine's frame: (H, W, 3) RGB → BT.601 studio YCbCr 4:4:4; (H, W) grey →
    its studio-swing Y (``vsr.color.rgb_to_y``, as training and ``vsr eval`` see grey images).
    ``pixels``: uint8 [0, 255], or uint16 [0, 65535] with ``bit_depth`` 16 (planes kept at 16 bits)."""
    if bit_depth not in (8, 16):
        raise ValueError(f"images are 8- or 16-bit, got {bit_depth}")
    if pixels.ndim == 2:
        y = grey_to_y8(pixels) if bit_depth == 8 else to_uint(rgb_to_y(pixels, 16), 16)
        return YuvFrame((y,), "gray" if bit_depth == 8 else "gray16le", None, None, 0)
    ycc = to_uint(rgb_to_ycbcr(pixels, bit_depth), bit_depth)
    fmt = "yuv444p" if bit_depth == 8 else "yuv444p16le"
    return YuvFrame(tuple(np.ascontiguousarray(ycc[:, :, i]) for i in range(3)), fmt, None, None, 0)


def frame_to_image(frame: YuvFrame) -> np.ndarray:
    """The inverse of :func:`image_to_frame`: (H, W, 3) RGB, or (H, W) grey; uint16 [0, 65535] for
    16-bit frames, uint8 [0, 255] for every other (10-bit video frames are rounded to 8 bits)."""
    bits = frame.info.bit_depth
    out_bits = 16 if bits == 16 else 8
    gain = ((1 << out_bits) - 1) / ((1 << bits) - 1)
    if frame.pix_fmt == "gray":
        return y8_to_grey(frame.y)
    if frame.info.subsampling is None:  # grey at another depth
        return to_uint(y_to_grey(frame.y, bits) * gain, out_bits)
    if frame.info.subsampling != (1, 1):  # video frames: chroma to full resolution first
        planes = (frame.y, *(resize_plane(p, frame.width, frame.height, bits) for p in frame.planes[1:]))
    else:
        planes = frame.planes
    rgb = ycbcr_to_rgb(np.stack(planes, axis=-1), bits)
    return to_uint(rgb if gain == 1.0 else rgb * gain, out_bits)


def _fit_to_format(picture: Picture, dst: Path) -> tuple[Picture, list[str]]:
    """``picture`` as ``dst``'s format can hold it, and a note for each thing that format loses."""
    ext = dst.suffix.lower()
    notes = list(picture.notes)
    if picture.bit_depth > 8 and ext not in DEEP_EXTENSIONS:
        picture = picture.to_8bit()
        notes.append(f"16-bit input written at 8 bits: {ext} holds 8 bits per channel "
                     f"(use {', '.join(DEEP_EXTENSIONS)})")
    if picture.alpha is not None and ext not in ALPHA_EXTENSIONS:
        picture = replace(picture, alpha=None)
        notes.append(f"alpha channel dropped: {ext} holds none (use {', '.join(ALPHA_EXTENSIONS)})")
    return picture, notes


def _upscale_image(src: Path, dst: Path, cfg: UpscaleConfig, engine_info: tuple[Engine, EngineInfo]) -> ClipReport:
    engine, einfo = engine_info
    scale = engine.total_scale
    mode = mode_of(cfg.eval, cfg.reference)
    t0 = time.perf_counter()
    try:
        picture, notes = _fit_to_format(read_image(src), dst)
        ref = read_image(cfg.reference) if mode is Mode.REFERENCE and cfg.reference is not None else None
    except ValueError as exc:
        raise MediaError(str(exc)) from None
    for note in notes:
        log.warning("%s: %s", dst.name, note)
    bits = picture.bit_depth
    frame = image_to_frame(picture.pixels, bits)
    target = None
    lr = frame
    if mode is Mode.EVAL:
        lr, target = degrade_frame(frame, scale, cfg.degrade)
    elif ref is not None:
        ref = ref.to_8bit() if bits == 8 else ref
        ref_px = ref.pixels if ref.bit_depth == bits else ref.pixels.astype(np.uint16) * np.uint16(257)
        target = to_uint(rgb_to_y(ref_px, bits), bits)
    out = upscale_frames(engine, [lr])[0]
    bic = engine.bicubic_y(lr.y[None], bits)[0] if mode is not Mode.PLAIN else None
    alpha = None
    if picture.alpha is not None and mode is Mode.EVAL:  # the output stands for the input, cropped
        alpha = np.ascontiguousarray(picture.alpha[:out.height, :out.width])
    elif picture.alpha is not None:  # resized like chroma: bicubic, saturated to the sample type
        alpha = resize_plane(picture.alpha, out.width, out.height, bits)
    sidecars = _Sidecars(dst)
    try:
        metrics = frame_metrics(mode=mode, lr_y=lr.y, sr_y=out.y, bicubic_y=bic, target_y=target, scale=scale,
                                bits=bits, degradation=cfg.degrade, with_ssim=cfg.ssim)
        sidecars.row(out, engine.stats.seconds * 1000, metrics)
        with atomic_output(dst) as part:
            write_image(part, Picture(frame_to_image(out), alpha, bits))
    except BaseException:
        sidecars.abort()
        PendingOutput(dst).discard()
        raise
    wall = time.perf_counter() - t0
    report = ClipReport(src=str(src), dst=str(dst), frames=1, seconds=wall, fps=1 / wall,
                        size_in=(frame.width, frame.height), size_out=(out.width, out.height),
                        means=sidecars.means(), engine=einfo, notes=tuple(notes))
    sidecars.finish(_summary(report, cfg, mode, None))
    return report
