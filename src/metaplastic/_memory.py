"""Keep freed heap memory for reuse (glibc, CPU runs of the lab), where that is safe.

Stacked networks make large tensors: a gradient of FC6 for B = 6 networks at
width 512 is 113 MB, allocated afresh at every step. glibc serves blocks over
32 MB with ``mmap`` and returns them on ``free``, so every step pays for
page faults on fresh pages; the same work split into B = 1 networks (19 MB
blocks) is served from the reused heap and does not. Turning ``mmap`` off for
malloc and raising the trim threshold keeps freed memory in the heap, which
made a stacked training step about 30% faster on the project's CPU
(benchmarks/bench_engine.py). It only changes where memory comes from, never
a computed number.

It is safe only for allocations that repeat with the same sizes, as the flexibility
profiles' training does. Runs with baseline learners allocate tensors of many sizes
that live across items (replay's mixed mini-batches, EWC's Fisher, SI's path integral);
with every block on the heap, the heap fragmented and grew without bound: a poisoning
run with every baseline reached 18.7 GB of resident memory after 30 minutes, growing
by 2.5 GB a minute, where the default allocator held it at 2.2 GB (docs/benchmarks.md).
So the lab turns it on per run, for runs of profiles only (:func:`keep_freed_memory`
with ``False`` turns it back off; memory already taken stays with the process).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
#: glibc's defaults, restored when the tuning is turned off.
DEFAULT_MMAP_MAX = 65536
DEFAULT_TRIM_THRESHOLD = 128 * 1024
_state: bool | None = None   # None: never set by this module


def keep_freed_memory(enabled: bool = True) -> bool:
    """Ask glibc to reuse freed memory instead of unmapping it (``enabled``), or to go back to
    its defaults; True if the requested setting is in force, False where it cannot be set."""
    global _state
    if _state == enabled:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mmap_max, trim = (0, 2**30) if enabled else (DEFAULT_MMAP_MAX, DEFAULT_TRIM_THRESHOLD)
        applied = bool(libc.mallopt(M_MMAP_MAX, mmap_max)) and bool(libc.mallopt(M_TRIM_THRESHOLD, trim))
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False
    if applied:
        _state = enabled
    return applied
