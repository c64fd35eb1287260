"""Still images on disk: read as RGB, write from RGB. No torch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from vsr.color import rgb_to_y, to_uint

__all__ = ["ALPHA_EXTENSIONS", "DEEP_EXTENSIONS", "IMAGE_EXTENSIONS", "Y_SUFFIX", "ImageError", "Picture",
           "animated_frames", "is_image_path", "list_images", "load_y", "read_image", "read_rgb", "write_image",
           "write_rgb"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
ALPHA_EXTENSIONS = (".png", ".tif", ".tiff", ".webp")  # formats OpenCV writes with an alpha channel
DEEP_EXTENSIONS = (".png", ".tif", ".tiff")  # formats OpenCV writes at 16 bits per channel


class ImageError(ValueError):
    """An image file is missing or cannot be decoded."""


def is_image_path(path: Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


@dataclass(frozen=True)
class Picture:
    """A decoded image file as stored.

    ``pixels``: (H, W, 3) RGB or (H, W) grey; ``alpha``: (H, W) or None. Both uint8 [0, 255] at
    ``bit_depth`` 8, uint16 [0, 65535] at 16.
    """

    pixels: NDArray[np.unsignedinteger]
    alpha: NDArray[np.unsignedinteger] | None
    bit_depth: int
    notes: tuple[str, ...] = ()  # what the file holds that an output written from this will not

    def to_8bit(self) -> Picture:
        """The same picture rounded to uint8 (16-bit values divided by 257)."""
        if self.bit_depth == 8:
            return self

        def down(a: NDArray[np.unsignedinteger]) -> NDArray[np.uint8]:
            return (a.astype(np.float64) / 257.0).round().astype(np.uint8)

        return Picture(down(self.pixels), None if self.alpha is None else down(self.alpha), 8, self.notes)


def _suffix(path: Path) -> str:
    """The format suffix of ``path``, looking through a trailing ``.part``."""
    name = str(path)
    if name.endswith(".part"):
        name = name[: -len(".part")]
    return Path(name).suffix.lower()


# The eight ways a picture can be stored relative to how it is shown (EXIF orientation 1-8).
_DIHEDRAL = tuple((k, flip) for k in range(4) for flip in (False, True))


def _turn(a: NDArray, k: int, flip: bool) -> NDArray:
    turned = np.rot90(a, k)
    return np.ascontiguousarray(turned[:, ::-1] if flip else turned)


def _may_carry_orientation(raw: bytes) -> bool:
    """Whether the file can hold an EXIF orientation OpenCV would apply: an Exif block (JPEG, WebP),
    a PNG eXIf chunk, or any TIFF (whose first IFD holds the tag)."""
    head = raw[:4]
    if head in (b"II*\x00", b"MM\x00*"):
        return True
    return b"Exif\x00\x00" in raw[:1 << 16] or (head == b"\x89PNG" and b"eXIf" in raw)


def _has_icc_profile(raw: bytes) -> bool:
    """An embedded colour profile: JPEG APP2 ICC_PROFILE, PNG iCCP, WebP ICCP."""
    return b"ICC_PROFILE\x00" in raw[:1 << 20] or b"iCCP" in raw[:1 << 20] or b"ICCP" in raw[:64]


def animated_frames(path: Path) -> int:
    """Frames an animated PNG (its ``acTL`` chunk) or WebP (its ``ANMF`` chunks) holds; 1 for a
    still image, whose first frame is all OpenCV decodes."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError:
        return 1
    if raw[:8] == b"\x89PNG\r\n\x1a\n":
        actl, idat = raw.find(b"acTL"), raw.find(b"IDAT")
        if actl != -1 and (idat == -1 or actl < idat) and len(raw) >= actl + 8:
            return max(1, int.from_bytes(raw[actl + 4:actl + 8], "big"))
    elif raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return max(1, raw.count(b"ANMF"))
    return 1


def read_image(path: Path) -> Picture:
    """Decode an image file with its alpha channel and bit depth (8 or 16) kept, turned upright by
    its EXIF orientation (so an output written without the tag is shown as the input is)."""
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    if data is None:
        raise ImageError(f"image not found: {path}")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ImageError(f"cannot decode image: {path}")
    if img.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"unsupported sample type {img.dtype} (8- or 16-bit integer images only): {path}")
    bits = 16 if img.dtype == np.uint16 else 8
    alpha: NDArray[np.unsignedinteger] | None = None
    if img.ndim == 3 and img.shape[2] in (2, 4):
        alpha = cast("NDArray[np.unsignedinteger]", np.ascontiguousarray(img[:, :, -1]))
        img = img[:, :, :-1]
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    raw = data.tobytes()
    if _may_carry_orientation(raw):
        # IMREAD_UNCHANGED ignores the orientation; the other modes apply it but drop alpha. Decode
        # once more and find the turn that maps one onto the other, for the colour and the alpha.
        shown = cv2.imdecode(data, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)
        turn = next((t for t in _DIHEDRAL if shown is not None and np.array_equal(_turn(img, *t), shown)), None)
        if turn is None and (shown is None or shown.shape[:2] != img.shape[:2]):
            raise ImageError(f"cannot apply the EXIF orientation of {path}")
        if turn is not None and turn != (0, False):
            img = _turn(img, *turn)
            alpha = None if alpha is None else _turn(alpha, *turn)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    notes: tuple[str, ...] = ()
    if _has_icc_profile(raw):
        notes = ("ICC colour profile not carried over: the output is untagged (viewers assume sRGB)",)
    return Picture(np.ascontiguousarray(img), alpha, bits, notes)


def read_rgb(path: Path) -> NDArray[np.uint8]:
    """Decode an image file.

    Returns uint8 [0, 255], (H, W, 3) in RGB order, or (H, W) for single-channel
    files. Alpha is dropped; 16-bit files are rounded to 8 bits (what training and
    ``vsr eval`` see). :func:`read_image` keeps both.
    """
    return read_image(path).to_8bit().pixels


def write_image(path: Path, picture: Picture) -> None:
    """Encode ``picture`` to ``path`` (format from its suffix, looking through ``.part``).

    The caller fits the picture to the format first (:data:`ALPHA_EXTENSIONS`,
    :data:`DEEP_EXTENSIONS`); a format that cannot hold it raises ImageError.
    """
    ext = _suffix(path)
    if picture.alpha is not None and ext not in ALPHA_EXTENSIONS:
        raise ImageError(f"{ext} holds no alpha channel")
    if picture.bit_depth > 8 and ext not in DEEP_EXTENSIONS:
        raise ImageError(f"{ext} holds 8 bits per channel, not {picture.bit_depth}")
    px = picture.pixels
    if picture.alpha is None:
        img = cv2.cvtColor(px, cv2.COLOR_RGB2BGR) if px.ndim == 3 else px
    else:
        bgr = cv2.cvtColor(px, cv2.COLOR_RGB2BGR) if px.ndim == 3 else cv2.cvtColor(px, cv2.COLOR_GRAY2BGR)
        img = np.dstack([bgr, picture.alpha])
    ok, buf = cv2.imencode(ext, img)
    if not ok:
        raise ImageError(f"cannot encode image as {ext}")
    with open(path, "wb") as fh:
        fh.write(buf.tobytes())
        fh.flush()
        os.fsync(fh.fileno())


def write_rgb(path: Path, rgb: NDArray[np.uint8]) -> None:
    """Encode uint8 (H, W, 3) RGB or (H, W) grey to ``path`` (format from its suffix)."""
    write_image(path, Picture(rgb, None, 8))


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
