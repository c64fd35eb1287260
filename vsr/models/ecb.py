"""Re-parameterizable plain-convolution SR nets (edge-oriented convolution blocks).

Follows the structure of ECBSR (Zhang, Zeng and Zhang, "Edge-oriented
Convolution Block for Real-time Super Resolution on Mobile Devices", ACM MM
2021): at training time every 3x3 layer is a block of parallel linear branches

- a 3x3 convolution;
- a 1x1 expansion to ``expand`` x C channels followed by a 3x3 squeeze;
- 1x1 convolutions followed by fixed depthwise Sobel-x, Sobel-y and Laplacian
  filters with learned per-channel scales and biases;
- the identity where input and output widths match;

whose sum is one linear map, so :meth:`ECBNet.reparameterize` collapses each
block into a single 3x3 convolution. At inference the net is a plain stack
``head conv → M convs of C channels → tail conv to s² channels → pixel shuffle``
plus an image-space residual over an upsample of the input.

Exactness of the fusion: the 1x1 convolutions run on the zero-padded input,
so at the border their output is their bias, which is what a single 3x3
convolution over the zero-padded input computes once the branches are folded.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from vsr.models._registry import register_model
from vsr.models.blocks import bicubic_upsample, check_scale, make_activation

__all__ = ["ECB", "RESIDUALS", "ECBNet", "StillWindow", "deepen", "ecb", "size_multiple"]

RESIDUALS = ("nearest", "bilinear", "bicubic", "none")

_SOBEL_X = ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0))
_SOBEL_Y = ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0))
_LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))



def _bias(conv: nn.Conv2d) -> torch.Tensor:
    """A convolution's bias (every conv here has one)."""
    assert conv.bias is not None
    return conv.bias

class _MaskBranch(nn.Module):
    """1x1 conv, then a fixed depthwise 3x3 mask with a learned scale and bias per channel."""

    mask: torch.Tensor  # a buffer (fixed), registered below

    def __init__(self, in_ch: int, out_ch: int, mask: tuple[tuple[float, ...], ...]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 1)
        self.scale = nn.Parameter(torch.randn(out_ch, 1, 1, 1) * 1e-3)
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.register_buffer("mask", torch.tensor(mask).expand(out_ch, 1, 3, 3).clone(), persistent=False)

    def forward(self, x_padded: torch.Tensor) -> torch.Tensor:
        y = self.conv(x_padded)
        return F.conv2d(y, self.scale * self.mask, self.bias, groups=y.shape[1])

    def fused(self) -> tuple[torch.Tensor, torch.Tensor]:
        k1 = self.conv.weight[:, :, 0, 0]  # (out, in)
        m = (self.scale * self.mask)[:, 0]  # (out, 3, 3)
        weight = m[:, None] * k1[:, :, None, None]
        bias = self.bias + _bias(self.conv) * m.sum(dim=(1, 2))
        return weight, bias


class ECB(nn.Module):
    """Edge-oriented convolution block: ``in_ch → out_ch`` 3x3, linear (no activation).

    Input ``(N, in_ch, H, W)`` float; output ``(N, out_ch, H, W)``. After
    :meth:`fuse` the block is one ``nn.Conv2d(in_ch, out_ch, 3, padding=1)``
    that computes the same function.
    """

    eye: torch.Tensor  # a buffer (fixed), registered below

    def __init__(self, in_ch: int, out_ch: int, expand: int = 2) -> None:
        super().__init__()
        self.in_ch, self.out_ch = in_ch, out_ch
        mid = max(1, out_ch * expand)
        self.conv3 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.expand = nn.Conv2d(in_ch, mid, 1)
        self.squeeze = nn.Conv2d(mid, out_ch, 3)
        self.sobel_x = _MaskBranch(in_ch, out_ch, _SOBEL_X)
        self.sobel_y = _MaskBranch(in_ch, out_ch, _SOBEL_Y)
        self.laplacian = _MaskBranch(in_ch, out_ch, _LAPLACIAN)
        self.identity = in_ch == out_ch
        # The identity branch as a 3x3 kernel (a fixed buffer, not saved: it follows from the widths).
        eye = torch.zeros(out_ch, in_ch, 3, 3)
        if self.identity:
            eye[torch.arange(out_ch), torch.arange(out_ch), 1, 1] = 1.0
        self.register_buffer("eye", eye, persistent=False)
        self.online = True  # forward through the composed kernel; False runs each branch (tests, cost)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.online:
            return self.forward_branches(x)
        # Online re-parameterization (OREPA, Hu et al., CVPR 2022): the branches are linear, so
        # their sum is one 3x3 convolution whose kernel is a differentiable function of every
        # branch's parameters; one convolution replaces nine, with the same output and gradients.
        # The kernel is composed in the parameters' precision, outside autocast.
        with torch.autocast(x.device.type, enabled=False):
            weight, bias = self.kernel()
        return F.conv2d(x, weight, bias, padding=1)

    def forward_branches(self, x: torch.Tensor) -> torch.Tensor:
        """The sum of the branches, each run as its own convolution (the definition of the block)."""
        xp = F.pad(x, (1, 1, 1, 1))
        y = self.conv3(x) + self.squeeze(self.expand(xp))
        y = y + self.sobel_x(xp) + self.sobel_y(xp) + self.laplacian(xp)
        if self.identity:
            y = y + x
        return y

    def kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The 3x3 ``(weight (out, in, 3, 3), bias (out,))`` equal to the sum of the branches.

        Differentiable in every branch's parameters (the training forward uses it).
        """
        k1 = self.expand.weight[:, :, 0, 0]  # (mid, in)
        k2 = self.squeeze.weight  # (out, mid, 3, 3)
        weight = self.conv3.weight + torch.einsum("omhw,mi->oihw", k2, k1)
        bias = _bias(self.conv3) + _bias(self.squeeze) + torch.einsum("omhw,m->o", k2, _bias(self.expand))
        for branch in (self.sobel_x, self.sobel_y, self.laplacian):
            w, b = branch.fused()
            weight = weight + w
            bias = bias + b
        if self.identity:
            weight = weight + self.eye
        return weight, bias

    @torch.no_grad()
    def fused_kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`kernel` without autograd (fresh tensors, not views of the parameters): what :meth:`fuse` stores."""
        return self.kernel()

    def fuse(self) -> nn.Conv2d:
        weight, bias = self.fused_kernel()
        conv = nn.Conv2d(self.in_ch, self.out_ch, 3, padding=1, device=weight.device, dtype=weight.dtype)
        conv.weight.data.copy_(weight)
        _bias(conv).data.copy_(bias)
        return conv


