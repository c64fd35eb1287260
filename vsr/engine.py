"""The Y-channel engine: batches of luma planes through a model.

Contract of :meth:`Engine.upscale_y`: uint8 (8-bit) or uint16 (10-bit) planes
``(N, H, W)`` in ``[0, 2**bit_depth - 1]`` → same dtype ``(N, sH, sW)``. The
conversion to float ``(N, 1, H, W)`` in [0, 1] and the rounding and clamping
back happen here and nowhere else on the inference path.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from vsr.color import studio_y_range
from vsr.config import EngineConfig
from vsr.frames import YuvFrame, chroma_size, encodable_size, resize_plane
from vsr.io.probe import SourceChoice
from vsr.models.blocks import bicubic_upsample, range_guarded
from vsr.runtime import (
    BF16_MARGIN,
    Choice,
    RuntimeUnavailable,
    build_int8_runner,
    build_runner,
    int8_path,
    pick_runtime,
    probe_size_for,
    require,
    runtime_pairs,
)

__all__ = [
    "Engine", "EngineInfo", "build_engine", "cpu_has_bf16", "pick_device", "pick_dtype", "tiled_forward",
    "upscale_frames"]

log = logging.getLogger(__name__)


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 arithmetic (AVX512_BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` → cuda, then mps, then cpu; anything else is taken as given."""
    if name != "auto":
        try:
            dev = torch.device(name)
        except (RuntimeError, ValueError, TypeError):
            raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda asked for, but no CUDA device is available")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
        if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError("--device mps asked for, but MPS is not available")
        if dev.type not in ("cpu", "cuda", "mps"):
            raise ValueError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _time_forward(model: nn.Module, x: torch.Tensor, dtype: torch.dtype, reps: int = 2) -> float:
    best = float("inf")
    for _ in range(reps + 1):  # the first call warms up oneDNN
        t0 = time.perf_counter()
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32):
            model(x)
        best = min(best, time.perf_counter() - t0)
    return best


def pick_dtype(name: str, device: torch.device, model: nn.Module | None = None) -> torch.dtype:
    """``auto`` → fp16 on CUDA; bf16 on a CPU with native bf16 where it measures
    at least BF16_MARGIN (1.1x) faster than fp32 on a 160x160 probe (best of 3); else fp32."""
    table = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
             "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if name != "auto":
        if name not in table:
            raise ValueError(f"unknown dtype {name!r}; known: auto, {', '.join(sorted(table))}")
        return table[name]
    if device.type == "cuda":
        return torch.float16
    if device.type != "cpu" or model is None or not cpu_has_bf16() or not any(True for _ in model.parameters()):
        return torch.float32
    x = torch.rand(1, 1, 160, 160)  # big enough that timer noise does not decide
    with torch.inference_mode():
        t32 = _time_forward(model, x, torch.float32, reps=3)
        t16 = _time_forward(model, x, torch.bfloat16, reps=3)
    chosen = torch.bfloat16 if t16 * BF16_MARGIN < t32 else torch.float32
    log.info("dtype probe: fp32 %.1f ms, bf16 %.1f ms -> %s", t32 * 1e3, t16 * 1e3, chosen)
    return chosen


def tiled_forward(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, scale: int, tile: int, overlap: int
) -> torch.Tensor:
    """Run ``fn`` on overlapping ``tile``-sized tiles of ``x`` ``(N, C, H, W)``.

    Each tile is padded by ``overlap`` pixels of real context on every side
    where the image has them; only the tile's own core is kept, so there is no
    blending and no seam as long as ``overlap`` covers the model's receptive
    field.
    """
    n, c, h, w = x.shape
    out = x.new_empty((n, c, h * scale, w * scale))
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            bottom, right = min(top + tile, h), min(left + tile, w)
            t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
            t1, l1 = min(bottom + overlap, h), min(right + overlap, w)
            res = fn(x[:, :, t0:t1, l0:l1])
            out[:, :, top * scale : bottom * scale, left * scale : right * scale] = res[
                :, :, (top - t0) * scale : (bottom - t0) * scale, (left - l0) * scale : (right - l0) * scale
            ]
    return out


