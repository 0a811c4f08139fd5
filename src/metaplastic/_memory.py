"""Keep freed heap memory for reuse (glibc, CPU runs of the lab), trimmed when much of it is free.

Stacked networks make large tensors: a gradient of FC6 for B = 6 networks at
width 512 is 113 MB, allocated afresh at every step. glibc serves blocks over
32 MB with ``mmap`` and returns them on ``free``, so every step pays for
page faults on fresh pages; the same work split into B = 1 networks (19 MB
blocks) is served from the reused heap and does not. Turning ``mmap`` off for
malloc and raising the trim threshold keeps freed memory in the heap, which
made a stacked training step about 30% faster on the project's CPU
(benchmarks/bench_engine.py). It only changes where memory comes from, never
a computed number.

Kept without limit, such a heap fragments: tensors of many sizes that live across items
(records; replay's mixed mini-batches, EWC's Fisher, SI's path integral) land between the large
freed blocks, and new large blocks no longer fit the holes. A poisoning run with every baseline
reached 18.7 GB of resident memory after 30 minutes, growing by 2.5 GB a minute, and a
profiles-only quick reproduction grew by 2-3.5 GB a minute in its repetition experiment. So the
engine calls :func:`release_freed_memory` after every presentation: once more than
:data:`RELEASE_ABOVE` bytes of the heap are free, glibc's ``malloc_trim`` hands the free pages
back to the system (the heap's addresses stay reserved) and the next steps fault them in again.
With that bound the lab keeps the heap for every CPU run, baselines included
(docs/benchmarks.md: the repetition experiment held 2.0-2.5 GB, a poisoning run with every
baseline at most 3.7 GB; serial-position with three baselines trained 2.9 times as fast as with
glibc's defaults). :func:`keep_freed_memory` with ``False`` goes back to glibc's defaults;
memory already taken stays with the process.
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
_libc = None
#: Free heap above which :func:`release_freed_memory` trims: more than a run's steps leave free
#: between presentations (0.5-1.4 GB in the quick reproduction), less than the memory a
#: fragmenting run gained in a minute.
RELEASE_ABOVE = 2 * 1024**3


def keep_freed_memory(enabled: bool = True) -> bool:
    """Ask glibc to reuse freed memory instead of unmapping it (``enabled``), or to go back to
    its defaults; True if the requested setting is in force, False where it cannot be set."""
    global _state
    if _state == enabled:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = _glibc()
        mmap_max, trim = (0, 2**30) if enabled else (DEFAULT_MMAP_MAX, DEFAULT_TRIM_THRESHOLD)
        applied = bool(libc.mallopt(M_MMAP_MAX, mmap_max)) and bool(libc.mallopt(M_TRIM_THRESHOLD, trim))
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False
    if applied:
        _state = enabled
    return applied


def release_freed_memory(above: int = RELEASE_ABOVE) -> bool:
    """While freed memory is kept (:func:`keep_freed_memory`) and more than ``above`` bytes of the
    heap are free, give the free pages back to the system
    (``malloc_trim``); True if that was done. A no-op otherwise (glibc's defaults trim by
    themselves). Where glibc cannot say how much is free (before 2.33), it always trims."""
    if not _state:
        return False
    try:
        libc = _glibc()
        free = _free_heap_bytes(libc)
        if free is not None and free <= above:
            return False
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]


def _free_heap_bytes(libc) -> int | None:
    """Bytes in free heap blocks, over every arena (glibc's ``mallinfo2().fordblks``)."""
    mallinfo2 = getattr(libc, "mallinfo2", None)
    return None if mallinfo2 is None else mallinfo2().fordblks


def _glibc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        if hasattr(_libc, "mallinfo2"):   # glibc 2.33 and later
            _libc.mallinfo2.restype = _MallInfo2
    return _libc
