"""The C library through ctypes, loaded once per process.

The fork server loads it before its first fork (``dlopen`` and the ``CDLL`` object cost
~0.15 ms each time), so candidate processes inherit it instead of loading it again in each
isolation layer.
"""

from __future__ import annotations

import ctypes
import functools


@functools.cache
def libc() -> ctypes.CDLL:
    """The process's C library, with ``errno`` saved after each call (``ctypes.get_errno``)."""
    lib = ctypes.CDLL(None, use_errno=True)
    for name in ("prctl", "syscall", "unshare"):  # the function pointers the layers call
        getattr(lib, name)
    return lib
