"""Adversarial training parts: the feature (content) loss and the GAN losses.

The paper's content loss compares VGG19 ImageNet features. Those weights
cannot be had here (nothing is downloaded, no installed package ships them),
so the features come from a network we train and ship ourselves: the head and
first residual blocks of a shipped EDSR or SRResNet, applied to the SR and HR
images directly. Those layers were trained on natural-image luma and respond
to edges and texture at any resolution, which is what a content loss needs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["FeatureLoss", "d_loss", "g_adv_loss"]


class FeatureLoss(nn.Module):
    """L1 distance between frozen intermediate features of ``net`` on SR and on HR.

    ``net`` is an EDSR or SRResNet instance (``head`` and ``body`` attributes);
    ``blocks``: how many of its body blocks to run after the head. Input
    ``(N, 1, H, W)`` float in [0, 1].
    """

    def __init__(self, net: nn.Module, blocks: int = 2) -> None:
        super().__init__()
        head, body = getattr(net, "head", None), getattr(net, "body", None)
        if head is None or not isinstance(body, nn.Sequential) or len(body) < blocks:
            raise ValueError(f"feature net {type(net).__name__} has no head and {blocks} body blocks (EDSR, SRResNet)")
        self.features = nn.Sequential(head, *list(body)[:blocks]).eval()
        for p in self.features.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> FeatureLoss:  # frozen: batch norm stays in eval mode
        return super().train(False)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.features(hr)
        return F.l1_loss(self.features(sr), target)


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's binary cross-entropy: HR labelled 1, SR labelled 0."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def g_adv_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's non-saturating adversarial loss, -log D(G(x))."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
