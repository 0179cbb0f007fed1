"""The candidate process's seccomp filter: a default-deny allowlist of system calls.

The policy is written and compiled with ``pyseccomp`` (bindings to the system's libseccomp,
which knows every architecture's syscall numbers and the x32 / foreign-architecture traps) in
the fork server, once; each candidate child then installs the compiled BPF program with one
``prctl`` (compiling per child cost ~10 ms, installing ~0.05 ms). Loaded last, after Landlock,
so it cannot be used to weaken the earlier layers.

Allowed: memory management, reading and writing already-open descriptors (the pipe to the
broker), signal handling inside the process, timers and clocks (the CPU watchdog), exiting,
and thread creation (``clone`` with ``CLONE_THREAD``; ``RLIMIT_NPROC`` 0 refuses threads
anyway). Everything else fails with ``EPERM``, notably: ``open*``, ``stat``-like calls,
``execve*``, ``fork``/``vfork``/non-thread ``clone`` (``clone3`` gets ``ENOSYS`` so libc falls
back to ``clone``), sockets, ``kill``/``tgkill`` (no signals to anyone), ``ptrace``,
``process_vm_readv/writev``, ``io_uring_*``, ``bpf``, ``perf_event_open``, ``userfaultfd``,
``unshare``/``setns``/``mount``, ``prctl``, ``getrandom`` (so candidate randomness is only
what the runtime seeds), SysV IPC, ``memfd_create``, ``pidfd_*``.
"""

from __future__ import annotations

import ctypes
import errno
import os

from .libc import libc

ALLOWED: tuple[str, ...] = (
    # descriptors that are already open (the broker's pipe)
    "read", "write", "readv", "writev", "close", "lseek",
    "poll", "ppoll", "select", "pselect6",
    # memory
    "mmap", "munmap", "mremap", "mprotect", "brk", "madvise",
    # signals delivered to this process only, timers and clocks
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
    "setitimer", "getitimer", "alarm",
    "clock_gettime", "clock_getres", "gettimeofday", "time", "clock_nanosleep", "nanosleep",
    "getrusage", "times",
    # identity and scheduling queries, no changes
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getgroups",
    "getresuid", "getresgid", "sched_yield", "sched_getaffinity", "uname", "getcwd",
    # threads (RLIMIT_NPROC 0 refuses them; kept so a library's thread attempt fails cleanly)
    "futex", "set_robust_list", "get_robust_list", "rseq", "set_tid_address",
    "exit", "exit_group",
)
"""System calls the candidate may make (all others fail with EPERM)."""

CLONE_THREAD = 0x00010000
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


def compile_policy() -> bytes:
    """Build the allowlist with pyseccomp and return the compiled BPF program.

    Raises:
        ImportError: ``pyseccomp`` (or the system's libseccomp) is missing.
    """
    import pyseccomp as sc

    filt = sc.SyscallFilter(sc.ERRNO(errno.EPERM))
    for name in ALLOWED:
        try:
            filt.add_rule(sc.ALLOW, name)
        except (ValueError, RuntimeError, OSError):
            continue  # not a syscall on this architecture (e.g. "time" on aarch64)
    filt.add_rule(sc.ALLOW, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, CLONE_THREAD))
    filt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    r, w = os.pipe()
    try:
        with open(w, "wb", closefd=True) as fh:
            filt.export_bpf(fh)
        chunks = []
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
    program = b"".join(chunks)
    if not program or len(program) % 8:
        raise RuntimeError(f"libseccomp exported a malformed BPF program ({len(program)} bytes)")
    return program


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(program: bytes) -> None:
    """Install a compiled BPF program as this process's seccomp filter (irreversible).

    Requires ``no_new_privs`` when the process lacks CAP_SYS_ADMIN.

    Raises:
        OSError: The kernel refused the filter.
    """
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc().prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp filter: {os.strerror(err)}")
