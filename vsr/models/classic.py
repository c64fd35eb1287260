"""The classic models from the literature and plain bicubic.

- ``bicubic``: no parameters; always available, the baseline in every table.
- ``srcnn`` (Dong et al., ECCV 2014): 9-5-5 on the bicubic-upsampled input.
- ``srresnet`` (Ledig et al., CVPR 2017): residual blocks with batch norm and
  PReLU, sub-pixel upsampling. ``srgan`` is the same generator; the name
  exists so that GAN-trained weights can be told apart from MSE-trained ones.
"""

from __future__ import annotations

import torch
from torch import nn

from vsr.models._registry import register_model
from vsr.models.blocks import Upsampler, bicubic_upsample, check_scale

__all__ = ["SRCNN", "Bicubic", "SRResNet", "bicubic", "srcnn", "srgan", "srresnet"]


class Bicubic(nn.Module):
    """Plain bicubic: ``(N, C, H, W)`` → ``(N, C, sH, sW)``; no parameters."""

    def __init__(self, scale: int, in_channels: int = 1) -> None:
        super().__init__()
        self.scale = check_scale(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bicubic_upsample(x, self.scale)


class SRCNN(nn.Module):
    """SRCNN 9-1-5 style (64/32 features) applied after bicubic upsampling."""

    def __init__(self, scale: int, in_channels: int = 1, num_features: int = 64, mid_features: int = 32) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, num_features, 9, padding=4),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_features, mid_features, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_features, in_channels, 5, padding=2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = bicubic_upsample(x, self.scale)
        return up + self.body(up)


class _SRResBlock(nn.Module):
    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(num_features, num_features, 3, padding=1),
            nn.BatchNorm2d(num_features),
            nn.PReLU(num_features),
            nn.Conv2d(num_features, num_features, 3, padding=1),
            nn.BatchNorm2d(num_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """SRResNet generator: ``(N, C, H, W)`` in [0, 1] → ``(N, C, sH, sW)``."""

    def __init__(self, scale: int, in_channels: int = 1, num_features: int = 64, num_blocks: int = 16) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        self.head = nn.Sequential(nn.Conv2d(in_channels, num_features, 9, padding=4), nn.PReLU(num_features))
        self.body = nn.Sequential(
            *[_SRResBlock(num_features) for _ in range(num_blocks)],
            nn.Conv2d(num_features, num_features, 3, padding=1),
            nn.BatchNorm2d(num_features),
        )
        self.tail = nn.Sequential(
            Upsampler(scale, num_features, activation="prelu"),
            nn.Conv2d(num_features, in_channels, 9, padding=4),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x)
        return self.tail(feat + self.body(feat)) + bicubic_upsample(x, self.scale)


@register_model
def bicubic(scale: int, **kwargs) -> Bicubic:
    return Bicubic(scale=scale, **kwargs)


@register_model
def srcnn(scale: int, **kwargs) -> SRCNN:
    return SRCNN(scale=scale, **kwargs)


@register_model
def srresnet(scale: int, **kwargs) -> SRResNet:
    return SRResNet(scale=scale, **kwargs)


@register_model
def srgan(scale: int, **kwargs) -> SRResNet:
    return SRResNet(scale=scale, **kwargs)
