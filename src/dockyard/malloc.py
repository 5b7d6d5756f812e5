"""Keep the large buffers blobs pass through in the heap, not in fresh mappings.

A blob's bytes cross a worker in buffers of a few MiB: a chunk read from S3, the HTTP server's
copy of it, a request body. glibc serves every allocation above its mmap threshold (128 KiB at
first; it adapts, but only after such buffers have been freed, and caps at 32 MiB) with a
mapping of its own, whose pages fault in on first touch and go back to the kernel on free; and
it hands the heap's free top back above its trim threshold. A worker streaming blobs then pays
page faults for every buffer: a fresh worker pulling 64 MiB blobs to eight clients spent a
quarter more time than once warm. Fixed thresholds above those sizes let freed buffers be
reused from the first request.

glibc only (other C libraries' ``mallopt`` differ or do nothing), and never over an operator's
own ``MALLOC_*`` or ``GLIBC_TUNABLES`` malloc settings.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Mapping

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "tune_malloc"]

MMAP_THRESHOLD = 32 << 20
"""Allocations at most this large come from the heap (glibc's largest allowed value)."""
TRIM_THRESHOLD = 64 << 20
"""Free memory at the heap's top kept for reuse, at most this much, per arena."""

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_OPERATOR_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def tune_malloc(environ: Mapping[str, str] = os.environ) -> bool:
    """Set glibc's mmap and trim thresholds for this process (and the children it forks);
    whether they were set."""
    if not sys.platform.startswith("linux"):
        return False
    if any(name in environ for name in _OPERATOR_SETTINGS):
        return False
    if "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.gnu_get_libc_version  # noqa: B018 (glibc's own symbol: absent from musl)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
