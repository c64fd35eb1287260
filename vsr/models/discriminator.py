"""The SRGAN discriminator (Ledig et al., CVPR 2017, fig. 4).

Eight 3x3 convolutions with LeakyReLU(0.2), every second one strided, the
width doubling every two (F, F, 2F, 2F, 4F, 4F, 8F, 8F; the paper's F is 64),
batch norm after all but the first, then a dense head (1024 units,
LeakyReLU, one logit). The paper's head is dense over the 6x6 map of a 96px
patch; an adaptive average pool to 6x6 keeps that head for any patch size.
Not in the model registry: it scores images, it does not upscale them.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Discriminator"]


class Discriminator(nn.Module):
    """``(N, C, H, W)`` in [0, 1] → ``(N,)`` logits (real > 0)."""

    def __init__(self, in_channels: int = 1, num_features: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for i in range(8):
            c_out = num_features * 2 ** (i // 2)
            layers.append(nn.Conv2d(c_in, c_out, 3, stride=1 + i % 2, padding=1))
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(6))
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c_in * 36, 1024), nn.LeakyReLU(0.2, inplace=True), nn.Linear(1024, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)
