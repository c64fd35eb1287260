"""Configurable training degradations: optional blur, the downscale, then noise, JPEG and H.264.

A chain is written as comma-separated steps, each ``NAME:P:LO-HI`` (apply with probability
``P``, parameter drawn uniformly from ``[LO, HI]``), around exactly one downscale
(``bicubic``, MATLAB-compatible, or ``blur``, Gaussian blur + decimate)::

    blur:0.5:0.2-1.2,bicubic,noise:0.3:1-6,jpeg:0.3:40-95,h264:0.5:18-33

- ``blur`` (before the downscale): Gaussian blur of the HR, sigma in HR pixels;
- ``noise``: Gaussian noise on the LR, sigma in 8-bit code values;
- ``jpeg``: OpenCV JPEG at quality q (1..100);
- ``h264``: one libx264 intra frame at CRF (0..51) through PyAV, in memory
  (:func:`vsr.io.recompress.h264_roundtrip_y`): the blocking and ringing of real video;
- ``h264p``: the same patch coded as a libx264 P-frame at CRF (0..51), predicted from a copy
  of itself moved by a random sub-pixel shift of up to ``P_SHIFT`` LR pixels per axis (bicubic,
  reflected border): the motion-compensated frames that make up most of a stream, coarser
  than an intra frame at the same CRF.

A plain ``bicubic`` or ``blur`` is the clean degradation of earlier versions. Every draw comes
from the caller's generator, so an item's LR is a pure function of its seed. The chain's text
is stored in the training config, hence in every checkpoint's ``meta``. No torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from vsr.color import to_uint
from vsr.degrade import DEGRADATIONS, degrade

__all__ = ["STEPS", "Chain", "Step", "parse_chain"]

# name -> (where it runs, allowed parameter range)
STEPS = {"blur": ("pre", (0.01, 10.0)), "noise": ("post", (0.0, 50.0)), "jpeg": ("post", (1, 100)),
         "h264": ("post", (0, 51)), "h264p": ("post", (0, 51))}
P_SHIFT = 2.0  # LR pixels: the largest motion between the reference and the P-frame, per axis


@dataclass(frozen=True)
class Step:
    name: str
    p: float
    lo: float
    hi: float

    def draw(self, rng: np.random.Generator) -> float | None:
        """The step's parameter for this item, or None when the step is skipped (probability 1 - p)."""
        if rng.random() >= self.p:
            return None
        return float(rng.uniform(self.lo, self.hi))

    def text(self) -> str:
        return f"{self.name}:{self.p:g}:{self.lo:g}-{self.hi:g}"


