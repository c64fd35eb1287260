"""``vsr export``: a checkpoint's fused inference graph as an ONNX file."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vsr.engine import studio_bounds
from vsr.io.atomic import atomic_output
from vsr.models.blocks import RangeGuard
from vsr.models.ecb import size_multiple
from vsr.runtime import OPSET, available, build_runner, export_onnx
from vsr.weights import load_model

__all__ = ["ExportResult", "export_model"]


@dataclass(frozen=True)
class ExportResult:
    path: Path
    bytes: int
    opset: int
    max_abs_diff: float | None  # ONNX Runtime against torch on a random frame, [0, 1] scale; None: not installed
    size_multiple: int = 1  # the graph's H and W must be divisible by this (a space-to-depth net: its factor)


def export_model(model: str, scale: int, out: Path, *, weights: Path | None = None, fmt: str = "onnx",
                 overwrite: bool = False) -> ExportResult:
    """Export ``model`` x``scale`` (shipped or given weights) to ``out``, written atomically.

    The graph carries the engine's range guard for 8-bit luma (``vsr.models.blocks.RangeGuard``):
    what runs it elsewhere gets the output ``vsr upscale`` gives."""
    if fmt != "onnx":
        raise ValueError(f"unsupported export format {fmt!r}; supported: onnx")
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"output exists: {out} (use --overwrite)")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"output folder not found: {out.parent}")
    if model == "bicubic":
        raise ValueError("bicubic has no weights to export")
    net, _ = load_model(model, scale, weights)
    module = RangeGuard(net, *studio_bounds(8)).eval()
    buf = io.BytesIO()
    export_onnx(module, buf)
    with atomic_output(out) as part:
        part.write_bytes(buf.getvalue())
    diff = None
    if available("onnxruntime"):
        x = torch.rand(1, 1, 37, 53, generator=torch.Generator().manual_seed(0))  # odd sizes: dynamic axes
        with torch.inference_mode():
            ref = module(x).float().numpy()
        runner = build_runner("onnxruntime", module, "fp32")
        assert runner is not None  # None only for torch
        got = runner(x).numpy()
        diff = float(np.abs(got - ref).max())
    return ExportResult(out, len(buf.getvalue()), OPSET, diff, size_multiple(module))
