"""The C allocator's settings for a process that runs large CPU tensors over and over (glibc only).

A network pass allocates and frees its activations and gradients, many of them several MiB.
glibc serves blocks above its mmap threshold with a fresh ``mmap`` and returns the top of the heap
to the system once more than its trim threshold is free, so every pass touched new pages and
the kernel zero-filled them again: 0.7-1.1 million minor page faults in a 24-frame 640x360
render, 8-10 % of its wall time (bench/RESULTS.md, "... page faults"). Raising both thresholds
keeps freed blocks in the heap, where the next pass reuses them.

What it costs: memory freed after a pass stays with the process for the next one (at most
:data:`TRIM_THRESHOLD` of it at the top of the heap) instead of going back to the system: the
24-frame 640x360 render's peak RSS went 0.88 -> 0.98 GiB. Blocks above :data:`MMAP_THRESHOLD`
(glibc's ceiling for that setting) are still mapped per allocation, as before.
"""

from __future__ import annotations

import ctypes
import functools
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2 ** 20  # the largest value glibc accepts on 64-bit systems
TRIM_THRESHOLD = 2 ** 30


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds (once per process); False where this is not glibc.

    Setting either threshold also switches off glibc's own adjustment of the mmap threshold, so
    both are set together.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # only glibc has it (musl's mallopt does nothing)
    except (OSError, AttributeError):
        return False
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