# (flip rows, flip columns, transpose) for each self-ensemble size; 8 is the
# whole dihedral group of the square, 2 and 4 are its flip subgroups.
DIHEDRAL_SUBSETS: dict[int, tuple[tuple[bool, bool, bool], ...]] = {
    1: ((False, False, False),),
    2: ((False, False, False), (False, True, False)),
    4: ((False, False, False), (False, True, False), (True, False, False), (True, True, False)),
    8: tuple((fh, fw, t) for t in (False, True) for fh in (False, True) for fw in (False, True)),
}


def _dihedral(x: torch.Tensor, flip_h: bool, flip_w: bool, transpose: bool) -> torch.Tensor:
    """One element of the dihedral group on the last two axes of ``x`` (N, C, H, W)."""
    if transpose:
        x = x.transpose(-2, -1)
    dims = [d for d, on in ((-2, flip_h), (-1, flip_w)) if on]
    return x.flip(dims) if dims else x


def _undo_dihedral(x: torch.Tensor, flip_h: bool, flip_w: bool, transpose: bool) -> torch.Tensor:
    """Inverse of :func:`_dihedral`: flips first, then the transpose."""
    dims = [d for d, on in ((-2, flip_h), (-1, flip_w)) if on]
    if dims:
        x = x.flip(dims)
    return x.transpose(-2, -1) if transpose else x


def studio_bounds(bit_depth: int = 8) -> tuple[float, float]:
    """Studio-swing luma bounds in the [0, 1] units of the engine's input, computed in float32
    from the code values as the planes are, so that a plane at exactly 16 is not clamped."""
    lo, hi = studio_y_range(bit_depth)
    bounds = torch.tensor([lo, hi], dtype=torch.float32).div_(float((1 << bit_depth) - 1))
    return float(bounds[0]), float(bounds[1])


class EngineMemoryError(MemoryError, ValueError):
    """Out of memory even at batch 1 on the smallest tiles: one line for the user."""


class NonFiniteOutput(ValueError):
    """The model's output holds NaN or inf: never encoded as if it were a picture."""


