"""Loaders for other projects' published SR weights in ../shared/peers (benchmarks only).

Architectures as described in ../shared/peers/MANIFEST.md, written here from
that description; nothing of theirs is copied or committed. Each loader
returns an *upscale function*: uint8 ``(N, h, w)`` studio-swing Y planes →
uint8 ``(N, sh, sw)``, the same contract as :meth:`vsr.engine.Engine.upscale_y`,
so :func:`vsr.evaluate.evaluate_images` scores them exactly like our models.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from vsr.degrade import imresize

PEERS = Path(__file__).resolve().parents[2] / "shared" / "peers"
UpscaleFn = Callable[[NDArray[np.uint8]], NDArray[np.uint8]]


class FSRCNN(nn.Module):
    """FSRCNN(56, 12, 4) with a 9x9 transposed-conv tail (yjn870/FSRCNN-pytorch layout)."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.first_part = nn.Sequential(nn.Conv2d(1, 56, 5, padding=2), nn.PReLU(56))
        mid: list[nn.Module] = [nn.Conv2d(56, 12, 1), nn.PReLU(12)]
        for _ in range(4):
            mid += [nn.Conv2d(12, 12, 3, padding=1), nn.PReLU(12)]
        mid += [nn.Conv2d(12, 56, 1), nn.PReLU(56)]
        self.mid_part = nn.Sequential(*mid)
        self.last_part = nn.ConvTranspose2d(56, 1, 9, stride=scale, padding=4, output_padding=scale - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last_part(self.mid_part(self.first_part(x)))


class VDSR(nn.Module):
    """VDSR (Kim et al. 2016): 20 bias-free 3x3 convs at HR size over a bicubic input, plus that input."""

    def __init__(self) -> None:
        super().__init__()
        self.input = nn.Conv2d(1, 64, 3, padding=1, bias=False)
        self.residual_layer = nn.Sequential(*[_VdsrBlock() for _ in range(18)])
        self.output = nn.Conv2d(64, 1, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.residual_layer(torch.relu(self.input(x)))) + x


class _VdsrBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(64, 64, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


def _torch_upscale(net: nn.Module, pre: Callable[[NDArray], NDArray] | None = None) -> UpscaleFn:
    net = net.eval().to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    @torch.inference_mode()
    def run(y: NDArray[np.uint8]) -> NDArray[np.uint8]:
        planes = np.stack([pre(p) for p in y]) if pre is not None else y.astype(np.float64)
        x = torch.from_numpy(planes.astype(np.float32) / 255.0)[:, None].contiguous(memory_format=torch.channels_last)
        out = net(x)[:, 0].mul_(255.0).round_().clamp_(0, 255)
        return out.numpy().astype(np.uint8)

    return run


def fsrcnn_yjn870(scale: int) -> UpscaleFn:
    """yjn870's FSRCNN weights: a plain state_dict saved on cuda:0 (studio Y/255 in and out)."""
    net = FSRCNN(scale)
    net.load_state_dict(torch.load(PEERS / "fsrcnn_yjn870" / f"fsrcnn_x{scale}.pth", map_location="cpu",
                                   weights_only=True))
    return _torch_upscale(net)


def vdsr(scale: int) -> UpscaleFn:
    """twtygqyy's VDSR: one model for every scale, run at HR size on the MATLAB-bicubic upsample."""
    net = VDSR()
    net.load_state_dict(torch.load(PEERS / "vdsr_twtygqyy" / "vdsr_state_dict.pt", map_location="cpu",
                                   weights_only=True))
    return _torch_upscale(net, pre=lambda p: imresize(p.astype(np.float64), scale).clip(0, 255).round())


def opencv_dnn(kind: str, scale: int) -> UpscaleFn:
    """OpenCV's dnn_superres ESPCN / FSRCNN graphs, fed the 1-channel studio Y plane (protocol A).

    Needs opencv-contrib-python-headless (``scripts/setup_peers.sh``).
    """
    import cv2

    if not hasattr(cv2, "dnn_superres"):
        raise RuntimeError("cv2.dnn_superres is missing: run benchmarks from .venv-peers (scripts/setup_peers.sh)")
    folder, name = {"espcn": ("opencv_espcn", "ESPCN"), "fsrcnn": ("opencv_fsrcnn", "FSRCNN")}[kind]
    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    sr.readModel(str(PEERS / folder / f"{name}_x{scale}.pb"))
    sr.setModel(kind, scale)

    def run(y: NDArray[np.uint8]) -> NDArray[np.uint8]:
        return np.stack([sr.upsample(np.ascontiguousarray(p)) for p in y])

    return run
