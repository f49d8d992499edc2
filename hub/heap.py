"""Handing the C heap's free pages back to the operating system once start-up is over.

Importing modules allocates and frees a lot (compiling, unmarshalling code, parsing files); glibc keeps the
freed pages in its heap, counted in the hub's resident memory, until something asks for them back. The hub
asks once, after its components have started: about 1 MiB on a small gateway. Elsewhere (musl, macOS) this
does nothing.
"""

from __future__ import annotations

import sys


def release_free_heap() -> bool:
    """``malloc_trim(0)`` where the C library is glibc; True if it ran."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        trim = libc.malloc_trim
    except (OSError, AttributeError, ImportError):  # not glibc
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True