def _is_oom(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return ("can't allocate" in msg or "out of memory" in msg or "not enough memory" in msg or "bad_alloc" in msg
            or "could not create a primitive" in msg)  # oneDNN, when its scratch allocation fails


@dataclass
class EngineStats:
    frames: int = 0
    seconds: float = 0.0


class Engine:
    """Upscale luma planes with ``model`` in batches.

    ``tile``: run on tiles of this many LR pixels (None: whole frames).
    ``ensemble``: self-ensemble size (1, 2, 4 or 8 flipped/transposed copies).
    ``frame_size``: (H, W) of the LR frames to come, where known: ``runtime="auto"`` times its
    candidates at that size (capped at 640x360), not at a full 640x360 frame.
    ``guard_range``: the nets see luma clamped to studio swing (the only range they were trained
    on; what lies beyond it, superblack or full-range video, they extrapolate badly), and the
    clamped-off excess comes back through bicubic. A no-op on planes within [16, 235].
    False runs the net on the planes as they are.
    On out-of-memory the batch is halved, then tiling switched on (256 px),
    then the error is raised.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        batch_size: int = 4,
        tile: int | None = None,
        tile_overlap: int = 16,
        passes: int = 1,
        correct: float | None = None,
        ensemble: int = 1,
        channels_last: bool = True,
        runtime: str = "torch",
        int8_graph: Path | None = None,
        frame_size: tuple[int, int] | None = None,
        guard_range: bool = True,
    ) -> None:
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        # NHWC weights let oneDNN pick its blocked convolution kernels, which are faster
        # per frame (benchmarks/model_speed.py --layouts; figures in benchmarks/README.md).
        # In place, like the move to the device; a training loop that validates
        # with its live model passes False to keep the optimizer's layout.
        layout = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=layout).eval()  # type: ignore[call-overload]
        if dtype == "int8":
            self.choice = self._choose_int8(runtime, int8_graph)
            dtype = torch.float32  # what the graph takes and returns; its convolutions run in int8
        else:
            self.choice = self._choose(runtime, dtype, probe_size_for(frame_size, tile))
        self.runtime = self.choice.runtime
        self.dtype = (dtype if isinstance(dtype, torch.dtype) else
                      {"fp32": torch.float32, "bf16": torch.bfloat16}.get(self.choice.precision)
                      or pick_dtype(dtype, self.device, self.model))
        if self.dtype == torch.float16 and self.device.type == "cpu":
            raise ValueError("fp16 is not supported on the CPU; use bf16 or fp32")
        # Built once here (graph export, compilation): then reused for every frame and size.
        self.runner: Callable[[torch.Tensor], torch.Tensor] | None
        if self.choice.precision == "int8":
            assert int8_graph is not None  # _choose_int8 refuses int8 without a graph
            self.runner = build_int8_runner(int8_graph)
        else:
            self.runner = (build_runner(self.runtime, self.model, self.choice.precision)
                           if self.runtime != "torch" else None)
        self.scale = int(model.scale)  # type: ignore[arg-type]  # every registered model has .scale
        self.batch_size = max(1, int(batch_size))
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.passes = passes
        self.correct = correct
        if ensemble not in DIHEDRAL_SUBSETS:
            raise ValueError(f"unsupported ensemble {ensemble}; supported: {sorted(DIHEDRAL_SUBSETS)}")
        self.ensemble = ensemble
        self.guard_range = guard_range
        self.stats = EngineStats()

    def _choose_int8(self, runtime: str, graph: Path | None) -> Choice:
        if runtime not in ("auto", "openvino"):
            raise RuntimeUnavailable(f"--precision int8 runs on OpenVINO, not {runtime}; use --runtime auto")
        require("openvino", device=self.device)
        if graph is None or not Path(graph).is_file():
            raise RuntimeUnavailable("--precision int8 needs the checkpoint's int8 graph (NAME.int8.xml)")
        return Choice("openvino", "int8", reason="asked")

    def _choose(self, runtime: str, dtype: str | torch.dtype, probe_size: tuple[int, int]) -> Choice:
        """The runtime and (for runtimes other than torch) the precision to run with."""
        if isinstance(dtype, torch.dtype):
            named = {torch.float32: "fp32", torch.bfloat16: "bf16"}.get(dtype)
            if runtime == "auto" or named is None:
                return Choice("torch", named or "", reason="rule: dtype given as a torch dtype")
            require(runtime, named, self.device)
            return Choice(runtime, named, reason="asked")
        if dtype not in ("auto", "fp32", "float32", "bf16", "bfloat16", "fp16", "float16"):
            raise ValueError(f"unknown dtype {dtype!r}; known: auto, fp32, bf16, fp16 (CUDA), int8 (OpenVINO)")
        if dtype in ("fp16", "float16") and self.device.type == "cpu":
            raise ValueError("fp16 is not supported on the CPU; use bf16 or fp32")
        has_weights = any(True for _ in self.model.parameters())
        if runtime == "auto" and (self.device.type != "cpu" or not has_weights):
            return Choice("torch", "", reason=f"rule: {'no weights' if not has_weights else self.device.type}")
        if runtime == "torch":
            return Choice("torch", "", reason="asked")  # dtype: pick_dtype, as before
        if dtype in ("fp16", "float16"):  # CUDA here: only torch runs it
            require(runtime, "fp32", self.device)
        precisions = (("fp32", "bf16") if cpu_has_bf16() else ("fp32",)) if dtype == "auto" else (
            "fp32" if dtype in ("fp32", "float32") else "bf16",)
        if runtime != "auto":
            require(runtime, precisions[0] if len(precisions) == 1 else "fp32", self.device)
            pairs = runtime_pairs(precisions, (runtime,))
            if len(pairs) == 1:
                return Choice(*pairs[0], reason="asked")
        return pick_runtime(self.model, precisions, runtimes=None if runtime == "auto" else (runtime,),
                            probe_size=probe_size)

    @property
    def total_scale(self) -> int:
        return self.scale**self.passes

    def _net(self, x: torch.Tensor) -> torch.Tensor:
        if self.runner is not None:
            return self.runner(x)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            return self.model(x).float()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ensemble == 1:
            return self._net(x)
        # Self-ensemble (Lim et al. 2017, "EDSR+"): the mean over flipped and
        # transposed copies, each mapped back. Costs `ensemble` forwards.
        outs = (_undo_dihedral(self._net(_dihedral(x, fh, fw, t)), fh, fw, t)
                for fh, fw, t in DIHEDRAL_SUBSETS[self.ensemble])
        total = next(outs)
        for out in outs:
            total.add_(out)
        return total.div_(self.ensemble)

    def _run(self, x: torch.Tensor, bounds: tuple[float, float] | None = None) -> torch.Tensor:
        """The net on ``x`` float32 [0, 1] (N, 1, H, W), tiled where asked. With ``bounds`` it
        runs through :func:`range_guarded` (see ``guard_range``), per tile where tiling, so the
        guard costs no full-frame buffer (bicubic reaches 2 px, far less than the tile overlap)."""
        fn: Callable[[torch.Tensor], torch.Tensor] = self._forward
        if bounds is not None:
            fn = functools.partial(range_guarded, self._forward, lo=bounds[0], hi=bounds[1], scale=self.scale)
        if self.tile:
            return tiled_forward(fn, x, self.scale, self.tile, self.tile_overlap)
        return fn(x)

    def upscale_y(self, y: NDArray[np.uint8] | NDArray[np.uint16], bit_depth: int = 8) -> NDArray:
        """Upscale planes (N, H, W) uint8/uint16 in [0, 2**bit_depth-1] by
        ``total_scale`` → (N, sH, sW), same dtype.

        With ``passes`` > 1 the model runs that many times (x4 = x2 twice),
        quantised between passes as if the intermediate were a video. With
        ``correct`` = T, output pixels that differ from the bicubic upsample by
        more than T code values (8-bit units) are replaced by the bicubic value
        (the correction filter of the literature, against rare artefacts).
        """
        if y.ndim != 3:
            raise ValueError(f"expected (N, H, W) planes, got shape {y.shape}")
        t0 = time.perf_counter()
        out = y
        for _ in range(self.passes):
            out = self._upscale_once(out, bit_depth)
        if self.correct is not None:
            base = self.bicubic_y(y, bit_depth)
            limit = self.correct * ((1 << bit_depth) - 1) / 255.0
            far = np.abs(out.astype(np.int32) - base.astype(np.int32)) > limit
            out = np.where(far, base, out)
        self.stats.frames += len(y)
        self.stats.seconds += time.perf_counter() - t0
        return out

    @torch.inference_mode()
    def bicubic_y(self, y: NDArray, bit_depth: int = 8) -> NDArray:
        """The bicubic upsample of planes (N, H, W) by ``total_scale``, quantised like the model output."""
        peak = float((1 << bit_depth) - 1)
        x = torch.from_numpy(y.astype(np.float32)).unsqueeze(1).div_(peak)
        up = bicubic_upsample(x, self.total_scale).squeeze(1)
        return self._quantise(up, bit_depth)

    @staticmethod
    def _quantise(x: torch.Tensor, bit_depth: int) -> NDArray:
        # The one place where float [0, 1] planes become integer code values. Rounded and cast
        # where the tensor lives (on a GPU: a quarter of the bytes to copy back), then copied.
        peak = float((1 << bit_depth) - 1)
        q = x.mul_(peak).round_().clamp_(0, peak)  # in place: x is a fresh output nobody else holds
        if bit_depth <= 8:
            return q.to(torch.uint8).cpu().numpy()
        return q.to(torch.int32).cpu().numpy().astype(np.uint16)

    def _to_device(self, chunk: NDArray, peak: float) -> torch.Tensor:
        """uint8/uint16 (N, H, W) → float32 (N, 1, H, W) in [0, 1] on the engine's device.

        On CUDA the integer planes travel (from pinned memory, asynchronously) and become float
        there; on the CPU the conversion is one pass.
        """
        src = torch.from_numpy(np.ascontiguousarray(chunk if chunk.dtype == np.uint8 else chunk.astype(np.int32)))
        if self.device.type == "cuda":
            src = src.pin_memory().to(self.device, non_blocking=True)
        elif self.device.type != "cpu":
            src = src.to(self.device)
        return src.unsqueeze(1).to(torch.float32).div_(peak)

    @torch.inference_mode()
    def _upscale_once(self, y: NDArray, bit_depth: int) -> NDArray:
        peak = float((1 << bit_depth) - 1)
        outs = []
        start = 0
        while start < len(y):
            chunk = y[start : start + self.batch_size]
            x = self._to_device(chunk, peak)
            bounds = self._guard_bounds(chunk, bit_depth)
            try:
                sr = self._run(x, bounds)
                # Checked after the copy back, which synchronises anyway: no extra wait per batch.
                bad = ~torch.isfinite(sr).all()
                out = self._quantise(sr.squeeze(1), bit_depth)
                if bool(bad):
                    raise NonFiniteOutput("the model produced NaN or inf values: broken weights or a numeric "
                                          f"overflow in {self.dtype}".replace("torch.", ""))
                outs.append(out)
            except (torch.OutOfMemoryError, MemoryError):
                self._shrink()
                continue
            except RuntimeError as exc:
                # The CPU allocator raises a plain RuntimeError ("DefaultCPUAllocator: can't allocate ...").
                if not _is_oom(exc):
                    raise
                self._shrink()
                continue
            start += len(chunk)
        return np.concatenate(outs, axis=0)

    def _guard_bounds(self, chunk: NDArray, bit_depth: int) -> tuple[float, float] | None:
        """:func:`studio_bounds`, or None where ``chunk`` lies within them or the guard is off."""
        if not self.guard_range:
            return None
        lo, hi = studio_y_range(bit_depth)
        if chunk.min() >= lo and chunk.max() <= hi:
            return None
        return studio_bounds(bit_depth)

    def _shrink(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if self.batch_size > 1:
            self.batch_size //= 2
            log.warning("out of memory: batch size halved to %d", self.batch_size)
        elif not self.tile or self.tile > 64:
            self.tile = 256 if not self.tile else self.tile // 2
            log.warning("out of memory: tiling at %d px", self.tile)
        else:
            raise EngineMemoryError("out of memory even with batch 1 and 64 px tiles")


@dataclass(frozen=True)
class EngineInfo:
    """What an engine runs, for reports and summaries (``dataclasses.asdict`` for JSON)."""

    model: str
    scale: int  # the model's own scale (``total_scale`` with passes)
    weights: str | None  # checkpoint path; None for bicubic
    source: str  # the weights' training LR: clean, compressed, or given (--weights)
    device: str
    dtype: str  # float32, bfloat16, float16 or int8
    runtime: str  # torch, onnxruntime or openvino
    runtime_reason: str  # asked, probe, cache, or the rule that decided
    passes: int
    total_scale: int
    ensemble: int
    correct: float | None = None
    runtime_probe_ms: dict[str, float] | None = None
    source_reason: str = ""  # why this source (--source auto: from the stream)
    qp: float | None = None  # the stream's median H.264 QP where measured (it picks QP-banded weights)
    meta: dict[str, Any] = field(default_factory=dict)  # the checkpoint's meta


def build_engine(cfg: EngineConfig, stream: SourceChoice | None = None,
                 frame_size: tuple[int, int] | None = None) -> tuple[Engine, EngineInfo]:
    """Engine for an EngineConfig: shipped or given weights, device, dtype, runtime, passes.

    ``stream``: what ``cfg.source`` resolves to for the input at hand (``auto``: clean when not
    given); its ``qp``, where measured, picks among QP-banded compressed-source weights.
    ``frame_size``: (H, W) of the frames the engine will upscale, where known, so that
    ``--runtime auto`` times the candidates at that size (at most 640x360).
    """
    from vsr.weights import WeightsError, load_model, verify_shipped  # here: vsr.weights imports the model zoo

    source = cfg.source if cfg.source != "auto" else (stream.source if stream is not None else "clean")
    qp = stream.qp if stream is not None else None
    model, info = load_model(cfg.model, cfg.model_scale, cfg.weights, source=source,
                             source_asked=cfg.source != "auto", qp=qp)
    if getattr(model, "frames", 1) > 1:
        raise WeightsError(f"{info['weights']} is a {model.frames}-frame net: the engine upscales one frame at "
                           "a time (benchmarks/compressed.py measures multi-frame weights)")
    graph = None
    if cfg.dtype == "int8":
        graph = int8_path(Path(info["weights"])) if info["weights"] else None
        if graph is None or not graph.is_file():
            raise WeightsError(f"--precision int8 is not offered for {cfg.model} x{cfg.model_scale}"
                               + (f" (no {graph.name} beside its weights)" if graph is not None else "")
                               + ": int8 ships only where it costs <= 0.10 dB on Set5 and runs >= 1.3x faster "
                               "(vsr models lists them)")
        verify_shipped(graph)
        verify_shipped(graph.with_suffix(".bin"))
    engine = Engine(model, device=cfg.device, dtype=cfg.dtype, batch_size=cfg.batch_size,
                    tile=cfg.tile, passes=cfg.passes, correct=cfg.correct, ensemble=cfg.ensemble,
                    runtime=cfg.runtime, int8_graph=graph, frame_size=frame_size)
    return engine, EngineInfo(
        model=info["model"], scale=info["scale"], weights=info["weights"], source=info["source"], meta=info["meta"],
        qp=qp,
        device=str(engine.device),
        dtype="int8" if engine.choice.precision == "int8" else str(engine.dtype).replace("torch.", ""),
        runtime=engine.runtime, runtime_reason=engine.choice.reason, runtime_probe_ms=engine.choice.ms,
        passes=cfg.passes, total_scale=engine.total_scale, correct=cfg.correct, ensemble=cfg.ensemble)


def upscale_frames(engine: Engine, frames: list[YuvFrame], *, bicubic_only: bool = False) -> list[YuvFrame]:
    """Upscale same-sized frames: Y through the engine in one batch, chroma by bicubic.

    Output size is ``total_scale`` times the input, cropped by the odd-size
    rule of :func:`vsr.frames.encodable_size`. Timestamps and format are kept.
    """
    if not frames:
        return []
    first = frames[0]
    fmt, bits = first.pix_fmt, first.info.bit_depth
    ys = np.stack([f.y for f in frames])
    sr = engine.bicubic_y(ys, bits) if bicubic_only else engine.upscale_y(ys, bits)
    s = engine.total_scale
    width, height = encodable_size(first.width * s, first.height * s, fmt)
    sr = sr[:, :height, :width]
    cw, ch = chroma_size(width, height, fmt)
    out = []
    for frame, y in zip(frames, sr, strict=True):
        chroma = tuple(resize_plane(p, cw, ch, bits) for p in frame.planes[1:])
        out.append(replace(frame, planes=(np.ascontiguousarray(y), *chroma)))
    return out
