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
import json
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vsr.color import rgb_to_y, rgb_to_ycbcr, to_uint, y_to_grey, ycbcr_to_rgb
from vsr.config import UpscaleConfig
from vsr.engine import Engine, EngineStats, build_engine, upscale_frames
from vsr.frames import YuvFrame, resize_plane
from vsr.io.atomic import atomic_output, part_path, write_text_atomic
from vsr.io.decode import demux, iter_frames
from vsr.io.encode import CONTAINER_FORMATS, ClipWriter, output_pix_fmt, resolve_codec, with_frame_colors
from vsr.io.ffmpeg_pipe import FfmpegReader, FfmpegWriter
from vsr.io.images import IMAGE_EXTENSIONS, is_image_path, read_rgb, write_rgb
from vsr.io.probe import MediaError, VideoInfo, open_input, stream_source, video_info
from vsr.io.recompress import Recompressor, check_recompress

from .metrics import COLUMNS, degrade_frame, frame_metrics
from .plot import Series, plot

__all__ = ["ClipReport", "check_paths", "sidecar_paths", "upscale_path"]

log = logging.getLogger(__name__)

# progress(frames_done, frames_expected_or_None)
ProgressFn = Callable[[int, int | None], None]
_END = object()


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
    engine: dict[str, Any] = field(default_factory=dict)
    streams: tuple[str, ...] = ()  # audio/subtitle streams transcoded or dropped, and why


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
    if is_image_path(src) != is_image_path(dst):
        kind = "an image" if is_image_path(src) else "a video"
        raise MediaError(f"input is {kind}; give the output a matching extension")
    exts = IMAGE_EXTENSIONS if is_image_path(dst) else tuple(CONTAINER_FORMATS)
    if dst.suffix.lower() not in exts:
        raise MediaError(f"unsupported output extension {dst.suffix!r}; use one of {', '.join(exts)}")
    if not dst.parent.exists():
        raise MediaError(f"output folder does not exist: {dst.parent}")


