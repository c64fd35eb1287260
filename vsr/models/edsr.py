"""EDSR (Lim et al., CVPRW 2017), Y channel only, with its size knobs.

Baseline in the paper: 16 blocks, 64 features, res_scale 1. ``tail="shuffle"``
replaces the paper's upsampler (a conv to F*s*s channels, then a conv at HR) by
one conv to s*s channels at LR: for one output channel the paper's tail costs
as much as several residual blocks (x4: more than the whole 8x32 body).
``residual=True``
adds the bicubic upsample of the input to the output (not in the paper; it
replaces EDSR's RGB mean shift for a single channel and speeds up training).
"""

from __future__ import annotations

import torch
from torch import nn

from vsr.models._registry import register_model
from vsr.models.blocks import ResBlock, Upsampler, bicubic_upsample, check_scale

__all__ = ["EDSR", "ProgressiveEDSR", "edsr"]


class EDSR(nn.Module):
    """Input float32 ``(N, C, H, W)`` in [0, 1] → ``(N, C, sH, sW)`` (unclamped)."""

    def __init__(
        self,
        scale: int,
        in_channels: int = 1,
        num_features: int = 64,
        num_blocks: int = 16,
        res_scale: float = 1.0,
        residual: bool = True,
        tail: str = "upsampler",
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        self.residual = residual
        self.head = nn.Conv2d(in_channels, num_features, 3, padding=1)
        self.body = nn.Sequential(
            *[ResBlock(num_features, res_scale) for _ in range(num_blocks)],
            nn.Conv2d(num_features, num_features, 3, padding=1),
        )
        if tail == "upsampler":  # the paper's: sub-pixel conv(s) at width F, then a conv at HR
            self.tail = nn.Sequential(
                Upsampler(scale, num_features),
                nn.Conv2d(num_features, in_channels, 3, padding=1),
            )
        elif tail == "shuffle":  # ESPCN's: one conv to C*s*s channels at LR, then the shuffle
            self.tail = nn.Sequential(
                nn.Conv2d(num_features, in_channels * scale * scale, 3, padding=1),
                nn.PixelShuffle(scale),
            )
        else:
            raise ValueError(f"unknown EDSR tail {tail!r}; known: upsampler, shuffle")
        if residual:
            last = [m for m in self.tail if isinstance(m, nn.Conv2d)][-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)  # type: ignore[arg-type]  # bias=True

    @property
    def num_blocks(self) -> int:
        return len(self.body) - 1

    def adapt_state_dict(self, src: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A shallower EDSR's state_dict, renamed and padded to load into this deeper one.

        The source's blocks keep their places, its body conv (``body.{n}``) moves
        to this net's last body index, and each new block gets a zero second
        conv, so it starts as the identity (its first conv keeps its random init
        and gets gradients once the second one moves off zero). With
        :func:`vsr.train.loop.embed_state_dict` this makes depth growth
        function-preserving, like the width growth there. A source as deep or
        deeper is returned unchanged.
        """
        src_blocks = len({k.split(".")[1] for k in src if k.startswith("body.") and ".body." in k})
        if not 0 < src_blocks < self.num_blocks:
            return src
        out = {}
        for name, value in src.items():
            parts = name.split(".")
            if parts[0] == "body" and int(parts[1]) == src_blocks:  # the body conv after the blocks
                parts[1] = str(self.num_blocks)
            out[".".join(parts)] = value
        own = self.state_dict()
        for i in range(src_blocks, self.num_blocks):
            for leaf in ("weight", "bias"):
                key = f"body.{i}.body.2.{leaf}"
                out[key] = torch.zeros_like(own[key])
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x)
        out = self.tail(feat + self.body(feat))
        if self.residual:
            out = out + bicubic_upsample(x, self.scale)
        return out


class ProgressiveEDSR(nn.Module):
    """x4 as two x2 EDSRs in a row, trained end to end (progressive
    upsampling, as in LapSRN, Lai et al. 2017).

    Started from an x2 checkpoint (``--init``), every stage gets its weights, so
    the net starts as the engine's ``--passes 2`` of that model without the
    rounding to 8 bits between the passes; training end to end then lets the
    first stage serve the second. The second stage runs at twice the input
    size, so it costs five x2 passes at the input size against one for a
    native x4 EDSR of the same size.
    Input float32 ``(N, C, H, W)`` in [0, 1] → ``(N, C, sH, sW)`` (unclamped).
    """

    def __init__(self, scale: int, stages: int, **kwargs) -> None:
        super().__init__()
        step = round(check_scale(scale) ** (1.0 / stages))
        if stages < 2 or step**stages != scale:
            raise ValueError(f"scale {scale} is not a power of a supported scale with {stages} stages")
        self.scale = scale
        self.stages = nn.ModuleList(EDSR(scale=step, **kwargs) for _ in range(stages))

    def adapt_state_dict(self, src: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A single-stage EDSR's state_dict (an x2 checkpoint) copied into every stage."""
        if any(name.startswith("stages.") for name in src):
            return src
        out = {}
        for i, stage in enumerate(self.stages):
            out.update({f"stages.{i}.{name}": value for name, value in stage.adapt_state_dict(src).items()})  # type: ignore[operator]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x


@register_model
def edsr(scale: int, stages: int = 1, **kwargs) -> EDSR | ProgressiveEDSR:
    """EDSR; ``stages`` > 1 builds it as a cascade of smaller-scale EDSRs (x4 = x2, x2)."""
    if stages == 1:
        return EDSR(scale=scale, **kwargs)
    return ProgressiveEDSR(scale, stages, **kwargs)