@dataclass(frozen=True)
class Chain:
    base: str
    pre: tuple[Step, ...] = ()
    post: tuple[Step, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.pre and not self.post

    def text(self) -> str:
        return ",".join([*(s.text() for s in self.pre), self.base, *(s.text() for s in self.post)])

    def downscale(self, hr: NDArray[np.uint8], scale: int, rng: np.random.Generator) -> NDArray[np.uint8]:
        """Blur steps, then the downscale: uint8 (H, W) → uint8 (H/s, W/s)."""
        return self.downscale_with(hr, scale, self.draw_pre(rng))

    def draw_pre(self, rng: np.random.Generator) -> list[float | None]:
        """The blur steps' parameters for one item (None: skipped), drawn once for a whole sequence."""
        return [step.draw(rng) for step in self.pre]

    def downscale_with(self, hr: NDArray[np.uint8], scale: int, sigmas: list[float | None]) -> NDArray[np.uint8]:
        """:meth:`downscale` with the blur parameters given (from :meth:`draw_pre`)."""
        x: NDArray = hr
        for sigma in sigmas:
            if sigma is not None:
                x = cv2.GaussianBlur(x, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
        return degrade(x, scale, self.base)

    def corrupt_sequence(self, lrs: list[NDArray[np.uint8]], rng: np.random.Generator) -> list[NDArray[np.uint8]]:
        """The post steps on consecutive LR patches (uint8 (h, w), one shape), in time order.

        Each step's parameter is drawn once for the sequence: noise is independent per frame,
        JPEG codes each frame, and ``h264`` codes the sequence as one libx264 stream (an intra
        frame, then P-frames over the real motion between the patches). ``h264p`` has no
        meaning here (the sequence has its own P-frames) and is refused by the dataset.
        """
        xs = [np.ascontiguousarray(x) for x in lrs]
        for step in self.post:
            value = step.draw(rng)
            if value is None:
                continue
            if step.name in ("h264", "h264p"):
                from vsr.io.recompress import h264_roundtrip_sequence  # PyAV only where the step is used

                xs = h264_roundtrip_sequence(xs, round(value))
            else:
                xs = [self._post_one(step.name, value, x, rng) for x in xs]
        return xs

    @staticmethod
    def _post_one(name: str, value: float, x: NDArray, rng: np.random.Generator) -> NDArray:
        """One noise or JPEG step on one LR patch."""
        if name == "noise":
            return to_uint(x.astype(np.float64) + rng.normal(0.0, value, x.shape))
        ok, buf = cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, round(value)])
        if not ok:
            raise ValueError("OpenCV could not encode a JPEG")
        decoded = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
        if decoded is None:
            raise ValueError("OpenCV could not decode its own JPEG")
        return decoded

    def corrupt(self, lr: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
        """Noise, JPEG and H.264 steps on an LR patch, in order: uint8 (h, w) → uint8 (h, w)."""
        x: NDArray = lr
        for step in self.post:
            value = step.draw(rng)
            if value is None:
                continue
            if step.name in ("noise", "jpeg"):
                x = self._post_one(step.name, value, x, rng)
            elif step.name in ("h264", "h264p"):
                from vsr.io.recompress import h264_roundtrip_y  # PyAV only where the step is used

                x = np.ascontiguousarray(x)
                reference = None
                if step.name == "h264p":
                    dx, dy = rng.uniform(-P_SHIFT, P_SHIFT, 2)
                    reference = cv2.warpAffine(x, np.array([[1, 0, dx], [0, 1, dy]], np.float32),
                                               (x.shape[1], x.shape[0]), flags=cv2.INTER_CUBIC,
                                               borderMode=cv2.BORDER_REFLECT)
                x = h264_roundtrip_y(x, round(value), reference=reference)
        return x


def parse_chain(spec: str) -> Chain:
    """``Chain`` from its text (see the module doc); ValueError with one line on a bad spec."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    bases = [p for p in parts if p in DEGRADATIONS]
    if len(bases) != 1:
        raise ValueError(f"degradation {spec!r}: needs exactly one downscale ({' or '.join(DEGRADATIONS)})")
    pre: list[Step] = []
    post: list[Step] = []
    seen_base = False
    for part in parts:
        if part in DEGRADATIONS:
            seen_base = True
            continue
        fields = part.split(":")
        if len(fields) != 3 or fields[0] not in STEPS:
            raise ValueError(f"degradation step {part!r}: write NAME:P:LO-HI with NAME one of {', '.join(STEPS)}")
        name, p_text, range_text = fields
        try:
            p = float(p_text)
            lo_text, _, hi_text = range_text.partition("-")
            lo, hi = float(lo_text), float(hi_text or lo_text)
        except ValueError:
            raise ValueError(f"degradation step {part!r}: P and LO-HI must be numbers") from None
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"degradation step {part!r}: probability {p} is outside 0..1")
        if lo > hi:
            raise ValueError(f"degradation step {part!r}: empty parameter range {lo:g}-{hi:g}")
        where, (min_v, max_v) = STEPS[name]
        if lo < min_v or hi > max_v:
            raise ValueError(f"degradation step {part!r}: {name}'s parameter must lie in {min_v:g}..{max_v:g}")
        if (where == "pre") != (not seen_base):
            raise ValueError(f"degradation step {part!r}: {name} goes {'before' if where == 'pre' else 'after'} "
                             "the downscale")
        if name in ("h264", "h264p"):
            from vsr.io.recompress import check_recompress

            check_recompress("libx264", round(hi))  # the encoder must exist here
        (pre if where == "pre" else post).append(Step(name, p, lo, hi))
    return Chain(bases[0], tuple(pre), tuple(post))