class ECBNet(nn.Module):
    """Y-channel re-parameterizable net: ``blocks`` 3x3 layers of ``channels`` features.

    Input float32 ``(N, C, H, W)`` in [0, 1]; output ``(N, C, sH, sW)`` in about
    [0, 1] (unclamped). ``fused=True`` builds the plain inference form directly
    (its state_dict is what :meth:`reparameterize` produces).

    ``frames`` > 1 (odd) makes a multi-frame net (early fusion): the input is
    ``(N, frames * C, H, W)``, the frame to upscale first, then its neighbours
    ``t-1, t+1, t-2, t+2, ...`` (:func:`vsr.frames.window_order`); the output and the
    residual are those of the first. With the current frame first, a single-frame
    checkpoint grown into it by ``vsr train --init`` (new input channels start at
    zero weight) computes the single-frame function at iteration 0.

    ``unshuffle`` u > 1 runs the body on u x u blocks of LR pixels (pixel unshuffle in, a tail to
    (s u)^2 channels, pixel shuffle by s u): u^2 times the weights at the same multiply-accumulates.
    """

    def __init__(
        self,
        scale: int,
        in_channels: int = 1,
        blocks: int = 4,
        channels: int = 16,
        expand: int = 2,
        activation: str = "prelu",
        residual: str = "nearest",
        fused: bool = False,
        frames: int = 1,
        unshuffle: int = 1,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        if residual not in RESIDUALS:
            raise ValueError(f"unknown residual {residual!r}; known: {', '.join(RESIDUALS)}")
        if blocks < 1 or channels < 1:
            raise ValueError("blocks and channels must be at least 1")
        if frames < 1 or frames % 2 == 0:
            raise ValueError(f"frames must be odd and at least 1, got {frames}")
        if unshuffle < 1:
            raise ValueError(f"unshuffle must be at least 1, got {unshuffle}")
        self.residual = residual
        self.in_channels = in_channels
        self.frames = frames
        self.is_fused = fused
        self.unshuffle = unshuffle
        widths = [in_channels * frames * unshuffle * unshuffle] + [channels] * (blocks + 1)
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(widths):
            layers.append(nn.Conv2d(a, b, 3, padding=1) if fused else ECB(a, b, expand))
            layers.append(make_activation(activation, b))
        out_ch = in_channels * (scale * unshuffle) ** 2
        layers.append(nn.Conv2d(channels, out_ch, 3, padding=1) if fused else ECB(channels, out_ch, expand))
        self.body = nn.Sequential(*layers)
        self.shuffle = nn.PixelShuffle(scale * unshuffle)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:
            return self._add_residual(self._body_unshuffled(x), x[:, : self.in_channels])
        y = self.body(x)
        x = x[:, : self.in_channels]  # the frame to upscale (the first of a multi-frame window)
        if self.residual == "nearest":
            # Nearest upsample before the shuffle: each sub-pixel channel adds its LR pixel.
            return self.shuffle(y + x.repeat_interleave(self.scale * self.scale, dim=1))
        return self._add_residual(self.shuffle(y), x)

    def _add_residual(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``out`` (N, C, sH, sW) plus the upsampled input ``x`` (N, C, H, W), in image space."""
        s = self.scale
        if self.residual == "nearest":
            return out + x.repeat_interleave(s, dim=-2).repeat_interleave(s, dim=-1)
        if self.residual == "bilinear":
            return out + F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)
        if self.residual == "bicubic":
            return out + bicubic_upsample(x, s)
        return out

    def _body_unshuffled(self, x: torch.Tensor) -> torch.Tensor:
        """The body at 1/u of the resolution: u x u LR pixels become channels (space-to-depth).

        The same multiply-accumulates buy u^2 times the weights and u times the receptive field.
        A size that ``u`` does not divide is padded by edge replication and the output cropped.
        """
        u, s = self.unshuffle, self.scale
        h, w = x.shape[-2:]
        ph, pw = (-h) % u, (-w) % u
        padded = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        return self.shuffle(self.body(F.pixel_unshuffle(padded, u)))[..., : h * s, : w * s]

    @torch.no_grad()
    def reparameterize(self) -> ECBNet:
        """Fuse every block in place into one 3x3 conv; returns ``self`` (now plain)."""
        if self.is_fused:
            return self
        for i, layer in enumerate(self.body):
            if isinstance(layer, ECB):
                self.body[i] = layer.fuse()
        self.is_fused = True
        return self


def size_multiple(model: nn.Module) -> int:
    """What H and W of ``model``'s input must be divisible by in an exported graph (1: any size).

    A space-to-depth net (``unshuffle`` u) pads its input itself in torch, but a traced graph keeps
    the padding its example needed (none), so a runtime must pad to a multiple of u. Wrappers
    (the range guard, a still window) are looked through.
    """
    return max((m.unshuffle for m in model.modules() if isinstance(m, ECBNet)), default=1)


class StillWindow(nn.Module):
    """A multi-frame net run on single images: every frame of the window is the image (a still scene).

    Input ``(N, C, H, W)`` in [0, 1], as a single-frame net takes; output that of ``net``. Training's
    validation on still images and the benchmarks' image sets use it; video gives real windows.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.scale = int(getattr(net, "scale"))  # noqa: B009  # typed: Module attributes read as Tensor | Module
        self.frames = int(getattr(net, "frames"))  # noqa: B009

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.repeat(1, self.frames, 1, 1))


@torch.no_grad()
def deepen(net: ECBNet, blocks: int) -> ECBNet:
    """A copy of the multi-branch PReLU ``net`` grown to ``blocks`` blocks that computes the same function.

    The trained head, blocks and tail are copied; each new block, inserted before the tail, starts as
    the identity (its identity branch alone: the 3x3, squeeze and mask-scale weights are zero, the
    expand and mask 1x1 convs keep their random start so that gradients reach them) followed by a
    PReLU of slope 1. Training then departs from the trained function rather than from scratch.
    """
    if net.is_fused:
        raise ValueError("deepen needs the multi-branch (training) form, not a fused net")
    layers = list(net.body)
    old_blocks = (len(layers) - 1) // 2 - 1
    if blocks < old_blocks:
        raise ValueError(f"cannot deepen a {old_blocks}-block net to {blocks} blocks")
    head = layers[0]
    assert isinstance(head, ECB)
    if not all(isinstance(a, nn.PReLU) for a in layers[1:-1:2]):
        raise ValueError("deepen needs PReLU activations (a slope of 1 is the identity)")
    channels = head.out_ch
    grown = ECBNet(net.scale, in_channels=net.in_channels, blocks=blocks, channels=channels,
                   expand=head.expand.out_channels // max(1, channels), residual=net.residual,
                   frames=net.frames)
    grown = grown.to(next(net.parameters()).dtype)
    keep = len(layers) - 1  # head + trained blocks with their activations
    for i in range(keep):
        grown.body[i].load_state_dict(layers[i].state_dict())
    grown.body[-1].load_state_dict(layers[-1].state_dict())
    for i in range(keep, len(grown.body) - 1, 2):
        block, act = grown.body[i], grown.body[i + 1]
        assert isinstance(block, ECB) and isinstance(act, nn.PReLU)
        for conv in (block.conv3, block.squeeze):
            conv.weight.zero_()
            _bias(conv).zero_()
        for branch in (block.sobel_x, block.sobel_y, block.laplacian):
            branch.scale.zero_()
            branch.bias.zero_()
        act.weight.fill_(1.0)
    return grown


@register_model
def ecb(scale: int, **kwargs) -> ECBNet:
    """The re-parameterizable family at any size (``blocks``, ``channels``)."""
    return ECBNet(scale=scale, **kwargs)


@register_model
def fast(scale: int, **kwargs) -> ECBNet:
    """The fast tier: 4 blocks of 16 channels unless told otherwise."""
    kwargs.setdefault("blocks", 4)
    kwargs.setdefault("channels", 16)
    return ECBNet(scale=scale, **kwargs)


@register_model
def medium(scale: int, **kwargs) -> ECBNet:
    """Between the tiers: 4 blocks of 32 channels unless told otherwise (ECBSR-M4C32's size)."""
    kwargs.setdefault("blocks", 4)
    kwargs.setdefault("channels", 32)
    return ECBNet(scale=scale, **kwargs)


@register_model
def balanced(scale: int, **kwargs) -> ECBNet:
    """The balanced tier: 6 blocks of 40 channels unless told otherwise."""
    kwargs.setdefault("blocks", 6)
    kwargs.setdefault("channels", 40)
    return ECBNet(scale=scale, **kwargs)
