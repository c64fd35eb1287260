"""Atomic outputs: write ``PATH.part``, rename it to ``PATH`` only when complete. No torch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_output", "part_path", "write_text_atomic"]


def part_path(path: Path) -> Path:
    """``PATH.part``: where ``PATH`` is written until it is complete."""
    return Path(path).with_name(Path(path).name + ".part")


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield ``PATH.part`` to write; on success it replaces ``PATH``, on any exception it is removed."""
    part = part_path(path)
    try:
        yield part
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_output(path) as part:
        part.write_text(text)
