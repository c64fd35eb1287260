"""Building blocks shared by the models (one definition each)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vsr.config import MODEL_SCALES

__all__ = ["RangeGuard", "ResBlock", "Upsampler", "bicubic_upsample", "check_scale", "make_activation",
           "range_guarded"]

SCALES = MODEL_SCALES


def check_scale(scale: int) -> int:
    if scale not in SCALES:
        raise ValueError(f"unsupported scale {scale}; supported: {', '.join(map(str, SCALES))}")
    return scale


def make_activation(name: str, channels: int) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "prelu":
        return nn.PReLU(channels)
    if name == "tanh":
        return nn.Tanh()
    raise ValueError(f"unknown activation {name!r}; known: relu, prelu, tanh")


def bicubic_upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic (a = -0.75, half-pixel centres) upsampling of ``(N, C, H, W)`` by ``scale``."""
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


def range_guarded(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, lo: float, hi: float,
                  scale: int) -> torch.Tensor:
    """``fn`` on ``x`` float32 [0, 1] (N, 1, H, W) clamped to [lo, hi], plus the bicubic upsample of
    what the clamp took off. The nets were trained on studio-swing luma only; beyond it they
    extrapolate, bicubic does not. Equal to ``fn(x)`` where ``x`` lies within the bounds."""
    inner = x.clamp(lo, hi)
    return fn(inner).add_(bicubic_upsample(x - inner, scale))


class RangeGuard(nn.Module):
    """A net wrapped in :func:`range_guarded`, for graphs that run outside the engine (export)."""

    def __init__(self, net: nn.Module, lo: float, hi: float) -> None:
        super().__init__()
        self.net = net
        self.lo, self.hi = lo, hi
        self.scale = int(net.scale)  # type: ignore[arg-type]  # every registered model has .scale

    def reparameterize(self) -> RangeGuard:
        if hasattr(self.net, "reparameterize"):
            self.net = self.net.reparameterize()  # type: ignore[operator]  # checked with hasattr
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return range_guarded(self.net, x, self.lo, self.hi, self.scale)


class ResBlock(nn.Module):
    """conv-act-conv with a scaled identity skip (EDSR: no batch norm)."""

    def __init__(self, num_features: int, res_scale: float = 1.0, activation: str = "relu") -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(num_features, num_features, 3, padding=1),
            make_activation(activation, num_features),
            nn.Conv2d(num_features, num_features, 3, padding=1),
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.body(x)
        if self.res_scale != 1.0:
            res = res * self.res_scale
        # In place on the conv's fresh output (its backward does not need it):
        # one full-size feature map fewer to allocate per block.
        return res.add_(x)


class Upsampler(nn.Sequential):
    """Sub-pixel convolution upsampler: x2 and x3 in one step, x4 as two x2 steps."""

    def __init__(self, scale: int, num_features: int, activation: str | None = None) -> None:
        check_scale(scale)
        steps = [2, 2] if scale == 4 else [scale]
        layers: list[nn.Module] = []
        for s in steps:
            layers += [nn.Conv2d(num_features, num_features * s * s, 3, padding=1), nn.PixelShuffle(s)]
            if activation:
                layers.append(make_activation(activation, num_features))
        super().__init__(*layers)
