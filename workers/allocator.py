"""Keep freed activation memory in the process instead of handing it back to the kernel.

Each data pass allocates and frees hundreds of MB of activations. With glibc's default
thresholds, large blocks are returned to the kernel on free and the next pass faults them
back in page by page: on the 2-vCPU machine that was 10-15% of a worker's time as system
time, more for GraSP's larger double-backward graph. Raising the mmap and trim thresholds
makes the heap keep those pages for the next architecture. Blocks above the mmap threshold
(glibc caps it at 32 MiB) would still be mapped and unmapped per use, and the batched path's
stacked activations are that large (NB201 at B=8: 32 MiB a tensor; NB301's at B=4), so mmap is
turned off altogether: on NB301 at B=4 that took the batched pass from 0.44x to 0.82x of the single
engine's speed, and its system time from 106 s to 59 s (bench/README.md). Only glibc has `mallopt`;
elsewhere this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# mallopt parameters from glibc's malloc.h.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -2, -3, -4
# glibc caps the mmap threshold at 32 MiB on 64-bit; M_MMAP_MAX 0 keeps blocks above it in the heap too.
_MMAP_THRESHOLD = 32 * 2**20
_TRIM_THRESHOLD = 2**31 - 1
_TOP_PAD = 256 * 2**20


def keep_freed_memory() -> bool:
    """Tune glibc malloc for repeated large allocations; True when it took effect."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = all(
        mallopt(param, value) == 1
        for param, value in (
            (_M_MMAP_THRESHOLD, _MMAP_THRESHOLD),
            (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD),
            (_M_TOP_PAD, _TOP_PAD),
            (_M_MMAP_MAX, 0),
        )
    )
    if not ok:
        log.debug("mallopt refused a setting; keeping the allocator's defaults")
    return ok
