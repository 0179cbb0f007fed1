"""Which isolation layers this machine gives a candidate process (``tts-gym sandbox-check``).

:func:`check` starts the fork server, spawns one candidate process exactly as a real unit
does, and returns the layer report it sends before any candidate code exists, verified from
``/proc`` by :func:`tts_gym.sandbox.broker.verify_isolation`. :func:`require` is the pre-flight
of ``tts-gym discover`` and sandboxed ``tts-gym eval``: it refuses, in one sentence naming the
missing layer, unless the user passed ``--unsafe-no-isolation``.

A kernel without Landlock (older than 5.13, or Landlock not enabled at boot) is not refused:
every access Landlock would deny needs a system call that the seccomp allowlist refuses too
(:data:`LANDLOCK_DOORS`, checked against :data:`~tts_gym.sandbox.child.syscall_filter.ALLOWED`
by :func:`landlock_gaps`), so seccomp alone still closes those doors and Landlock only adds a
second, independent lock on them. ``sandbox-check`` prints that coverage on such a kernel
(:func:`describe`); were the allowlist ever to admit one of those calls, such a kernel would be
refused (:func:`verdict`). Refusing it outright would push its users to
``--unsafe-no-isolation``, which drops every layer.
"""

from __future__ import annotations

import platform
import sys
from typing import Any

from tts_gym.sandbox.broker import UnitSpec, run_unit
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.sandbox.zygote_client import SandboxUnavailable, ZygoteClient
from tts_gym.testing import tiny_store

PROBE_SOURCE = '''\
class Controller:
    def __init__(self):
        pass

    def solve(self, question):
        return None
'''

_CACHE: dict[tuple, dict[str, Any]] = {}

LANDLOCK_DOORS: dict[str, tuple[str, ...]] = {
    "files (open, create, list, execute, inspect)": (
        "open", "openat", "openat2", "creat", "mkdir", "mkdirat", "mknod", "mknodat", "unlink",
        "unlinkat", "rmdir", "rename", "renameat", "renameat2", "link", "linkat", "symlink",
        "symlinkat", "truncate", "getdents", "getdents64", "execve", "execveat", "chdir",
        "stat", "lstat", "newfstatat", "statx", "access", "faccessat", "faccessat2",
        "readlink", "readlinkat"),
    "TCP bind/connect and abstract UNIX sockets": (
        "socket", "socketpair", "bind", "connect", "listen", "accept", "accept4"),
    "signals to other processes": (
        "kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open",
        "pidfd_send_signal"),
}
"""What Landlock denies a candidate, and the system calls each kind of access needs."""


def landlock_gaps() -> dict[str, list[str]]:
    """Per kind of access of :data:`LANDLOCK_DOORS`, the system calls the seccomp allowlist
    admits (so only Landlock would stop them). Empty lists: seccomp alone refuses them all."""
    from tts_gym.sandbox.child.syscall_filter import ALLOWED

    return {door: [c for c in calls if c in ALLOWED] for door, calls in LANDLOCK_DOORS.items()}


def _landlock_off(report: dict[str, Any]) -> bool:
    layer = report.get("layers", {}).get("landlock")
    return layer is not None and not layer.get("on")


def without_landlock() -> list[str]:
    """Lines saying what seccomp alone covers when the kernel has no Landlock."""
    lines = ["  landlock is off: the seccomp allowlist alone refuses what it would deny:"]
    for door, allowed in landlock_gaps().items():
        calls = LANDLOCK_DOORS[door]
        if allowed:
            lines.append(f"    {door}: NOT covered, seccomp allows {', '.join(allowed)}")
        else:
            shown = ", ".join(calls[:8]) + (", ..." if len(calls) > 8 else "")
            lines.append(f"    {door}: refused ({len(calls)} calls: {shown})")
    lines += ["  what is lost is a second, independent lock: were the seccomp filter bypassed,",
              "  the candidate's own uid would still be refused other users' files and",
              "  processes, but world-readable files would be open to it"]
    return lines


def check(limits: SandboxLimits | None = None) -> dict[str, Any]:
    """Spawn one isolated candidate process and report its layers.

    Returns:
        ``{"ok": bool, "platform": str, "layers": {name: {"on", "required", "detail"}},
        "error": str | None}``.
    """
    limits = limits or SandboxLimits()
    key = (limits.netns, limits.unsafe, limits.memory_mb)
    if key in _CACHE:
        return _CACHE[key]
    out: dict[str, Any] = {"ok": False, "platform": f"{platform.system()} {platform.release()}",
                           "layers": {}, "error": None}
    if not sys.platform.startswith("linux"):
        out["error"] = (f"the sandbox needs Linux (seccomp, Landlock, rlimits); this is "
                        f"{platform.system()}")
        return out
    store = tiny_store()
    client = ZygoteClient(limits.startup_s)
    try:
        result = run_unit(UnitSpec(PROBE_SOURCE, "sandbox-check.py", {}, (store.name,), 0),
                          {store.name: store}, limits, client)
    except SandboxUnavailable as exc:
        out["error"] = str(exc)
        return out
    finally:
        client.close()
    out["layers"] = result.layers
    if result.status != "ok":
        out["error"] = (result.error or {}).get("summary", "the probe failed")
    else:
        out["ok"] = True
    verdict(out)
    _CACHE[key] = out
    return out


def verdict(report: dict[str, Any]) -> dict[str, Any]:
    """On a report whose Landlock is off, add ``without_landlock`` (per kind of access Landlock
    would deny: the calls seccomp refuses, and any it admits), and refuse (``ok`` False,
    ``error`` set) when the seccomp allowlist admits a call only Landlock would stop; returns
    ``report``."""
    if _landlock_off(report):
        report["without_landlock"] = {
            door: {"refused_by_seccomp": [c for c in calls if c not in gaps], "allowed": gaps}
            for (door, calls), gaps in zip(LANDLOCK_DOORS.items(), landlock_gaps().values(),
                                           strict=True)}
    if report.get("ok") and _landlock_off(report):
        open_doors = {d: calls for d, calls in landlock_gaps().items() if calls}
        if open_doors:
            door, calls = next(iter(open_doors.items()))
            report["ok"] = False
            report["error"] = (f"this kernel has no Landlock and the seccomp allowlist admits "
                               f"{', '.join(calls)} ({door}), which only Landlock would stop")
    return report


def describe(report: dict[str, Any]) -> str:
    """The report as lines for a terminal."""
    lines = [f"sandbox on {report['platform']}: "
             + ("all required layers on" if report["ok"] else f"NOT usable: {report['error']}")]
    for name, layer in report["layers"].items():
        mark = "on " if layer.get("on") else "off"
        need = "required" if layer.get("required") else "optional"
        lines.append(f"  [{mark}] {name:<15} {need:<8} {layer.get('detail', '')}")
    if _landlock_off(report):
        lines += without_landlock()
    return "\n".join(lines)


def require(limits: SandboxLimits) -> dict[str, Any]:
    """The pre-flight: the layer report, or an error naming what is missing.

    Raises:
        SandboxUnavailable: A required layer is missing and ``limits.unsafe`` is off.
    """
    report = check(limits)
    if not report["ok"] and not limits.unsafe:
        raise SandboxUnavailable(
            f"cannot isolate candidate code here: {report['error']}; run `tts-gym "
            "sandbox-check` for the layer report, or pass --unsafe-no-isolation to run "
            "candidates without operating-system isolation (only for code you trust)")
    return report
