from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from conftest import gradient_rgb, imread, shared

from vsr.color import rgb_to_y, to_uint
from vsr.data import FrameFolderDataset, IterationBatchSampler, list_images
from vsr.degrade import imresize


def test_items_are_y_patches_in_range(frames_dir: Path):
    ds = FrameFolderDataset([frames_dir], scale=2, patch_size=32, patches_per_image=3)
    assert len(ds) == 4
    lr, hr = ds[(1, 123)]
    assert lr.shape == (3, 1, 16, 16) and hr.shape == (3, 1, 32, 32)
    assert lr.dtype == torch.float32
    assert float(hr.min()) >= 16 / 255 - 1e-6 and float(hr.max()) <= 235 / 255 + 1e-6
    lr2, hr2 = ds[(1, 123)]
    assert torch.equal(lr, lr2) and torch.equal(hr, hr2)  # same key, same patch


def test_patch_lr_equals_whole_image_lr(frames_dir: Path):
    """LR made from a margin-padded crop equals the whole image's LR, cropped."""
    scale, p = 3, 24
    ds = FrameFolderDataset([frames_dir], scale=scale, patch_size=p, augment=False)
    path = Path(ds.files[0])
    y = to_uint(rgb_to_y(imread(str(path))[:, :, ::-1]))
    h, w = (y.shape[0] // scale) * scale, (y.shape[1] // scale) * scale
    full_lr = imresize(y[:h, :w], 1 / scale)
    lr, hr = ds[(0, 7)]
    hr_u8 = np.rint(hr[0, 0].numpy() * 255).astype(np.uint8)
    lr_u8 = np.rint(lr[0, 0].numpy() * 255).astype(np.uint8)
    # locate the HR patch in the image, then compare LR at the same place
    res = cv2.matchTemplate(y[:h, :w], hr_u8, cv2.TM_SQDIFF)
    top, left = np.unravel_index(np.argmin(res), res.shape)
    assert top % scale == 0 and left % scale == 0
    np.testing.assert_array_equal(lr_u8, full_lr[top // scale : top // scale + p // scale,
                                                 left // scale : left // scale + p // scale])


def test_scale_augmentation_crops_a_shrunk_copy(frames_dir: Path):
    """--scale-aug: the HR patch is a crop of the image shrunk by the item's own factor."""
    ds = FrameFolderDataset([frames_dir], scale=2, patch_size=16, augment=False, scale_aug=0.6)
    y = to_uint(rgb_to_y(imread(ds.files[0])[:, :, ::-1]))
    for seed in (3, 11):
        lr, hr = ds[(0, seed)]
        assert lr.shape == (1, 1, 8, 8) and hr.shape == (1, 1, 16, 16)
        floor = max(0.6, (16 + 2) / min(y.shape))  # a shrunk copy still holds a patch
        factor = np.random.default_rng(seed).uniform(floor, 1.0)  # the item's first draw
        hr_u8 = np.rint(hr[0, 0].numpy() * 255).astype(np.uint8)
        shrunk = imresize(y, factor) if factor < 0.99 else y
        # integer pixels: any mismatch costs >= 1; below 0.5 is float round-off (CPU-dependent)
        assert cv2.matchTemplate(shrunk, hr_u8, cv2.TM_SQDIFF).min() < 0.5
        if factor < 0.9:  # and, shrunk, it is not a crop of the original
            assert cv2.matchTemplate(y, hr_u8, cv2.TM_SQDIFF).min() > 0
    with pytest.raises(ValueError, match="scale_aug"):
        FrameFolderDataset([frames_dir], scale=2, patch_size=16, scale_aug=0.0)


def _contains(image: np.ndarray, patch: np.ndarray) -> bool:
    """Exact search (cv2.matchTemplate's float sums are off by a few units on noise)."""
    windows = np.lib.stride_tricks.sliding_window_view(image, patch.shape)
    return bool((windows == patch).all(axis=(2, 3)).any())


def test_scale_augmentation_shrinks_small_images_too(tmp_path: Path):
    """An image only a little larger than the patch is shrunk down to (not below)
    patch + scale, rather than skipped for the next file."""
    rng = np.random.default_rng(0)
    y = to_uint(np.clip(rng.normal(128, 40, (44, 50)), 16, 235))
    cv2.imwrite(str(tmp_path / "small.png"), np.repeat(y[:, :, None], 3, axis=2))
    y = to_uint(rgb_to_y(imread(str(tmp_path / "small.png"))[:, :, ::-1]))
    ds = FrameFolderDataset([tmp_path], scale=4, patch_size=32, augment=False, scale_aug=0.5)
    shrunk_items = 0
    for seed in range(12):
        factor = np.random.default_rng(seed).uniform((32 + 4) / 44, 1.0)
        assert factor >= 36 / 44
        _, hr = ds[(0, seed)]
        hr_u8 = np.rint(hr[0, 0].numpy() * 255).astype(np.uint8)
        expected = imresize(y, factor) if factor < 0.99 else y
        assert _contains(expected, hr_u8)
        shrunk_items += not _contains(y, hr_u8)
    assert shrunk_items >= 6  # most items come from a shrunk copy, none is skipped


def test_sampler_is_a_function_of_iteration_and_rank():
    a = iter(IterationBatchSampler(10, 4, seed=1))
    batches = [next(a) for _ in range(5)]
    b = iter(IterationBatchSampler(10, 4, seed=1, start_iteration=3))
    assert next(b) == batches[3]
    r0 = next(iter(IterationBatchSampler(10, 50, seed=1, rank=0, world_size=2)))
    r1 = next(iter(IterationBatchSampler(10, 50, seed=1, rank=1, world_size=2)))
    assert {f for f, _ in r0} <= set(range(0, 10, 2)) and {f for f, _ in r1} <= set(range(1, 10, 2))


def test_memory_does_not_grow_with_files(tmp_path: Path):
    img = gradient_rgb(40, 40)
    for i in range(1500):
        sub = tmp_path / f"d{i % 10}"
        sub.mkdir(exist_ok=True)
        cv2.imwrite(str(sub / f"{i:05d}.png"), img)
    gc.collect()
    tracemalloc.start()
    ds = FrameFolderDataset([tmp_path], scale=2, patch_size=16)
    after_init = tracemalloc.get_traced_memory()[0]
    for i in range(0, 1500, 5):
        ds[(i, i)]
    gc.collect()
    after_reads = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(ds) == 1500
    assert after_init < 1_000_000  # file names only: well under 700 bytes a file
    assert after_reads - after_init < 200_000  # reading 300 images keeps none of them


def test_works_with_loader_workers(frames_dir: Path):
    ds = FrameFolderDataset([frames_dir], scale=2, patch_size=32, patches_per_image=2)
    sampler = IterationBatchSampler(len(ds), 3, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=2)
    lr, hr = next(iter(loader))
    assert lr.shape == (3, 2, 1, 16, 16) and hr.shape == (3, 2, 1, 32, 32)
    ref = ds[next(iter(sampler))[0]]
    assert torch.equal(lr[0], ref[0])


def test_small_images_give_way(tmp_path: Path):
    cv2.imwrite(str(tmp_path / "a.png"), gradient_rgb(10, 10))
    cv2.imwrite(str(tmp_path / "b.png"), gradient_rgb(64, 64))
    ds = FrameFolderDataset([tmp_path], scale=2, patch_size=32)
    assert ds[(0, 1)][1].shape == (1, 1, 32, 32)


def test_real_training_sets_are_found():
    files = list_images([shared("T91"), shared("BSDS200")])
    assert len(files) == 291
    with pytest.raises(FileNotFoundError):
        list_images([Path("/nonexistent/folder")])


def test_a_corrupt_image_is_named_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), gradient_rgb(64, 64, i)[:, :, ::-1])
    bad = tmp_path / "1.png"
    bad.write_bytes(bad.read_bytes()[:100])  # a cut PNG
    ds = FrameFolderDataset([tmp_path], scale=2, patch_size=32)
    with caplog.at_level("WARNING"):
        lr, hr = ds[(1, 7)]  # the cut file's index: the next readable file stands in
    assert hr.shape == (1, 1, 32, 32) and lr.shape == (1, 1, 16, 16)
    assert "1.png" in caplog.text
    empty = tmp_path / "bad_only"
    empty.mkdir()
    (empty / "x.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="no readable image"):
        FrameFolderDataset([empty], scale=2, patch_size=32)


def test_multi_frame_items_are_sequences(frames_dir: Path):
    """frames=3: LR windows (current frame first) and the current HR; a still sequence repeats one LR patch,
    a moving one does not, and the H.264 step codes the sequence (a PSNR drop against the same clean draw)."""
    from vsr.metrics import psnr

    kw: dict[str, Any] = {"scale": 2, "patch_size": 32, "patches_per_image": 4, "frames": 3}
    still = FrameFolderDataset([frames_dir], motion=0.0, **kw)
    lr, hr = still[(0, 5)]
    assert lr.shape == (4, 3, 16, 16) and hr.shape == (4, 1, 32, 32)
    assert torch.equal(lr[:, 1], lr[:, 0]) and torch.equal(lr[:, 2], lr[:, 0])
    moving = FrameFolderDataset([frames_dir], motion=2.0, augment=False, **kw)
    lr_m, hr_m = moving[(0, 5)]
    assert not torch.equal(lr_m[:, 1], lr_m[:, 0])
    coded = FrameFolderDataset([frames_dir], motion=2.0, augment=False, degradation="bicubic,h264:1:45-45", **kw)
    lr_c, hr_c = coded[(0, 5)]
    assert torch.equal(hr_c[0], hr_m[0])  # the first patch: same draws, same HR (the codec's draws come later)
    clean_u8, coded_u8 = (np.rint(t[0].numpy() * 255).astype(np.uint8) for t in (lr_m, lr_c))
    assert np.mean([psnr(c, k) for c, k in zip(coded_u8, clean_u8, strict=True)]) < 40
    lr_c2, _ = coded[(0, 5)]
    assert torch.equal(lr_c, lr_c2)  # a pure function of the key, codec included


def test_multi_frame_options_are_checked(frames_dir: Path):
    with pytest.raises(ValueError, match="odd"):
        FrameFolderDataset([frames_dir], scale=2, patch_size=32, frames=2)
    with pytest.raises(ValueError, match="h264p"):
        FrameFolderDataset([frames_dir], scale=2, patch_size=32, frames=3, degradation="bicubic,h264p:0.5:20-30")
