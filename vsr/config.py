"""Configuration: frozen dataclasses whose fields match the CLI options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_MODEL", "DEGRADATIONS", "ENSEMBLES", "MODELS", "MODEL_SCALES", "RUNTIMES", "SAMPLERS", "SCALES",
           "SOURCES", "TEMPORAL_MODES", "EncodeConfig", "EngineConfig", "TrainConfig",
           "UpscaleConfig"]

# The model `vsr upscale` and `vsr demo` run when none is named. Its shipped
# weights must exist at every scale: a missing default is an error, never a fallback.
# With --source auto its compressed-source weights run on lossy video where they ship.
DEFAULT_MODEL = "fast"
# Every model name the registry (vsr.models) holds; it refuses to register any other, and the CLI's
# --model choices come from here without importing torch. Details: `vsr models`.
MODELS = ("balanced", "bicubic", "ecb", "edsr", "espcn", "fast", "medium", "srcnn", "srgan", "srresnet")
# Inference runtimes (details in vsr.runtime); "auto" measures and picks among the installed ones.
RUNTIMES = ("torch", "onnxruntime", "openvino")
# Which weights of a model to run: trained on clean LR, or on compressed (H.264) LR; "auto"
# decides per input from the stream (vsr.io.probe.stream_source). Compressed weights may come
# in QP bands (vsr.weights.qp_bands), picked by the stream's measured quantiser.
SOURCES = ("auto", "clean", "compressed")
# Scales one model pass makes; with --passes their powers (the CLI's --scale choices).
MODEL_SCALES = (2, 3, 4)
SCALES = (2, 3, 4, 8, 9, 16)
# Self-ensemble sizes (vsr.engine.DIHEDRAL_SUBSETS) and the LR degradations of --eval / vsr eval.
ENSEMBLES = (1, 2, 4, 8)
DEGRADATIONS = ("bicubic", "blur")
# --temporal: the flow-guided blend of the output luma (vsr.temporal); auto runs it where the
# compressed-source weights run on a stream of known QP.
TEMPORAL_MODES = ("auto", "on", "off")
# How training draws its patches: uniformly, or by PSNR gain over bicubic (vsr.data.gain).
SAMPLERS = ("uniform", "gain")


@dataclass(frozen=True)
class EngineConfig:
    model: str = DEFAULT_MODEL
    scale: int = 2
    weights: Path | None = None
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 4
    tile: int | None = None
    passes: int = 1
    correct: float | None = None
    ensemble: int = 1
    runtime: str = "auto"
    source: str = "auto"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}; known: {', '.join(SOURCES)}")
        if self.runtime not in ("auto", *RUNTIMES):
            raise ValueError(f"unknown runtime {self.runtime!r}; known: auto, {', '.join(RUNTIMES)}")
        if self.passes < 1:
            raise ValueError("passes must be >= 1")
        if self.ensemble not in ENSEMBLES:
            raise ValueError(f"unsupported ensemble {self.ensemble}; supported: 1, 2, 4, 8")
        if self.model_scale ** self.passes != self.scale or self.model_scale not in MODEL_SCALES:
            raise ValueError(
                f"unsupported scale {self.scale}"
                + (f" in {self.passes} passes" if self.passes > 1 else "")
                + "; supported: 2, 3, 4 (and their powers with --passes)"
            )
        if self.batch_size < 1:
            raise ValueError("batch size must be >= 1")
        if self.tile is not None and self.tile < 16:
            raise ValueError("tile must be at least 16 pixels")

    @property
    def model_scale(self) -> int:
        """Scale of the model that runs ``passes`` times to reach ``scale``."""
        return max(1, round(self.scale ** (1.0 / self.passes)))


@dataclass(frozen=True)
class EncodeConfig:
    codec: str | None = None  # None: by container (libx264; libvpx-vp9 for .webm)
    crf: int = 18
    preset: str = "medium"
    pix_fmt: str | None = None  # None: keep the source's (or its nearest encodable)
    audio: bool = True
    backend: str = "pyav"

    def __post_init__(self) -> None:
        if not 0 <= self.crf <= 63:
            raise ValueError("crf must be within 0..63")
        if self.backend not in ("pyav", "ffmpeg"):
            raise ValueError(f"unknown backend {self.backend!r}; known: pyav, ffmpeg")


@dataclass(frozen=True)
class UpscaleConfig:
    """Everything per clip that ``vsr upscale`` and ``vsr batch`` share."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    reference: Path | None = None
    eval: bool = False
    degrade: str = "bicubic"
    overwrite: bool = False
    quiet: bool = False
    ssim: bool = True
    allow_partial: bool = False
    eval_codec: str = "libx264"
    eval_crf: int | None = None  # --eval: re-encode the LR with eval_codec at this CRF (a compressed source)
    temporal: str = "auto"  # flow-guided temporal blend of the output luma: auto | on | off (vsr.temporal)

    def __post_init__(self) -> None:
        if self.eval and self.reference is not None:
            raise ValueError("--eval and --reference cannot be combined")
        if self.eval_crf is not None and not self.eval:
            raise ValueError("--eval-crf needs --eval (it compresses the degraded copy)")
        if self.degrade not in DEGRADATIONS:
            raise ValueError(f"unknown degradation {self.degrade!r}; known: bicubic, blur")
        if self.temporal not in TEMPORAL_MODES:
            raise ValueError(f"unknown --temporal {self.temporal!r}; known: {', '.join(TEMPORAL_MODES)}")


