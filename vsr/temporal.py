"""Flow-guided temporal blend of upscaled luma: the codec noise of compressed video differs from
frame to frame where the content moves, so averaging each output frame with its motion-compensated
neighbours removes some of it without blurring the content.

For output frame t and each neighbour j within ``radius`` frames, DIS optical flow (OpenCV) is
computed on the LR luma from t to j, scaled to the output size, and used to warp j's upscaled luma
onto t (bicubic). The warped neighbour enters a per-pixel weighted mean with weight
``weight * exp(-d**2 / (2 sigma**2))``, where d is the locally smoothed absolute difference between
it and frame t (occlusions and flow failures give a large d and so no weight); frame t has weight 1.
At the ends of a clip only the neighbours that exist take part.

The tolerance follows the stream's quantiser (:class:`TemporalParams`); its parameters were chosen
on held-out sequences (Vimeo-90K and clips outside the benchmark): ``runs/SHIP_RULE_temporal.md``.
Only planes; no torch.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import cv2
import numpy as np
from numpy.typing import NDArray

from vsr.color import to_uint

__all__ = ["REFERENCE_QP", "TemporalBlend", "TemporalParams", "TemporalStage", "blend_sequence"]

REFERENCE_QP = 28.0  # the QP at which the tolerance is (scale + 2) * strength


@dataclass(frozen=True)
class TemporalParams:
    """``radius``: neighbours each side; ``weight``: a neighbour's weight where it matches frame t
    exactly, in (0, 1]; ``strength``: k in the difference tolerance
    ``sigma = (scale + 2) * k * 2 ** ((qp - 28) / 6)`` (8-bit code values, scaled for deeper planes),
    which follows the H.264 quantiser step (it doubles every 6 QP): the codec's noise, and so what
    may be averaged away, grows with it."""

    radius: int = 3
    weight: float = 0.6
    strength: float = 0.7

    def __post_init__(self) -> None:
        if self.radius < 1:
            raise ValueError(f"temporal radius must be at least 1, got {self.radius}")
        if not 0.0 < self.weight <= 1.0:
            raise ValueError(f"temporal weight must be in (0, 1], got {self.weight}")
        if self.strength <= 0:
            raise ValueError(f"temporal strength must be positive, got {self.strength}")

    def sigma(self, scale: float, qp: float | None) -> float:
        """The tolerance in 8-bit code values at ``scale`` for a stream quantised at ``qp``
        (None: unknown, taken as :data:`REFERENCE_QP`)."""
        q = REFERENCE_QP if qp is None else qp
        return (float(scale) + 2.0) * self.strength * 2.0 ** ((q - REFERENCE_QP) / 6.0)


def _to8(plane: NDArray[Any], bit_depth: int) -> NDArray[np.uint8]:
    """The plane as uint8 for the flow (DIS takes 8-bit images only)."""
    if plane.dtype == np.uint8:
        return plane
    return to_uint(plane.astype(np.float32) / float(1 << (bit_depth - 8)))  # type: ignore[return-value]


class TemporalBlend:
    """Blends one upscaled luma plane with its warped neighbours (one DIS instance, reused)."""

    def __init__(self, params: TemporalParams, qp: float | None = None) -> None:
        self.params, self.qp = params, qp
        self._dis = cv2.DISOpticalFlow.create(cv2.DISOpticalFlow_PRESET_MEDIUM)
        self._grid: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None

    def _base_grid(self, h: int, w: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        if self._grid is None or self._grid[0].shape != (h, w):
            gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._grid = gx, gy
        return self._grid

    def __call__(self, lr_t: NDArray[Any], sr_t: NDArray[Any],
                 neighbours: Sequence[tuple[NDArray[Any], NDArray[Any]]], bit_depth: int = 8) -> NDArray[Any]:
        """``lr_t``: the LR luma of frame t, (h, w); ``sr_t``: its upscaled luma, (H, W), uint8 or
        uint16 at ``bit_depth``; ``neighbours``: (LR luma, upscaled luma) pairs of the frames around t.
        Returns the blended (H, W) plane, dtype of ``sr_t``."""
        if not neighbours:
            return sr_t
        big_h, big_w = sr_t.shape
        h, w = lr_t.shape
        sigma = self.params.sigma(big_w / w, self.qp) * float(1 << (bit_depth - 8))
        gx, gy = self._base_grid(big_h, big_w)
        cur8 = _to8(lr_t, bit_depth)
        ref = sr_t.astype(np.float32)
        acc, wsum = ref.copy(), np.ones_like(ref)
        for lr_j, sr_j in neighbours:
            # lr_t(x) ~ lr_j(x + flow(x)), in LR pixels (no initial flow is used: the buffer is only the output)
            small = self._dis.calc(cur8, _to8(lr_j, bit_depth), np.zeros((h, w, 2), np.float32))
            flow = np.asarray(cv2.resize(np.asarray(small), (big_w, big_h), interpolation=cv2.INTER_LINEAR))
            warped = cv2.remap(sr_j.astype(np.float32), gx + flow[..., 0] * (big_w / w),
                               gy + flow[..., 1] * (big_h / h), cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            d = cv2.GaussianBlur(np.abs(warped - ref), (9, 9), 2.0)
            wgt = self.params.weight * np.exp(-(d * d) / (2.0 * sigma * sigma))
            acc += wgt * warped
            wsum += wgt
        return to_uint(acc / wsum, bit_depth)


def blend_sequence(lr: NDArray[Any], sr: NDArray[Any], params: TemporalParams, qp: float | None = None,
                   bit_depth: int = 8) -> NDArray[Any]:
    """``lr``: (T, h, w) consecutive LR luma planes of a stream quantised at ``qp``; ``sr``:
    (T, H, W) their upscaled luma. Returns the (T, H, W) blended planes, dtype of ``sr``."""
    blend = TemporalBlend(params, qp)
    n, r = len(lr), params.radius
    return np.stack([blend(lr[t], sr[t], [(lr[j], sr[j]) for j in range(max(0, t - r), min(n, t + r + 1)) if j != t],
                           bit_depth) for t in range(n)])


T = TypeVar("T")


class TemporalStage(Generic[T]):
    """A delay line in a clip's output stream: items (frames and the packets between them) go in
    with :meth:`put`, and come out to ``emit`` in the same order once each frame among them has
    its ``radius`` following frames (:meth:`finish` emits the rest). ``planes(item)`` gives a
    frame's (LR luma, upscaled luma, bit depth), or None for an item that is not a frame;
    ``replace(item, y)`` sets a frame's upscaled luma to the blended plane. Neighbours are always
    the unblended planes."""

    def __init__(self, params: TemporalParams, qp: float | None, emit: Callable[[T], None],
                 planes: Callable[[T], tuple[NDArray[Any], NDArray[Any], int] | None],
                 replace: Callable[[T, NDArray[Any]], None]) -> None:
        self.params, self.emit, self.planes, self.replace = params, emit, planes, replace
        self.blend = TemporalBlend(params, qp)
        self._items: deque[T] = deque()  # waiting to go out, in order
        self._frames: list[tuple[T, NDArray[Any], NDArray[Any], int]] = []  # the window's frames, unblended
        self._next = 0  # index in _frames of the next frame to blend
        self.seconds = 0.0  # spent blending

    def put(self, item: T) -> None:
        self._items.append(item)
        p = self.planes(item)
        if p is not None:
            self._frames.append((item, *p))
            while self._next < len(self._frames) - self.params.radius:
                self._blend_next()
        self._drain()

    def finish(self) -> None:
        while self._next < len(self._frames):
            self._blend_next()
        self._drain()

    def _blend_next(self) -> None:
        t0 = time.perf_counter()
        r, t = self.params.radius, self._next
        item, lr_t, sr_t, bits = self._frames[t]
        around = [(f[1], f[2]) for j, f in enumerate(self._frames) if j != t and abs(j - t) <= r]
        self.replace(item, self.blend(lr_t, sr_t, around, bits))
        self._next += 1
        drop = max(0, self._next - r)  # frames no later frame will look back to
        del self._frames[:drop]
        self._next -= drop
        self.seconds += time.perf_counter() - t0

    def _drain(self) -> None:
        waiting = {id(f[0]) for f in self._frames[self._next:]}  # frames not blended yet
        while self._items and id(self._items[0]) not in waiting:
            self.emit(self._items.popleft())
