"""``vsr extract-frames``: a clip's frames as lossless PNGs, for training."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from vsr.color import to_uint, ycbcr_to_rgb
from vsr.frames import resize_plane
from vsr.io.atomic import atomic_output
from vsr.io.decode import iter_frames
from vsr.io.images import Y_SUFFIX, write_rgb
from vsr.io.probe import open_input

__all__ = ["extract_frames"]


def extract_frames(
    clip: Path, folder: Path, *, every: int = 1, y_only: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
) -> int:
    """Write every ``every``-th frame as ``NNNNNN.png`` (RGB, BT.601 studio
    swing, chroma upsampled bicubic) or ``NNNNNN.y.png`` (the luma plane
    itself, 8-bit). Returns the number of files written."""
    open_input(clip).close()  # one clear error for a bad input
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for frame in iter_frames(clip):
        if frame.index % every:
            continue
        y = frame.y if frame.info.bit_depth == 8 else to_uint(frame.y / 4.0)
        if y_only or frame.pix_fmt.startswith("gray"):
            name, img = f"{frame.index:06d}{Y_SUFFIX}", y
        else:
            planes = [y] + [
                resize_plane(p if p.dtype == np.uint8 else to_uint(p / 4.0), frame.width, frame.height)
                for p in frame.planes[1:]
            ]
            name, img = f"{frame.index:06d}.png", to_uint(ycbcr_to_rgb(np.stack(planes, axis=-1)))
        with atomic_output(folder / name) as part:  # NAME.part: never listed as an image
            write_rgb(part, img)
        written += 1
        if progress is not None:
            progress(frame.index + 1, None)
    return written