@dataclass(frozen=True)
class TrainConfig:
    model: str
    scale: int
    data: tuple[Path, ...]
    out: Path
    val: Path | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    init: Path | None = None
    iterations: int = 10000
    batch_size: int = 16
    patch_size: int = 96
    patches_per_image: int = 4
    lr: float = 1e-3
    lr_min: float = 1e-5
    schedule: str = "cosine"
    warmup: int = 0
    loss: str = "l1"
    precision: str = "fp32"
    ema: float = 0.0
    degradation: str = "bicubic"
    scale_aug: float = 1.0
    val_every: int = 1000
    ckpt_every: int = 1000
    seed: int = 0
    workers: int = 1
    resume: bool = False
    device: str = "auto"
    threads: int | None = None
    teacher: Path | None = None
    distill_weight: float = 1.0
    data_weights: tuple[float, ...] = ()  # one per data folder: the share of draws it gets (empty: by file count)
    sampler: str = "uniform"
    sampler_round: int = 25
    gan: bool = False
    adv_weight: float = 5e-3
    pixel_weight: float = 1e-2
    feature_weight: float = 1.0
    feature_net: Path | None = None
    d_lr: float = 1e-4
    d_features: int = 64

    def __post_init__(self) -> None:
        if self.distill_weight < 0:
            raise ValueError("distill weight must be >= 0")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; known: {', '.join(SAMPLERS)}")
        if self.sampler_round < 1:
            raise ValueError("sampler round must be >= 1 iteration")
        if self.data_weights:
            if len(self.data_weights) != len(self.data):
                raise ValueError(f"{len(self.data_weights)} data weights for {len(self.data)} data folders")
            if any(w < 0 for w in self.data_weights) or not sum(self.data_weights) > 0:
                raise ValueError("data weights must be >= 0 and not all 0")
        if self.gan:
            if self.init is None:
                raise ValueError("--gan needs generator weights: pass --init with a trained SRResNet checkpoint")
            if self.feature_weight > 0 and self.feature_net is None:
                raise ValueError("--gan with a feature loss needs --feature-net (a shipped checkpoint)")
            if min(self.adv_weight, self.pixel_weight, self.feature_weight, self.d_lr) < 0 or self.d_features < 8:
                raise ValueError("GAN weights and --d-lr must be >= 0 and --d-features >= 8")
        if self.scale not in MODEL_SCALES:
            raise ValueError(f"unsupported scale {self.scale}; supported: 2, 3, 4")
        if self.patch_size % self.scale:
            raise ValueError("patch size must be a multiple of the scale")
        if self.batch_size % self.patches_per_image:
            raise ValueError("batch size must be a multiple of patches per image")
        if self.schedule not in ("cosine", "step", "constant"):
            raise ValueError(f"unknown schedule {self.schedule!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"unknown precision {self.precision!r}; known: fp32, bf16")
        if self.loss not in ("l1", "l2"):
            raise ValueError(f"unknown loss {self.loss!r}")
        if not 0.0 < self.scale_aug <= 1.0:
            raise ValueError(f"scale_aug must be in (0, 1], got {self.scale_aug}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError("ema must be in [0, 1)")
        if self.iterations < 1:
            raise ValueError("iterations must be >= 1")
        from vsr.degrade_chain import parse_chain  # numpy/OpenCV: only when a training config is made

        parse_chain(self.degradation)
