"""Inference runtimes: PyTorch, or the model's ONNX graph in ONNX Runtime or OpenVINO.

Every runner has the engine's contract: float32 ``(N, 1, H, W)`` in [0, 1] on the CPU →
float32 ``(N, 1, sH, sW)``, any N, H and W (the graph has dynamic batch and frame size), so a
runner is built once per clip or worker, never per frame or frame size.

``--runtime auto`` times each (runtime, precision) pair that is installed and allowed on a
short probe and keeps the fastest; the choice is cached per (weights, CPU, thread count,
versions) in the user's cache directory (``$VSR_CACHE_DIR``, else ``$XDG_CACHE_HOME/vsr``,
else ``~/.cache/vsr``), so the probe runs once per machine. The optional runtimes are
extras: ``pip install 'vsr[onnx]'`` (ONNX Runtime) and ``'vsr[openvino]'``.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib
import importlib.util
import io
import json
import logging
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vsr.config import RUNTIMES as _NAMES
from vsr.io.atomic import write_text_atomic
from vsr.models.ecb import size_multiple

__all__ = [
    "INT8_MAX_DROP_DB",
    "INT8_MIN_SPEEDUP",
    "RUNTIMES",
    "RUNTIME_CHOICES",
    "Choice",
    "RuntimeUnavailable",
    "available",
    "build_int8_runner",
    "build_runner",
    "cache_dir",
    "export_onnx",
    "int8_path",
    "int8_verdict",
    "onnx_bytes",
    "pick_runtime",
    "probe_size_for",
    "quantize_int8",
    "require",
    "runtime_pairs",
]

log = logging.getLogger(__name__)

# runtime -> (module it needs, the extra that installs it, precisions it runs)
RUNTIMES: dict[str, tuple[str | None, str | None, tuple[str, ...]]] = {
    "torch": (None, None, ("fp32", "bf16")),
    "onnxruntime": ("onnxruntime", "onnx", ("fp32",)),
    "openvino": ("openvino", "openvino", ("fp32", "bf16")),
}
assert tuple(RUNTIMES) == _NAMES, "vsr.config.RUNTIMES names the same runtimes"
RUNTIME_CHOICES = ("auto", *RUNTIMES)
OPSET = 17
# A bf16 candidate must beat the best fp32 one by this factor to be chosen: bf16 costs a
# little precision. 1.1, so that a rejected bf16 pair is never more than 10% faster.
BF16_MARGIN = 1.1
# The runtime probe times no further a candidate whose first (warm-up) run took this many times the
# best candidate's time so far: a first run is rarely that much slower than the steady state, and the
# probe of a heavy model (seconds a run) then costs the user a few runs, not a minute.
GIVE_UP = 3.0
# The runtime probe's input, (H, W) LR pixels: a 640x360 frame, or the job's own frames where smaller.
PROBE_SIZE = (360, 640)


# int8 is offered for a checkpoint only where it costs at most this much Set5 PSNR-Y against
# fp32 and runs at least this much faster than fp32 in the same run.
INT8_MAX_DROP_DB = 0.10
INT8_MIN_SPEEDUP = 1.3


class RuntimeUnavailable(ValueError):
    """A runtime that is unknown, not installed, or cannot run what was asked: one line."""


@dataclass(frozen=True)
class Choice:
    """The runtime and precision an engine runs with, and how they were chosen."""

    runtime: str
    precision: str  # "fp32" | "bf16"
    reason: str  # "asked", "probe", "cache" or "rule: ..."
    ms: dict[str, float] | None = None  # probe timings per "runtime/precision", when probed


def available(name: str) -> bool:
    """True when runtime ``name`` and the ONNX exporter it needs are importable here."""
    module = RUNTIMES[name][0]
    if module is None:
        return True
    return importlib.util.find_spec(module) is not None and importlib.util.find_spec("onnx") is not None


def require(name: str, precision: str = "fp32", device: torch.device | None = None) -> None:
    """RuntimeUnavailable unless ``name`` can run ``precision`` on ``device`` here."""
    if name not in RUNTIMES:
        raise RuntimeUnavailable(f"unknown runtime {name!r}; known: {', '.join(RUNTIME_CHOICES)}")
    module, extra, precisions = RUNTIMES[name]
    if module is not None and not available(name):
        raise RuntimeUnavailable(f"--runtime {name}: {module} (and onnx) are not installed; "
                                 f"pip install 'vsr[{extra}]'")
    if precision not in precisions:
        raise RuntimeUnavailable(f"--runtime {name} runs {', '.join(precisions)}, not {precision}")
    if module is not None and device is not None and device.type != "cpu":
        raise RuntimeUnavailable(f"--runtime {name} runs on the CPU here; use --runtime torch on {device.type}")


def export_onnx(model: nn.Module, f: str | Path | io.BytesIO, *, opset: int = OPSET) -> None:
    """Write the model's inference graph as ONNX: input ``lr`` float32 (N, 1, H, W) in [0, 1],
    output ``sr`` (N, 1, sH, sW), with N, H and W dynamic.

    A re-parameterizable model is exported in its fused form (one 3x3 conv per block).
    """
    if importlib.util.find_spec("onnx") is None:
        raise RuntimeUnavailable("ONNX export needs the onnx package; pip install 'vsr[onnx]'")
    model = copy.deepcopy(model)  # the caller's module keeps its dtype, device and layout
    if hasattr(model, "reparameterize"):
        model = model.reparameterize()  # type: ignore[operator]  # checked with hasattr
    model = model.float().eval().to("cpu", memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    example = torch.rand(1, 1, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (example,), f,  # type: ignore[arg-type]  # a BytesIO works too
                          dynamo=False, opset_version=opset, input_names=["lr"],
                          output_names=["sr"], do_constant_folding=True,
                          dynamic_axes={"lr": {0: "n", 2: "h", 3: "w"}, "sr": {0: "n", 2: "sh", 3: "sw"}})


def onnx_bytes(model: nn.Module) -> bytes:
    """The ONNX graph of :func:`export_onnx`, in memory."""
    buf = io.BytesIO()
    export_onnx(model, buf)
    return buf.getvalue()


class _OrtRunner:
    def __init__(self, graph: bytes, threads: int) -> None:
        ort = importlib.import_module("onnxruntime")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"lr": np.ascontiguousarray(x.numpy(), dtype=np.float32)})[0]
        return torch.from_numpy(out)


@functools.cache
def _openvino_core() -> Any:
    """One OpenVINO Core per process: compiled models must not outlive the Core that made them
    (a Core destroyed first crashes the interpreter at garbage collection), and a Core is costly."""
    return importlib.import_module("openvino").Core()


class _OpenVinoRunner:
    def __init__(self, graph: bytes | Path | Any, threads: int, precision: str) -> None:
        """``graph``: ONNX bytes, an OpenVINO IR file (``.xml``) or an ``openvino.Model``."""
        core = _openvino_core()
        config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
                  "INFERENCE_NUM_THREADS": str(threads), "PERFORMANCE_HINT": "LATENCY"}
        # OpenVINO picks bf16 by itself on CPUs that have it: the hint pins what was asked
        # (for an int8 graph: f32 for the layers left in float).
        model = core.read_model(str(graph)) if isinstance(graph, Path) else (
            core.read_model(graph) if isinstance(graph, bytes) else graph)
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        result = self.request.infer({0: np.ascontiguousarray(x.numpy(), dtype=np.float32)})
        # The request reuses its output buffer on the next call: copy out.
        return torch.from_numpy(np.array(next(iter(result.values())), dtype=np.float32, copy=True))


def build_runner(name: str, model: nn.Module, precision: str, threads: int | None = None
                 ) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A runner for ``model`` on ``name``; None for torch (the engine calls the module itself)."""
    require(name, precision)
    if name == "torch":
        return None
    threads = threads or torch.get_num_threads()
    graph = onnx_bytes(model)
    runner: Callable[[torch.Tensor], torch.Tensor] = (
        _OrtRunner(graph, threads) if name == "onnxruntime" else _OpenVinoRunner(graph, threads, precision))
    multiple = size_multiple(model)
    if multiple > 1:
        runner = _PaddedRunner(runner, multiple, int(getattr(model, "scale")))  # noqa: B009  # every wrapper has .scale
    return runner


