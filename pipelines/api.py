"""The Python API for notebooks and scripts: ``from vsr import Upscaler, upscale_file``.

``vsr/__init__.py`` exports these lazily (PEP 562), so ``import vsr.io`` stays free of torch.
An :class:`Upscaler` loads its weights and picks its runtime once, then upscales files (videos
and images, as ``vsr upscale`` does), RGB arrays, luma planes or :class:`vsr.frames.YuvFrame`s.
Its keyword options are the fields of :class:`vsr.config.EngineConfig`,
:class:`vsr.config.EncodeConfig` and :class:`vsr.config.UpscaleConfig`, which carry the
CLI's option names (``--eval-crf`` is ``eval_crf``).
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vsr.config import EncodeConfig, EngineConfig, UpscaleConfig
from vsr.engine import Engine, EngineInfo, build_engine, upscale_frames
from vsr.frames import YuvFrame
from vsr.io.probe import SourceChoice

from .clip import ClipReport, engine_key, frame_to_image, image_to_frame, input_source, note_source, upscale_path

__all__ = ["Upscaler", "upscale_file"]

_ENGINE = {f.name for f in fields(EngineConfig)}
_ENCODE = {f.name for f in fields(EncodeConfig)}
_CLIP = {f.name for f in fields(UpscaleConfig)} - {"engine", "encode"}


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``options`` as (engine, encode, clip) keyword dicts; TypeError for a name none of them has."""
    unknown = set(options) - _ENGINE - _ENCODE - _CLIP
    if unknown:
        raise TypeError(f"unknown option {sorted(unknown)[0]!r}; options: "
                        f"{', '.join(sorted(_ENGINE | _ENCODE | _CLIP))}")
    def pick(names: set[str]) -> dict[str, Any]:
        return {k: v for k, v in options.items() if k in names}

    return pick(_ENGINE), pick(_ENCODE), pick(_CLIP)


def _config(options: dict[str, Any]) -> UpscaleConfig:
    engine, encode, clip = _split(options)
    return UpscaleConfig(engine=EngineConfig(**engine), encode=EncodeConfig(**encode), **clip)


class Upscaler:
    """Build once, upscale many times.

    ``Upscaler(model="fast", scale=2, runtime="auto", crf=18, ...)``: options as in
    ``vsr upscale`` (see the module docstring); ``quiet`` defaults to True here. The weights
    for each source (clean or compressed LR, ``source="auto"`` deciding per file) are loaded
    the first time a file needs them; arrays and frames use the clean-source weights unless
    ``source="compressed"``.
    """

    def __init__(self, model: str | None = None, scale: int = 2, **options: Any) -> None:
        if model is not None:
            options["model"] = model
        options.setdefault("quiet", True)
        self.config = _config({"scale": scale, **options})
        self._engines: dict[tuple[str, int | None], tuple[Engine, EngineInfo]] = {}

    @property
    def scale(self) -> int:
        return self.config.engine.scale

    def _engine(self, stream: SourceChoice) -> tuple[Engine, EngineInfo]:
        key = engine_key(self.config.engine, stream)
        if key not in self._engines:
            self._engines[key] = build_engine(self.config.engine, stream)
        return self._engines[key]

    def _plain(self) -> Engine:
        asked = self.config.engine.source
        return self._engine(SourceChoice("clean" if asked == "auto" else asked, f"--source {asked}"))[0]

    def file(self, src: str | Path, dst: str | Path, **options: Any) -> ClipReport:
        """Upscale the video or image ``src`` into ``dst`` (``dst.part``, then a rename), as ``vsr upscale`` does.

        ``options``: per-file changes of the clip options (``overwrite``, ``eval``, ``reference``,
        ``crf``, ...); the engine options stay those the Upscaler was built with.
        """
        engine_opts, encode_opts, clip_opts = _split(options)
        if engine_opts:
            raise TypeError(f"engine option {sorted(engine_opts)[0]!r}: build another Upscaler")
        cfg = replace(self.config, encode=replace(self.config.encode, **encode_opts), **clip_opts)
        stream = input_source(Path(src), cfg)
        engine, info = self._engine(stream)
        return upscale_path(Path(src), Path(dst), cfg, engine=(engine, note_source(info, stream)))

    def image(self, rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """uint8 RGB ``(H, W, 3)`` or grey ``(H, W)`` → the same layout at ``scale`` times the size.

        The net runs on BT.601 studio-swing Y, chroma goes through bicubic (as for image files).
        """
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim not in (2, 3) or (rgb.ndim == 3 and rgb.shape[2] != 3):
            raise ValueError(f"expected uint8 (H, W, 3) RGB or (H, W) grey, got {rgb.dtype} {rgb.shape}")
        return frame_to_image(self.frame(image_to_frame(rgb)))

    def frame(self, frame: YuvFrame) -> YuvFrame:
        """A decoded frame (its own luma plane through the net, chroma bicubic) → the upscaled frame."""
        return upscale_frames(self._plain(), [frame])[0]

    def y(self, planes: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """Luma planes uint8 ``(N, H, W)`` (or one ``(H, W)``) → uint8 at ``scale`` times the size."""
        planes = np.asarray(planes)
        if planes.dtype != np.uint8 or planes.ndim not in (2, 3):
            raise ValueError(f"expected uint8 (N, H, W) or (H, W) luma, got {planes.dtype} {planes.shape}")
        out = self._plain().upscale_y(planes[None] if planes.ndim == 2 else planes)
        return out[0] if planes.ndim == 2 else out


def upscale_file(src: str | Path, dst: str | Path, **options: Any) -> ClipReport:
    """One file, as ``vsr upscale SRC DST``: ``upscale_file("in.mp4", "out.mp4", scale=2, crf=20)``."""
    clip = {k: options.pop(k) for k in list(options) if k in _CLIP}
    return Upscaler(**options).file(src, dst, **clip)
