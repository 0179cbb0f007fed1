"""Operating-system isolation of one candidate process, applied in an order nothing can undo.

Called in the freshly forked candidate child, before any candidate code exists in it:

1. ``no_new_privs`` (no setuid binary or file capability can ever raise privileges again);
2. descriptors: everything closed except the broker pipe (renumbered 3, 4, 5 by the caller);
3. environment emptied (the fork server was started with a minimal one already), and the
   working directory checked empty (the fork server runs in a fresh empty folder);
4. namespaces (optional): a new network and IPC namespace, while still single-threaded;
5. uid: when started as root, an unprivileged uid of its own (``UID_BASE + pid``, so candidates
   running at the same time never share one) with no supplementary groups;
6. parent death: SIGKILL when the fork server dies (set after the uid change, which clears it);
7. rlimits: ``NPROC`` 0 (no process and no thread: counted per uid, so meaningful only after
   step 5), ``AS`` (address space now + the memory allowance), ``CPU``, ``FSIZE`` 0, ``NOFILE``
   (the pipe only), ``CORE`` 0, ``MEMLOCK`` 0, ``MSGQUEUE`` 0;
8. Landlock (where the kernel has it): no filesystem access at all; TCP and outside signals and
   abstract sockets refused where the ABI has them;
9. seccomp last: the default-deny allowlist of :mod:`.syscall_filter`.

A required layer that fails raises :class:`IsolationError`; the caller reports it to the broker
and exits, so candidate code never runs in a weaker process. Optional layers are reported.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from typing import Any

from . import landlock, syscall_filter
from .libc import libc

UID_BASE = 1_000_000_000
"""Candidate uids are ``UID_BASE + pid`` (no passwd entry needed; distinct while running)."""

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000


class IsolationError(RuntimeError):
    """A required isolation layer could not be applied (the message names it)."""


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _vm_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise OSError("VmSize not found in /proc/self/status")


def _set(limit: int, value: int) -> None:
    resource.setrlimit(limit, (value, value))


class _Ctx:
    """What the layer functions share: the plan, libc, the kept descriptors, the parent."""

    def __init__(self, plan: dict[str, Any], program: bytes, parent_pid: int) -> None:
        self.plan = plan
        self.program = program
        self.parent_pid = parent_pid
        self.libc = libc()
        self.keep = sorted(int(fd) for fd in plan["keep_fds"])
        self.abi = landlock.abi_version()


def _no_new_privs(c: _Ctx) -> str:
    _check(c.libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    if c.libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1:
        raise OSError("no_new_privs did not stick")
    return "set"


def _descriptors(c: _Ctx) -> str:
    low = 0
    for fd in c.keep:
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)
    return f"only the broker pipe is open (fds {c.keep})"


def _environment(c: _Ctx) -> str:
    os.environ.clear()
    return "empty"


def _cwd(c: _Ctx) -> str:
    here = os.getcwd()
    if os.listdir("."):
        raise OSError(f"the working directory {here} is not empty")
    return f"empty ({here})"


def _namespaces(c: _Ctx) -> str:
    if not c.plan.get("netns", True):
        return "off (not requested)"
    flags = CLONE_NEWNET | CLONE_NEWIPC
    if os.geteuid() != 0:
        flags |= CLONE_NEWUSER
    _check(c.libc.unshare(flags), "unshare(NEWNET|NEWIPC)")
    where = " (in a user namespace)" if flags & CLONE_NEWUSER else ""
    return "new network and IPC namespace" + where


def _uid(c: _Ctx) -> str:
    if os.geteuid() != 0:
        return f"started unprivileged (uid {os.geteuid()})"
    target = UID_BASE + os.getpid()
    os.setgroups([])
    os.setresgid(target, target, target)
    os.setresuid(target, target, target)
    if os.getresuid() != (target,) * 3 or os.getresgid() != (target,) * 3:
        raise OSError("uid change did not stick")
    try:
        os.setuid(0)
    except PermissionError:
        return f"uid/gid {target}, no groups"
    raise OSError("setuid(0) still succeeds")


def _parent_death(c: _Ctx) -> str:
    _check(c.libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    if os.getppid() != c.parent_pid:
        os._exit(70)  # the fork server is already gone
    return "SIGKILL when the fork server exits"


def _rlimits(c: _Ctx) -> str:
    mem = int(c.plan["memory_mb"]) * 1024 * 1024
    cap = _vm_bytes() + mem
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime + float(c.plan["cpu_s"])) + 1
    nofile = max(c.keep) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))
    for limit, value in (
        (resource.RLIMIT_AS, cap),
        (resource.RLIMIT_NPROC, 0),
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_NOFILE, nofile),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_MEMLOCK, 0),
        (resource.RLIMIT_MSGQUEUE, 0),
    ):
        resource.setrlimit(limit, (value, value))
    return (
        f"NPROC 0, AS {cap >> 20} MiB, CPU {cpu} s, FSIZE 0, NOFILE {nofile}, CORE 0, "
        "MEMLOCK 0, MSGQUEUE 0"
    )


def _landlock(c: _Ctx) -> str:
    if c.abi < 1:
        return "off (the kernel has no Landlock)"
    got = landlock.restrict_self(c.abi)
    return f"ABI {c.abi}: no filesystem access" + (", no TCP bind/connect" if got["net"] else "")


def _landlock_scope(c: _Ctx) -> str:
    if c.abi < 6:
        return f"off (Landlock ABI {c.abi} < 6)"
    return "signals and abstract UNIX sockets scoped to the candidate"


def _seccomp(c: _Ctx) -> str:
    syscall_filter.install(c.program)
    return f"default-deny allowlist ({len(c.program) // 8} BPF instructions)"


LAYERS = (
    ("no_new_privs", _no_new_privs),
    ("descriptors", _descriptors),
    ("environment", _environment),
    ("cwd", _cwd),
    ("namespaces", _namespaces),
    ("uid", _uid),
    ("parent_death", _parent_death),
    ("rlimits", _rlimits),
    ("landlock", _landlock),
    ("landlock_scope", _landlock_scope),
    ("seccomp", _seccomp),
)
"""The layers in the order they are applied."""

OPTIONAL = frozenset({"namespaces", "landlock_scope"})
"""Layers that are reported but not required (``landlock`` is required where the kernel has
Landlock)."""


def apply(plan: dict[str, Any], program: bytes, parent_pid: int) -> dict[str, dict[str, Any]]:
    """Apply every layer to the calling process (see the module docstring for the order).

    Args:
        plan: ``memory_mb``, ``cpu_s``, ``netns`` (bool), ``keep_fds`` (list of int), and
            ``unsafe`` (bool: no layer is required; what fails is only reported).
        program: The compiled seccomp filter (:func:`.syscall_filter.compile_policy`).
        parent_pid: The fork server's pid (the child exits if it is already gone).

    Returns:
        ``layer -> {"on": bool, "required": bool, "detail": str}``.

    Raises:
        IsolationError: A required layer failed (``report`` is attached as ``.report``).
    """
    c = _Ctx(plan, program, parent_pid)
    report: dict[str, dict[str, Any]] = {}
    unsafe = bool(plan.get("unsafe"))
    for name, fn in LAYERS:
        required = name not in OPTIONAL and (name != "landlock" or c.abi >= 1) and not unsafe
        try:
            detail = fn(c)
        except (OSError, ValueError) as exc:
            detail = f"off ({exc})"
        on = not detail.startswith("off")
        report[name] = {"on": on, "required": required, "detail": detail}
        if required and not on:
            err = IsolationError(f"isolation layer {name!r} failed: {detail}")
            err.report = report  # type: ignore[attr-defined]
            raise err
    return report
