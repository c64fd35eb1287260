"""Process-wide tuning for large CPU tensors (no torch import).

glibc serves every allocation above its mmap threshold (at most 32 MiB) with a
fresh ``mmap`` and hands it back with ``munmap`` on free. One 640x360 feature
map of 48 float32 channels is 44 MB, so at inference every convolution output
is a new mapping whose pages the kernel must fault in and zero, and the time
goes there rather than into arithmetic. :func:`retain_freed_memory` makes glibc
keep freed blocks in its heap for the next frame instead, for more resident
memory (``python benchmarks/allocator.py`` measures both; figures in
benchmarks/README.md).
"""

from __future__ import annotations

import ctypes
import logging
import sys

__all__ = ["retain_freed_memory"]

log = logging.getLogger(__name__)

# mallopt() parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def retain_freed_memory(trim_threshold: int = 1 << 30) -> bool:
    """Serve large allocations from the heap and keep up to ``trim_threshold``
    bytes of freed memory there, so repeated frames reuse warm pages.

    Process-wide and not undone: call it once, from an entry point (the CLI,
    a benchmark), not from library code. Returns False (and changes nothing)
    where the C library is not glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        _ = libc.gnu_get_libc_version  # only glibc has it; musl's mallopt is a no-op
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1
    log.debug("glibc mallopt: large blocks from the heap, trim threshold %d: %s", trim_threshold, ok)
    return ok
