"""Compute cost of a model, counted from its convolutions' shapes (no I/O, no timing)."""

from __future__ import annotations

import torch
from torch import nn

from vsr.models.ecb import ECB

__all__ = ["count_macs", "gmac_640x360"]


@torch.no_grad()
def count_macs(model: nn.Module, height: int, width: int, in_channels: int = 1) -> int:
    """Multiply-accumulates of one forward pass on a ``(1, in_channels, height, width)`` input.

    Counts ``Conv2d`` and ``ConvTranspose2d`` layers (output elements x input
    channels per group x kernel area); element-wise work, pixel shuffles and the
    residual upsample are not counted, as in the papers' GMAC tables. A
    re-parameterizable block that composes its kernel online runs one 3x3
    convolution and counts as one (composing the kernel is per weight, not per pixel).
    """
    total = 0

    def conv_hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, (nn.Conv2d, nn.ConvTranspose2d))  # hooked on those only
        kh, kw = module.kernel_size
        if isinstance(module, nn.ConvTranspose2d):
            # Each input element is spread over out_channels/groups x kernel area outputs.
            total += inputs[0].numel() * (module.out_channels // module.groups) * kh * kw
        else:
            total += output.numel() * (module.in_channels // module.groups) * kh * kw

    def ecb_hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, ECB)
        if module.online:  # else its branch convolutions ran and were counted
            total += output.numel() * module.in_ch * 9

    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    hooks = [m.register_forward_hook(conv_hook) for m in convs]
    hooks += [m.register_forward_hook(ecb_hook) for m in model.modules() if isinstance(m, ECB)]
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        model(torch.zeros(1, in_channels, height, width, device=device))
    finally:
        for h in hooks:
            h.remove()
    return total


def gmac_640x360(model: nn.Module) -> float:
    """GMAC per 640x360 luma frame, from a 64x36 pass (conv cost is linear in the pixels)."""
    return count_macs(model, 36, 64) * 100 / 1e9
