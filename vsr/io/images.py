"""Still images on disk: read as RGB, write from RGB. No torch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from vsr.color import rgb_to_y, to_uint

__all__ = ["IMAGE_EXTENSIONS", "Y_SUFFIX", "ImageError", "is_image_path", "list_images", "load_y", "read_rgb",
           "write_rgb"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ImageError(ValueError):
    """An image file is missing or cannot be decoded."""


def is_image_path(path: Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def read_rgb(path: Path) -> NDArray[np.uint8]:
    """Decode an image file.

    Returns uint8 [0, 255], (H, W, 3) in RGB order, or (H, W) for single-channel
    files. Alpha is dropped; 16-bit files are scaled to 8 bits.
    """
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    if data is None:
        raise ImageError(f"image not found: {path}")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ImageError(f"cannot decode image: {path}")
    if img.dtype == np.uint16:
        img = (img.astype(np.float64) / 257.0).round().astype(np.uint8)
    if img.ndim == 3:
        img = img[:, :, 0] if img.shape[2] == 1 else cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(img)


def write_rgb(path: Path, rgb: NDArray[np.uint8]) -> None:
    """Encode uint8 (H, W, 3) RGB or (H, W) grey to ``path`` (format from its suffix)."""
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    ext = Path(path).suffix.lower()
    if ext in (".part",):
        ext = Path(str(path)[: -len(".part")]).suffix.lower()
    ok, buf = cv2.imencode(ext, img)
    if not ok:
        raise ImageError(f"cannot encode image as {ext}")
    with open(path, "wb") as fh:
        fh.write(buf.tobytes())
        fh.flush()
        os.fsync(fh.fileno())


# Files written by ``vsr extract-frames --y-only`` hold the luma plane itself.
Y_SUFFIX = ".y.png"


def list_images(roots: Sequence[Path]) -> list[Path]:
    """All image files under ``roots`` (recursive), sorted, de-duplicated."""
    found: set[Path] = set()
    for root in roots:
        root = Path(root)
        if root.is_file():
            found.add(root)
            continue
        if not root.is_dir():
            raise FileNotFoundError(f"data folder not found: {root}")
        found.update(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    return sorted(found)


def load_y(path: Path) -> NDArray[np.uint8]:
    """Luma of an image file: uint8 [16, 235] for RGB/grey images (BT.601
    studio swing, rounded), or the stored plane for ``*.y.png`` files. (H, W)."""
    img = read_rgb(path)
    if str(path).endswith(Y_SUFFIX):
        return img if img.ndim == 2 else img[:, :, 0]
    return to_uint(rgb_to_y(img))
