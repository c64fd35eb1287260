"""Lazy training dataset over folders of frames or images.

Only the sorted file names are kept; an image is read when an item is asked
for. Items are keyed by ``(file_index, seed)`` pairs produced by
:class:`IterationBatchSampler`, so the patch drawn for a given iteration is a
pure function of (run seed, iteration, rank) whatever the number of loader
workers: that is what makes ``--resume`` continue exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from vsr.degrade import imresize
from vsr.degrade_chain import parse_chain
from vsr.frames import window_order
from vsr.io.images import Y_SUFFIX, ImageError, list_images, load_y, read_rgb

__all__ = ["Y_SUFFIX", "FrameFolderDataset", "IterationBatchSampler", "list_images", "load_y"]

log = logging.getLogger(__name__)

def _in_root(file: str, root: Path) -> bool:
    """Whether ``file`` (a path from :func:`list_images`) is ``root`` or lies under it."""
    top = str(Path(root))
    return file == top or file.startswith(top.rstrip("/") + "/")


def _check_readable(roots: Sequence[Path], files: list[str]) -> None:
    """Refuse a data folder in which no image decodes (one decode per folder when all is well)."""
    for root in roots:
        mine = [f for f in files if _in_root(f, root)]
        if not mine:
            raise ValueError(f"no images found under {root}")
        for f in mine:
            try:
                read_rgb(Path(f))
                break
            except ImageError:
                log.warning("skipping an unreadable training image: %s", f)
        else:
            raise ValueError(f"no readable image under {root}")


class FrameFolderDataset(torch.utils.data.Dataset):
    """Random HR/LR Y patch pairs from image folders.

    Item ``(file_index, seed)`` → ``(lr, hr)`` float32 tensors in [0, 1] of
    shapes ``(k, 1, p/s, p/s)`` and ``(k, 1, p, p)`` where ``k`` is
    ``patches_per_image`` (several patches per decoded file keep PNG decoding
    off the critical path). LR is made from a margin-padded HR crop, so it
    equals the LR of the whole image cropped (no patch-border artefacts), and
    is rounded to 8-bit code values like the planes the engine sees.
    ``scale_aug`` < 1 first shrinks each decoded image by a random factor in
    ``[max(scale_aug, (p + s) / short side), 1]`` (scale augmentation), so a
    shrunk copy always still holds a patch.

    ``frames`` > 1 (odd) makes each item a short synthetic video for a multi-frame net:
    the HR patch drifts over the image at a constant velocity of up to ``motion`` LR
    pixels per frame on each axis (in whole HR pixels, so at x2 and above the LR frames
    sample other sub-pixel phases; one sequence in five is still), each frame is
    degraded on its own, and the chain's steps run over the sequence
    (:meth:`~vsr.degrade_chain.Chain.corrupt_sequence`: ``h264`` codes it as one stream,
    up to three earlier frames first, so that the current frame is a P-frame 1 to 4 deep).
    LR is then ``(k, frames, p/s, p/s)`` in :func:`vsr.frames.window_order` (the
    current frame first) and HR the current frame's patch.
    """

    def __init__(
        self,
        roots: Sequence[Path],
        *,
        scale: int,
        patch_size: int,
        degradation: str = "bicubic",
        patches_per_image: int = 1,
        augment: bool = True,
        scale_aug: float = 1.0,
        frames: int = 1,
        motion: float = 1.5,
    ) -> None:
        if patch_size % scale:
            raise ValueError(f"patch_size {patch_size} is not a multiple of scale {scale}")
        self.chain = parse_chain(degradation)
        self.order = window_order(frames)  # ValueError for an even or non-positive count
        if frames > 1 and any(step.name == "h264p" for step in self.chain.post):
            raise ValueError("degradation h264p codes single patches; a multi-frame run codes its sequences "
                             "with h264")
        if not 0.0 <= motion <= 8.0:
            raise ValueError(f"motion must lie in 0..8 LR pixels per frame, got {motion}")
        self.frames = frames
        self.motion = motion
        self.roots = [Path(r) for r in roots]
        self.files = [str(p) for p in list_images(roots)]
        if not self.files:
            raise ValueError(f"no images found under {', '.join(map(str, roots))}")
        self._unreadable: set[int] = set()
        _check_readable(roots, self.files)
        self.scale = scale
        self.patch_size = patch_size
        self.degradation = degradation
        self.patches_per_image = patches_per_image
        self.augment = augment
        if not 0.0 < scale_aug <= 1.0:
            raise ValueError(f"scale_aug must be in (0, 1], got {scale_aug}")
        self.scale_aug = scale_aug

    def __len__(self) -> int:
        return len(self.files)

    def file_weights(self, folder_weights: Sequence[float]) -> NDArray[np.float64]:
        """Per-file draw probabilities giving data folder ``k`` the share ``folder_weights[k]`` of all draws."""
        if len(folder_weights) != len(self.roots):
            raise ValueError(f"{len(folder_weights)} weights for {len(self.roots)} data folders")
        owner = np.full(len(self.files), -1)
        for k, root in enumerate(self.roots):
            for i, f in enumerate(self.files):
                if owner[i] < 0 and _in_root(f, root):
                    owner[i] = k
        counts = np.bincount(owner[owner >= 0], minlength=len(self.roots))
        w = np.array([folder_weights[k] / counts[k] if k >= 0 and counts[k] else 0.0 for k in owner])
        return w / w.sum()

    def _patch(self, y: NDArray[np.uint8], rng: np.random.Generator) -> tuple[NDArray, NDArray]:
        s, p = self.scale, self.patch_size
        y = y[: (y.shape[0] // s) * s, : (y.shape[1] // s) * s]
        h, w = y.shape
        top = int(rng.integers(0, (h - p) // s + 1)) * s
        left = int(rng.integers(0, (w - p) // s + 1)) * s
        lr = self._lr_at(y, top, left, self.chain.draw_pre(rng))
        if not self.chain.clean:
            lr = self.chain.corrupt(np.ascontiguousarray(lr), rng)
        hr = y[top : top + p, left : left + p]
        if self.augment:
            if rng.random() < 0.5:
                lr, hr = lr[:, ::-1], hr[:, ::-1]
            if rng.random() < 0.5:
                lr, hr = lr[::-1], hr[::-1]
            if rng.random() < 0.5:
                lr, hr = lr.T, hr.T
        return lr, hr

    def _lr_at(self, y: NDArray[np.uint8], top: int, left: int, sigmas: list[float | None]) -> NDArray[np.uint8]:
        """The LR patch (uint8, rounded like MATLAB) of the HR patch at (top, left) of ``y`` (sides multiples
        of the scale), made from a margin-padded region, so it equals the whole image's LR where (top, left)
        lies on the LR grid (no patch-border artefacts)."""
        s, p = self.scale, self.patch_size
        h, w = y.shape
        # margin 3s (> the bicubic antialias support, 2s) where there is room, keeping top - t0 a multiple of s
        t0, l0 = top - s * min(3, top // s), left - s * min(3, left // s)
        region = y[t0 : min(top + p + 3 * s, h), l0 : min(left + p + 3 * s, w)]
        lr_region = self.chain.downscale_with(region, s, sigmas)
        lt, ll = (top - t0) // s, (left - l0) // s
        return lr_region[lt : lt + p // s, ll : ll + p // s]

    def _sequence(self, y: NDArray[np.uint8], rng: np.random.Generator) -> tuple[NDArray, NDArray]:
        """One multi-frame item: LR ``(frames, p/s, p/s)`` in window order and the current HR ``(p, p)``."""
        s, p = self.scale, self.patch_size
        y = y[: (y.shape[0] // s) * s, : (y.shape[1] // s) * s]
        h, w = y.shape
        half = self.frames // 2
        lead = int(rng.integers(0, 4))
        times = np.arange(-half - lead, half + 1)  # the current frame is time 0
        velocity = rng.uniform(-self.motion, self.motion, 2) * s if rng.random() >= 0.2 else np.zeros(2)
        top, left = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
        tops = np.clip(np.round(top + times * velocity[0]).astype(int), 0, h - p)
        lefts = np.clip(np.round(left + times * velocity[1]).astype(int), 0, w - p)
        sigmas = self.chain.draw_pre(rng)
        lrs = [self._lr_at(y, int(t), int(l_), sigmas) for t, l_ in zip(tops, lefts, strict=True)]
        if not self.chain.clean:
            lrs = self.chain.corrupt_sequence(lrs, rng)
        now = half + lead
        lr = np.stack([lrs[now + d] for d in self.order])
        cur = int(np.flatnonzero(times == 0)[0])
        hr = y[tops[cur] : tops[cur] + p, lefts[cur] : lefts[cur] + p]
        if self.augment:
            if rng.random() < 0.5:
                lr, hr = lr[:, :, ::-1], hr[:, ::-1]
            if rng.random() < 0.5:
                lr, hr = lr[:, ::-1], hr[::-1]
            if rng.random() < 0.5:
                lr, hr = lr.transpose(0, 2, 1), hr.T
        return lr, hr

    def _read(self, index: int) -> NDArray[np.uint8] | None:
        """The file's luma, or None (with one warning per file) when it cannot be decoded."""
        try:
            return load_y(Path(self.files[index]))
        except ImageError as exc:
            if index not in self._unreadable:
                self._unreadable.add(index)
                log.warning("skipping an unreadable training image: %s", exc)
            return None

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, seed = key
        rng = np.random.default_rng(seed)
        # An unreadable file gives way to the next readable one (deterministic, like small images).
        y = None
        for step in range(len(self.files)):
            y = self._read((index + step) % len(self.files))
            if y is not None:
                index = (index + step) % len(self.files)
                break
        if y is None:
            raise ValueError("no readable training image left")
        if self.scale_aug < 1.0:
            # Scale augmentation (VDSR, Kim et al. 2016): a randomly shrunk copy of
            # the image is a new HR image with other texture frequencies; the
            # antialiased MATLAB resize keeps it free of aliasing.
            # The factor's floor keeps the shrunk copy at least a patch (plus one
            # LR pixel) high and wide; without it, small images (most of T91 at
            # x4) would be skipped for the next file instead of being shrunk.
            floor = max(self.scale_aug, (self.patch_size + self.scale) / min(y.shape))
            if floor < 1.0:
                factor = float(rng.uniform(floor, 1.0))
                if factor < 0.99:
                    y = imresize(y, factor)
        # Images smaller than a patch (a few in T91) give way to the next file:
        # deterministic, and no padding artefacts in the training data.
        for step in range(1, len(self.files) + 1):
            if min(y.shape) >= self.patch_size + self.scale:
                break
            if step == len(self.files):
                raise ValueError(f"no image is larger than the patch size {self.patch_size}")
            y = self._read((index + step) % len(self.files))
            if y is None:
                y = np.zeros((0, 0), np.uint8)  # unreadable: on to the next file
        if self.frames > 1:
            pairs = [self._sequence(y, rng) for _ in range(self.patches_per_image)]
            lr = np.stack([a for a, _ in pairs]).astype(np.float32) / 255.0
            hr = np.stack([b for _, b in pairs])[:, None].astype(np.float32) / 255.0
            return torch.from_numpy(lr), torch.from_numpy(hr)
        pairs = [self._patch(y, rng) for _ in range(self.patches_per_image)]
        lr = np.stack([a for a, _ in pairs])[:, None].astype(np.float32) / 255.0
        hr = np.stack([b for _, b in pairs])[:, None].astype(np.float32) / 255.0
        return torch.from_numpy(lr), torch.from_numpy(hr)