def upscale_path(
    src: Path, dst: Path, cfg: UpscaleConfig, *, engine: tuple[Engine, dict] | None = None,
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
        stream, why = input_source(src, cfg)
        built, info = build_engine(cfg.engine, stream)
        engine = (built, dict(info, source_reason=why))
    engine[0].stats = EngineStats()  # per clip, also when one engine serves a whole batch
    if is_image_path(src):
        return _upscale_image(src, dst, cfg, engine)
    return _upscale_video(src, dst, cfg, engine, progress)


def input_source(src: Path, cfg: UpscaleConfig) -> tuple[str, str]:
    """``(clean | compressed, reason)``: what the engine's ``source`` means for ``src``.

    ``auto`` follows what the engine will see: in ``--eval`` mode the degraded copy (compressed
    only with ``--eval-crf``), an image as clean, and a video by its stream (codec, bit rate).
    """
    asked = cfg.engine.source
    if asked != "auto":
        return asked, f"--source {asked}"
    if cfg.eval:
        if cfg.eval_crf is not None:
            return "compressed", f"--eval-crf {cfg.eval_crf} re-encodes the LR with {cfg.eval_codec}"
        return "clean", "--eval upscales a clean downscale"
    if is_image_path(src):
        return "clean", "an image"
    return stream_source(src)


def _mode(cfg: UpscaleConfig) -> str:
    return "eval" if cfg.eval else "reference" if cfg.reference is not None else "plain"


class _Sidecars:
    """Per-frame CSV and the summary JSON, both written as .part then renamed."""

    def __init__(self, dst: Path) -> None:
        self.csv_path, self.json_path = sidecar_paths(dst)
        self.png_path = Path(dst).with_name(Path(dst).name + ".psnr.png")
        self._csv_part = part_path(self.csv_path)
        self._fh = open(self._csv_part, "w", newline="")
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
        if summary.get("mode") in ("eval", "reference"):
            self._plot_psnr()
        os.replace(self._csv_part, self.csv_path)
        write_text_atomic(self.json_path, json.dumps(summary, indent=2, default=str) + "\n")

    def _plot_psnr(self) -> None:
        """``DST.psnr.png``: per-frame PSNR-Y of the model and of bicubic, read back from the CSV (flat memory)."""
        index, model, bicubic = [], [], []
        with open(self._csv_part, newline="") as fh:
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
        self._csv_part.unlink(missing_ok=True)
        part_path(self.png_path).unlink(missing_ok=True)


def _prepared(frames: Iterator[YuvFrame | Any], cfg: UpscaleConfig, scale: int) -> Iterator[tuple]:
    """(frame_or_packet, engine_input, target_y) for each demuxed item."""
    refs = iter_frames(cfg.reference) if cfg.reference is not None else None
    recompress: Recompressor | None = None
    for item in frames:
        if not isinstance(item, YuvFrame):
            yield item, None, None
            continue
        if cfg.eval:
            lr, gt = degrade_frame(item, scale, cfg.degrade)
            if cfg.eval_crf is not None:
                if recompress is None:
                    recompress = Recompressor(lr.width, lr.height, lr.pix_fmt, codec=cfg.eval_codec,
                                              crf=cfg.eval_crf)
                lr = recompress(lr)
            yield item, lr, gt
        elif refs is not None:
            ref = next(refs, None)
            if ref is None:
                raise MediaError("the reference clip has fewer frames than the input")
            yield item, item, ref.y
        else:
            yield item, item, None
    if refs is not None and next(refs, None) is not None:
        raise MediaError("the reference clip has more frames than the input")


def _reader(it: Iterator, out: queue.Queue, stop: threading.Event, busy: list[float]) -> None:
    try:
        while not stop.is_set():
            t0 = time.perf_counter()
            item = next(it, _END)
            busy[0] += time.perf_counter() - t0
            out.put(item)
            if item is _END:
                return
    except BaseException as exc:  # handed to the main thread, which re-raises
        out.put(exc)


def _upscale_video(src: Path, dst: Path, cfg: UpscaleConfig, engine_info: tuple[Engine, dict],
                   progress: ProgressFn | None) -> ClipReport:
    engine, einfo = engine_info
    scale = engine.total_scale
    mode = _mode(cfg)
    if cfg.encode.backend == "ffmpeg":
        reader = FfmpegReader(src, allow_partial=cfg.allow_partial)
        container = None
        info = reader.info
        items: Iterator = reader.frames()

        def make_writer(width: int, height: int, pix: str, rotation: int, out_info: VideoInfo):
            return FfmpegWriter(dst, width=width, height=height, pix_fmt=pix, info=out_info, encode=cfg.encode,
                                source=src)
    else:
        container = open_input(src)
        info = video_info(container)
        items = demux(container, passthrough=cfg.encode.audio, allow_partial=cfg.allow_partial)

        def make_writer(width: int, height: int, pix: str, rotation: int, out_info: VideoInfo):
            return ClipWriter(dst, width=width, height=height, pix_fmt=pix, info=out_info, encode=cfg.encode,
                              source=container, rotation=rotation)
    expected = info.nb_frames or (round(info.duration * float(info.rate)) if info.duration and info.rate else None)
    if cfg.reference is not None:
        open_input(cfg.reference).close()  # fail early on a bad reference
    stop = threading.Event()
    q_in: queue.Queue = queue.Queue(maxsize=engine.batch_size * 3)
    q_out: queue.Queue = queue.Queue(maxsize=4)
    decode_busy, encode_busy = [0.0], [0.0]
    state: dict[str, Any] = {"writer": None, "sidecars": None, "written": 0, "error": None, "size_out": (0, 0)}
    t_start = time.perf_counter()

    def writer_loop() -> None:
        pending_packets = []
        try:
            while True:
                item = q_out.get()
                if item is _END:
                    return
                t0 = time.perf_counter()
                kind = item[0]
                if kind == "packet":
                    if state["writer"] is None:
                        pending_packets.append(item[1])
                    else:
                        state["writer"].write_packet(item[1])
                else:
                    _, src_frame, lr_frame, out_frame, target, bic, ms = item
                    if state["writer"] is None:
                        codec = resolve_codec(dst, cfg.encode.codec)
                        pix = output_pix_fmt(out_frame.pix_fmt, codec, cfg.encode.pix_fmt)
                        if pix.replace("yuvj", "yuv") != out_frame.pix_fmt.replace("yuvj", "yuv"):
                            raise MediaError(f"{codec} cannot encode {out_frame.pix_fmt}; pick another --codec")
                        state["writer"] = make_writer(out_frame.width, out_frame.height, pix, src_frame.rotation,
                                                      with_frame_colors(info, src_frame.color))
                        state["sidecars"] = _Sidecars(dst)
                        state["size_out"] = (out_frame.width, out_frame.height)
                        for p in pending_packets:
                            state["writer"].write_packet(p)
                        pending_packets.clear()
                    state["writer"].write(out_frame)
                    metrics = frame_metrics(
                        mode=mode, lr_y=lr_frame.y, sr_y=out_frame.y, bicubic_y=bic, target_y=target,
                        scale=scale, bits=out_frame.info.bit_depth, degradation=cfg.degrade, with_ssim=cfg.ssim,
                    )
                    state["sidecars"].row(out_frame, ms, metrics)
                    state["written"] += 1
                encode_busy[0] += time.perf_counter() - t0
        except BaseException as exc:
            state["error"] = exc
            stop.set()
            while q_out.get() is not _END:  # keep the producer from blocking
                pass

    source = _prepared(items, cfg, scale)
    reader_thread = threading.Thread(target=_reader, args=(source, q_in, stop, decode_busy), daemon=True)
    writer = threading.Thread(target=writer_loop, daemon=True)
    reader_thread.start()
    writer.start()
    decoded = 0
    try:
        batch: list[tuple] = []
        batch_packets: list[Any] = []
        done = False
        while not done:
            try:
                item = q_in.get(timeout=0.2)
            except queue.Empty:
                if stop.is_set():  # the writer failed and the reader has stopped: its error is raised below
                    break
                continue
            if isinstance(item, BaseException):
                raise item
            if item is _END:
                done = True
            elif not isinstance(item[0], YuvFrame):
                if batch:  # keep file order: after the frames already batched
                    batch_packets.append(item[0])
                else:
                    q_out.put(("packet", item[0]))
                continue
            else:
                if batch and item[1].planes[0].shape != batch[0][1].planes[0].shape:
                    raise MediaError("frame size changes in the middle of the clip; not supported")
                batch.append(item)
                decoded += 1
            if batch and (done or len(batch) >= engine.batch_size):
                if stop.is_set():
                    break
                t0 = time.perf_counter()
                outs = upscale_frames(engine, [b[1] for b in batch])
                bics: Any = [None] * len(batch)
                if mode != "plain":  # bicubic beside the model, for the per-frame gain
                    bics = engine.bicubic_y(np.stack([b[1].y for b in batch]), batch[0][1].info.bit_depth)
                ms = (time.perf_counter() - t0) * 1000 / len(batch)
                for (src_frame, lr_frame, target), out, bic in zip(batch, outs, bics):
                    q_out.put(("frame", src_frame, lr_frame, out, target, bic, ms))
                for p in batch_packets:
                    q_out.put(("packet", p))
                batch, batch_packets = [], []
                if progress is not None:
                    progress(decoded, expected)
        q_out.put(_END)
        writer.join()
        if state["error"] is not None:
            raise state["error"]
        if state["written"] != decoded:
            raise RuntimeError(f"frame count mismatch: decoded {decoded}, wrote {state['written']}")
        wall = time.perf_counter() - t_start
        state["writer"].close()
        report = ClipReport(
            src=str(src), dst=str(dst), frames=decoded, seconds=wall, fps=decoded / wall if wall else 0.0,
            size_in=(info.width, info.height), size_out=state["size_out"], means=state["sidecars"].means(),
            split_seconds={"decode": decode_busy[0], "engine": engine.stats.seconds, "encode": encode_busy[0]},
            engine=einfo, streams=tuple(getattr(state["writer"], "stream_notes", ())),
        )
        state["sidecars"].finish(_summary(report, cfg, mode))
        return report
    except BaseException:
        stop.set()
        _drain(q_in)
        q_out.put(_END)
        writer.join(timeout=30)
        if state["writer"] is not None:
            state["writer"].abort()
        if state["sidecars"] is not None:
            state["sidecars"].abort()
        raise
    finally:
        reader_thread.join(timeout=30)
        if container is not None:
            container.close()


def _drain(q: queue.Queue) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


def _summary(report: ClipReport, cfg: UpscaleConfig, mode: str) -> dict[str, Any]:
    d = asdict(report)
    d["mode"] = mode
    d["codec"] = resolve_codec(Path(report.dst), cfg.encode.codec)
    d["crf"] = cfg.encode.crf
    d["degradation"] = cfg.degrade if mode != "reference" else None
    if mode == "eval" and cfg.eval_crf is not None:
        d["eval_compression"] = {"codec": cfg.eval_codec, "crf": cfg.eval_crf}
    return d


def image_to_frame(rgb: np.ndarray) -> YuvFrame:
    """An image as the engine's frame: uint8 (H, W, 3) RGB → BT.601 studio YCbCr 4:4:4; (H, W) grey →
    its studio-swing Y (``vsr.color.rgb_to_y``, as training and ``vsr eval`` see grey images)."""
    if rgb.ndim == 2:
        return YuvFrame((to_uint(rgb_to_y(rgb)),), "gray", None, None, 0)
    ycc = to_uint(rgb_to_ycbcr(rgb))
    return YuvFrame(tuple(np.ascontiguousarray(ycc[:, :, i]) for i in range(3)), "yuv444p", None, None, 0)


def frame_to_image(frame: YuvFrame) -> np.ndarray:
    """The inverse of :func:`image_to_frame` for 8-bit frames: uint8 (H, W, 3) RGB, or (H, W) grey."""
    if frame.pix_fmt == "gray":
        return to_uint(y_to_grey(frame.y))
    if frame.pix_fmt != "yuv444p":  # video frames: chroma to full resolution first
        planes = (frame.y,) + tuple(resize_plane(p, frame.width, frame.height) for p in frame.planes[1:])
    else:
        planes = frame.planes
    return to_uint(ycbcr_to_rgb(np.stack(planes, axis=-1)))


def _upscale_image(src: Path, dst: Path, cfg: UpscaleConfig, engine_info: tuple[Engine, dict]) -> ClipReport:
    engine, einfo = engine_info
    scale = engine.total_scale
    mode = _mode(cfg)
    t0 = time.perf_counter()
    try:
        rgb = read_rgb(src)
    except ValueError as exc:
        raise MediaError(str(exc)) from None
    frame = image_to_frame(rgb)
    target = None
    lr = frame
    if mode == "eval":
        lr, target = degrade_frame(frame, scale, cfg.degrade)
    elif mode == "reference":
        ref = read_rgb(cfg.reference)
        target = to_uint(rgb_to_y(ref))
    out = upscale_frames(engine, [lr])[0]
    bic = engine.bicubic_y(lr.y[None])[0] if mode != "plain" else None
    sidecars = _Sidecars(dst)
    try:
        metrics = frame_metrics(mode=mode, lr_y=lr.y, sr_y=out.y, bicubic_y=bic, target_y=target, scale=scale,
                                bits=8, degradation=cfg.degrade, with_ssim=cfg.ssim)
        sidecars.row(out, engine.stats.seconds * 1000, metrics)
        with atomic_output(dst) as part:
            write_rgb(part, frame_to_image(out))
    except BaseException:
        sidecars.abort()
        part_path(dst).unlink(missing_ok=True)
        raise
    wall = time.perf_counter() - t0
    report = ClipReport(src=str(src), dst=str(dst), frames=1, seconds=wall, fps=1 / wall,
                        size_in=(frame.width, frame.height), size_out=(out.width, out.height),
                        means=sidecars.means(), engine=einfo)
    sidecars.finish(_summary(report, cfg, mode))
    return report
