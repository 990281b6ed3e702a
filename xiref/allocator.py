"""Keep freed memory in the process: no page faults for the update's large temporaries (speed only).

One update allocates and frees dozens of (B, 256) arrays per network. glibc's malloc serves blocks above
its mmap threshold with fresh mmap'd pages and returns freed heap tops to the system above its trim
threshold, so every such temporary is faulted in page by page again, update after update. Measured on the
SAC update at Hopper dims, float32, one BLAS thread (README "Performance"): ≈ 1 500 minor page faults per
update with glibc's defaults, ≈ 2 with the thresholds below, and −24 % CPU time per update (xinet: ≈ 4 700
faults, −14 %). Nothing numerical changes: the same arithmetic runs on other addresses.

`keep_freed_memory()` is called by the `xiref train` command and the benchmarks, not on import: a library
should not change its host process's allocator behind its back. It does nothing off glibc.
"""
import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3        # mallopt parameter numbers, glibc <malloc.h>
MMAP_THRESHOLD = 32 * 2**20                         # glibc's upper limit on 64-bit; larger blocks still mmap
TRIM_THRESHOLD = 256 * 2**20                        # keep up to this much free memory at the heap top


def keep_freed_memory():
    """Raise glibc's mmap and trim thresholds; True if applied (glibc), False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):                # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