class IterationBatchSampler(torch.utils.data.Sampler):
    """Endless batches of ``(file_index, seed)`` keys, a pure function of
    ``(seed, iteration, rank)``. Rank ``r`` of ``world_size`` draws only from
    its own shard of the file list (every ``world_size``-th file)."""

    def __init__(
        self, num_files: int, items_per_batch: int, *, seed: int, start_iteration: int = 0,
        rank: int = 0, world_size: int = 1, file_weights: NDArray[np.float64] | None = None,
    ) -> None:
        self.shard = np.arange(rank, num_files, world_size)
        if len(self.shard) == 0:
            raise ValueError(f"rank {rank} has no files (only {num_files} files for {world_size} ranks)")
        self.p = None
        if file_weights is not None:
            w = np.asarray(file_weights, np.float64)[self.shard]
            if len(file_weights) != num_files or not w.sum() > 0:
                raise ValueError("file weights: one per file, not all zero")
            self.p = w / w.sum()
        self.items_per_batch = items_per_batch
        self.seed = seed
        self.start_iteration = start_iteration
        self.rank = rank

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        it = self.start_iteration
        while True:
            rng = np.random.default_rng([self.seed, it, self.rank])
            files = rng.choice(self.shard, size=self.items_per_batch, p=self.p)
            seeds = rng.integers(0, 2**62, size=self.items_per_batch)
            yield [(int(f), int(s)) for f, s in zip(files, seeds, strict=True)]
            it += 1

    def __len__(self) -> int:  # endless; DataLoader only needs it for len()
        return 2**31
