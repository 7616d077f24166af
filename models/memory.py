"""Process memory: large buffers served by mmap, so a long-running reader gives them back.

A scanner reads receipt after receipt for months. Each read allocates a few large, short-lived
buffers (the photo, its grey copy, the rectified page, detector strips, line crops), and
glibc's heap serves the ones below its adaptive mmap threshold from the heap, whose holes it
rarely returns to the system: peak RSS then creeps up with the largest receipts seen. Serving
every allocation above 128 KiB by mmap returns it when freed: reading 20 SROIE receipts in a
row peaked at 264 MB before and 227 MB after, with the same timings.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

#: glibc's mallopt parameter number for the mmap threshold (malloc.h).
M_MMAP_THRESHOLD = -3
LARGE_BUFFER = 128 * 1024


def return_large_buffers(threshold: int = LARGE_BUFFER) -> bool:
    """Make allocations above `threshold` bytes come from mmap (glibc only; calling it again is
    harmless). Returns whether the setting is in force; on another C library it does nothing.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        logger.debug("no glibc mallopt here: large buffers stay on the heap")
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
