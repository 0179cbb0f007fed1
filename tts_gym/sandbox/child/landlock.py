"""Landlock (Linux >= 5.13) through ``ctypes``: no filesystem, no TCP, no signals out.

Why not the ``landlock`` package from PyPI: it is an alpha that knows ABI <= 5, and the layers
this sandbox wants from ABI 4 (TCP bind/connect) and ABI 6 (signal and abstract-UNIX-socket
scoping) need the raw ruleset attribute anyway. The kernel interface is three system calls
and one struct, so this module is short and tested directly (tests/test_sandbox_layers.py).

A ruleset that *handles* every access right and grants none denies them all: after
:func:`restrict_self`, the process cannot open, create, execute or list anything on any
filesystem, cannot bind or connect TCP sockets (ABI >= 4) and, with scoping (ABI >= 6), cannot
signal processes outside its Landlock domain or connect to abstract UNIX sockets outside it.
Landlock does not cover ``stat``-like calls or already-open descriptors; the seccomp filter and
the descriptor clean-up cover those.
"""

from __future__ import annotations

import ctypes
import os

from .libc import libc

SYS_CREATE_RULESET = 444
SYS_RESTRICT_SELF = 446
CREATE_RULESET_VERSION = 1

# filesystem rights by ABI (each ABI adds the rights listed)
_FS_RIGHTS = {
    1: (1 << 13) - 1,  # EXECUTE .. MAKE_SYM
    2: 1 << 13,  # REFER
    3: 1 << 14,  # TRUNCATE
    5: 1 << 15,  # IOCTL_DEV
}
NET_BIND_TCP = 1 << 0
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


def abi_version() -> int:
    """The kernel's Landlock ABI (0: not available, e.g. disabled at boot or not Linux)."""
    try:
        v = libc().syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), CREATE_RULESET_VERSION)
    except (OSError, AttributeError):
        return 0
    return max(0, int(v))


def fs_rights(abi: int) -> int:
    """Every filesystem access right the given ABI knows."""
    return sum(bits for level, bits in _FS_RIGHTS.items() if abi >= level)


def restrict_self(abi: int) -> dict[str, bool]:
    """Deny all filesystem access (and TCP, and outside signals where the ABI has them).

    Requires ``no_new_privs`` (set first by :mod:`.isolation`). Irreversible for this process
    and its future children.

    Args:
        abi: :func:`abi_version` (>= 1).

    Returns:
        Which parts were enforced: ``{"fs": True, "net": ABI >= 4, "scope": ABI >= 6}``.

    Raises:
        OSError: A system call failed (errno from the kernel).
    """
    lc = libc()
    attr = _RulesetAttr(
        handled_access_fs=fs_rights(abi),
        handled_access_net=(NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
        scoped=(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0,
    )
    size = ctypes.c_size_t(ctypes.sizeof(attr))
    fd = lc.syscall(SYS_CREATE_RULESET, ctypes.byref(attr), size, 0)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock_create_ruleset: {os.strerror(err)}")
    try:
        if lc.syscall(SYS_RESTRICT_SELF, fd, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"landlock_restrict_self: {os.strerror(err)}")
    finally:
        os.close(fd)
    return {"fs": True, "net": abi >= 4, "scope": abi >= 6}
