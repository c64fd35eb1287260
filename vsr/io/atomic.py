"""Atomic outputs: write ``PATH.part``, rename it to ``PATH`` only when complete. No torch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["PendingOutput", "atomic_output", "part_path", "write_text_atomic"]


def part_path(path: Path) -> Path:
    """``PATH.part``: where ``PATH`` is written until it is complete."""
    return Path(path).with_name(Path(path).name + ".part")


class PendingOutput:
    """``PATH`` while it is being written, for writers that stay open across calls (encoders, logs).

    Write to :attr:`part`; :meth:`commit` moves it to ``PATH`` once complete, :meth:`discard`
    removes it. :func:`atomic_output` is the same for a write that fits in one ``with`` block.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.part = part_path(self.path)

    def commit(self) -> None:
        os.replace(self.part, self.path)

    def discard(self) -> None:
        self.part.unlink(missing_ok=True)


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield ``PATH.part`` to write; on success it replaces ``PATH``, on any exception it is removed."""
    pending = PendingOutput(path)
    try:
        yield pending.part
        pending.commit()
    finally:
        pending.discard()


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_output(path) as part:
        part.write_text(text)
