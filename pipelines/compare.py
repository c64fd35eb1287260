"""``vsr compare``: one labelled side-by-side picture of the same crop upscaled by several models.

The input (an image, or one frame of a clip) is the ground truth by default: it is degraded
as ``--eval`` does, each model upscales the LR, and each panel shows its PSNR-Y against the
original beside the original itself. With ``as_lr`` the input is taken as the LR and the
panels carry no PSNR (there is no reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vsr.config import EngineConfig
from vsr.engine import build_engine, upscale_frames
from vsr.frames import YuvFrame
from vsr.io.atomic import atomic_output
from vsr.io.decode import iter_frames
from vsr.io.images import is_image_path, read_rgb
from vsr.io.probe import MediaError
from vsr.metrics import psnr

from .clip import frame_to_image, image_to_frame
from .metrics import degrade_frame

__all__ = ["Panel", "compare", "parse_crop", "parse_source"]

PANEL_MIN = 256  # crops smaller than this are enlarged (nearest) so that pixels stay visible


@dataclass(frozen=True)
class Panel:
    label: str
    psnr: float | None  # PSNR-Y of the whole output against the reference, None without one


def parse_source(spec: str) -> tuple[Path, int | None]:
    """``IMAGE``, ``CLIP`` or ``CLIP:FRAME`` → (path, frame index or None)."""
    path, _, frame = spec.rpartition(":") if ":" in spec and spec.rsplit(":", 1)[1].isdigit() else (spec, "", "")
    return Path(path), int(frame) if frame else None


def parse_crop(spec: str | None) -> tuple[int, int, int, int] | None:
    if spec is None:
        return None
    try:
        x, y, w, h = (int(v) for v in spec.split(","))
    except ValueError:
        raise MediaError(f"--crop takes X,Y,W,H in output pixels, got {spec!r}") from None
    if w < 1 or h < 1 or x < 0 or y < 0:
        raise MediaError(f"--crop {spec}: width and height must be positive and the corner inside the image")
    return x, y, w, h


def _load(path: Path, index: int | None) -> YuvFrame:
    if not path.exists():
        raise MediaError(f"input not found: {path}")
    if is_image_path(path):
        if index is not None:
            raise MediaError(f"{path} is an image: it has no frame {index}")
        try:
            return image_to_frame(read_rgb(path))
        except ValueError as exc:
            raise MediaError(str(exc)) from None
    index = index or 0
    count = 0
    for frame in iter_frames(path):
        if count == index:
            if frame.info.bit_depth != 8:
                raise MediaError("vsr compare takes 8-bit clips")
            return frame
        count += 1
    raise MediaError(f"{path} has no frame {index} (it has {count} frames)")


def compare(source: str, models: list[str], scale: int, out: Path, *, crop: str | None = None,
            as_lr: bool = False, device: str = "cpu") -> list[Panel]:
    """Write the side-by-side PNG to ``out`` (via ``out.part``) and return the panels' labels and PSNRs."""
    if not models:
        raise MediaError("--models needs at least one model")
    if out.suffix.lower() != ".png":
        raise MediaError("the output of vsr compare is a .png")
    path, index = parse_source(source)
    frame = _load(path, index)
    reference = None
    lr = frame
    if not as_lr:
        lr, reference = degrade_frame(frame, scale, "bicubic")
    engines = {m: build_engine(EngineConfig(model=m, scale=scale, device=device, dtype="fp32", batch_size=1))[0]
               for m in models}  # every model (and its weights) checked before any work
    outs = {m: upscale_frames(e, [lr])[0] for m, e in engines.items()}
    height, width = next(iter(outs.values())).y.shape
    box = parse_crop(crop)
    if box is None:
        w, h = min(width, 192), min(height, 192)
        box = ((width - w) // 2, (height - h) // 2, w, h)
    x, y, w, h = box
    if x + w > width or y + h > height:
        raise MediaError(f"--crop {x},{y},{w},{h} lies outside the {width}x{height} output")
    panels, pictures = [], []
    for name, sr in outs.items():
        value = None
        if reference is not None:
            ref = reference[: sr.y.shape[0], : sr.y.shape[1]]
            value = psnr(sr.y[: ref.shape[0], : ref.shape[1]], ref, crop_border=scale)
        panels.append(Panel(name, value))
        pictures.append(frame_to_image(sr))
    if reference is not None:
        panels.append(Panel("original", None))
        pictures.append(frame_to_image(frame)[:height, :width])
    tiles = [_tile(pic[y : y + h, x : x + w], p) for pic, p in zip(pictures, panels, strict=True)]
    sheet = np.concatenate(tiles, axis=1)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise MediaError("cannot encode the comparison picture")
    with atomic_output(out) as part:
        part.write_bytes(buf.tobytes())
    return panels


def _tile(crop: np.ndarray, panel: Panel) -> np.ndarray:
    rgb = crop if crop.ndim == 3 else np.repeat(crop[:, :, None], 3, axis=2)
    zoom = max(1, -(-PANEL_MIN // max(1, min(rgb.shape[:2]))))
    rgb = cv2.resize(rgb, (rgb.shape[1] * zoom, rgb.shape[0] * zoom), interpolation=cv2.INTER_NEAREST)
    label = panel.label + ("" if panel.psnr is None else f"  {panel.psnr:.2f} dB")
    bar = np.full((28, rgb.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    gap = np.full((rgb.shape[0] + 28, 4, 3), 255, np.uint8)
    return np.concatenate([np.concatenate([bar, rgb], axis=0), gap], axis=1)