class _PaddedRunner:
    """A graph that needs H and W divisible by ``multiple`` (a space-to-depth body) run on any size.

    The exported graph holds the padding it saw when traced (none, on an even example), so the
    edge replication a torch module does itself happens here, outside the graph; the output is cropped.
    """

    def __init__(self, runner: Callable[[torch.Tensor], torch.Tensor], multiple: int, scale: int) -> None:
        self.runner, self.multiple, self.scale = runner, multiple, scale

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if not (ph or pw):
            return self.runner(x)
        out = self.runner(torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate"))
        return out[..., : h * self.scale, : w * self.scale]


def int8_path(weights: Path) -> Path:
    """Where the int8 graph of checkpoint ``weights`` lives: ``NAME.int8.xml`` (+ ``.bin``) beside it."""
    weights = Path(weights)
    return weights.with_name(weights.stem + ".int8.xml")


def int8_verdict(drop_db: float, speedup: float) -> tuple[bool, str]:
    """Whether int8 is offered for a checkpoint, from its Set5 PSNR-Y drop against fp32 (dB)
    and its speed-up over fp32 measured in the same run, with the reason in words."""
    if not np.isfinite(drop_db) or drop_db > INT8_MAX_DROP_DB:
        return False, f"Set5 drop {drop_db:.3f} dB > {INT8_MAX_DROP_DB:.2f} dB"
    if speedup < INT8_MIN_SPEEDUP:
        return False, f"only {speedup:.2f}x faster than fp32 (< {INT8_MIN_SPEEDUP:g}x)"
    return True, f"Set5 drop {drop_db:.3f} dB, {speedup:.2f}x faster than fp32"


def quantize_int8(model: nn.Module, patches: list[np.ndarray], *, keep_last_float: bool = False) -> Any:
    """Post-training int8 quantization (NNCF, OpenVINO) of ``model``'s ONNX graph.

    ``patches``: calibration inputs, float32 ``(1, 1, h, w)`` in [0, 1] (training patches).
    ``keep_last_float`` leaves the last convolution in float. Returns an ``openvino.Model``.
    """
    if importlib.util.find_spec("nncf") is None or not available("openvino"):
        raise RuntimeUnavailable("int8 quantization needs nncf and openvino; pip install 'vsr[int8]'")
    nncf = importlib.import_module("nncf")
    graph = _openvino_core().read_model(onnx_bytes(model))
    ignored = None
    if keep_last_float:
        convs = [op.get_friendly_name() for op in graph.get_ordered_ops() if op.get_type_name() == "Convolution"]
        ignored = nncf.IgnoredScope(names=convs[-1:])
    kwargs = {"ignored_scope": ignored} if ignored is not None else {}
    # Global min/max ranges rather than NNCF's default (the mean over samples): an SR net's input
    # and output span [0, 1] on real frames, and a range that clips them costs whole dB.
    advanced = importlib.import_module("nncf.quantization.advanced_parameters")
    estimators = importlib.import_module("nncf.quantization.range_estimator")
    params = advanced.AdvancedQuantizationParameters(
        activations_range_estimator_params=estimators.RangeEstimatorParametersSet.MINMAX)
    return nncf.quantize(graph, nncf.Dataset(patches), subset_size=len(patches),
                         preset=nncf.QuantizationPreset.PERFORMANCE, advanced_parameters=params, **kwargs)


def build_int8_runner(graph: Path, threads: int | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A runner for a quantized OpenVINO graph (``NAME.int8.xml``), same contract as the others."""
    require("openvino")
    return _OpenVinoRunner(Path(graph), threads or torch.get_num_threads(), "int8")


def cache_dir() -> Path:
    """Where per-machine choices are cached (see the module doc)."""
    env = os.environ.get("VSR_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vsr"


def _cpu_identity() -> str:
    model, flags = platform.processor(), ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}|{hashlib.sha1(flags.encode()).hexdigest()[:12]}"


def _model_key(model: nn.Module) -> str:
    digest = hashlib.sha256(type(model).__name__.encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def _versions() -> str:
    parts = [f"torch {torch.__version__}"]
    for name in ("onnxruntime", "openvino"):
        if available(name):
            parts.append(f"{name} {importlib.import_module(name).__version__}")
    return ", ".join(parts)


def _time_runner(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, reps: int, *,
                 budget_s: float = 1.0, give_up_s: float = float("inf")) -> float:
    """The best wall time of ``fn(x)``, in seconds, over up to ``reps`` timed runs after one warm-up.

    The timed runs stop once they have taken ``budget_s`` (at least one runs), and none runs when the
    warm-up alone took longer than ``give_up_s`` (its time is returned): on a heavy model every run is
    seconds before the user's first frame, and a candidate that slow cannot win.
    """
    t0 = time.perf_counter()
    fn(x)  # warm-up: oneDNN primitives, OpenVINO's shape-specific kernels
    warm = time.perf_counter() - t0
    if warm > give_up_s:
        return warm
    best, spent = float("inf"), 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(x)
        took = time.perf_counter() - t0
        best, spent = min(best, took), spent + took
        if spent >= budget_s:
            break
    return best


def _torch_fn(model: nn.Module, precision: str) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            return model(x).float()
    return run


def runtime_pairs(precisions: tuple[str, ...], runtimes: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """Every installed (runtime, precision) pair among ``runtimes`` (default: all) that runs one of
    ``precisions``, in table order."""
    names = [n for n in (runtimes or tuple(RUNTIMES)) if available(n)]
    return [(n, p) for n in names for p in precisions if p in RUNTIMES[n][2]]


def probe_size_for(frame_size: tuple[int, int] | None, tile: int | None = None) -> tuple[int, int]:
    """The probe input (H, W) for frames of ``frame_size`` (H, W), or tiles of ``tile``: never larger
    than :data:`PROBE_SIZE`, rounded up to a multiple of 16 so that near sizes share one cached choice."""
    h, w = frame_size or PROBE_SIZE
    if tile is not None:
        h, w = min(h, tile), min(w, tile)
    return min(PROBE_SIZE[0], -(-h // 16) * 16), min(PROBE_SIZE[1], -(-w // 16) * 16)


def pick_runtime(model: nn.Module, precisions: tuple[str, ...], *, runtimes: tuple[str, ...] | None = None,
                 probe_size: tuple[int, int] = PROBE_SIZE, reps: int = 3, use_cache: bool = True) -> Choice:
    """The fastest installed (runtime, precision) for ``model`` on this CPU.

    ``precisions``: those allowed (``("fp32",)``, ``("bf16",)`` or both, for ``--dtype auto``);
    a bf16 pair wins only when it beats the best fp32 pair by :data:`BF16_MARGIN`.
    ``model`` must already be on the CPU in its inference layout.
    """
    candidates = runtime_pairs(precisions, runtimes)
    if not candidates:
        raise RuntimeUnavailable(f"no installed runtime runs {' or '.join(precisions)}")
    if len(candidates) == 1:
        return Choice(*candidates[0], reason="rule: the only candidate")
    key = "|".join([_model_key(model), _cpu_identity(), f"{torch.get_num_threads()} threads", _versions(),
                    ",".join(f"{n}/{p}" for n, p in candidates), f"{probe_size}"])
    path = cache_dir() / "runtime.json"
    cache: dict[str, dict] = {}
    if use_cache and path.is_file():
        try:
            cache = json.loads(path.read_text())
        except (OSError, ValueError):
            cache = {}  # a damaged cache is re-measured, never an error
        hit = cache.get(key)
        if isinstance(hit, dict) and (hit.get("runtime"), hit.get("precision")) in candidates:
            return Choice(hit["runtime"], hit["precision"], reason="cache", ms=hit.get("ms"))
    x = torch.rand(1, 1, *probe_size)
    ms: dict[str, float] = {}
    for name, precision in candidates:
        try:
            runner = build_runner(name, model, precision) if name != "torch" else _torch_fn(model, precision)
            assert runner is not None  # build_runner gives None only for torch
            # a warm-up GIVE_UP times slower than the best so far is not timed further
            give_up = GIVE_UP * min(ms.values()) / 1e3 if ms else float("inf")
            ms[f"{name}/{precision}"] = 1e3 * _time_runner(runner, x, reps, give_up_s=give_up)
        except (RuntimeError, MemoryError) as exc:  # e.g. under a memory limit: the others still run
            if name == "torch":
                raise
            log.warning("runtime probe: %s/%s failed (%s); not a candidate", name, precision,
                        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    candidates = [(n, p) for n, p in candidates if f"{n}/{p}" in ms]
    best = {p: min((ms[f"{n}/{q}"], n) for n, q in candidates if q == p) for p in precisions
            if any(q == p for _, q in candidates)}
    if "fp32" in best and "bf16" in best:
        precision = "bf16" if best["bf16"][0] * BF16_MARGIN < best["fp32"][0] else "fp32"
    else:
        precision = next(p for p in precisions if p in best)
    choice = Choice(best[precision][1], precision, reason="probe", ms={k: round(v, 2) for k, v in ms.items()})
    log.info("runtime probe (%s ms): %s/%s", ms, choice.runtime, choice.precision)
    if use_cache:
        cache[key] = {"runtime": choice.runtime, "precision": choice.precision, "ms": choice.ms}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, json.dumps(cache, indent=1, sort_keys=True))
        except OSError as exc:  # a read-only home still upscales; it only probes again next time
            log.warning("cannot cache the runtime choice in %s: %s", path, exc)
    return choice
