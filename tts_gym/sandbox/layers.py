"""Which isolation layers this machine gives a candidate process (``tts-gym sandbox-check``).

:func:`check` starts the fork server, spawns one candidate process exactly as a real unit
does, and returns the layer report it sends before any candidate code exists, verified from
``/proc`` by :func:`tts_gym.sandbox.broker.verify_isolation`. :func:`require` is the pre-flight
of ``tts-gym discover`` and sandboxed ``tts-gym eval``: it refuses, in one sentence naming the
missing layer, unless the user passed ``--unsafe-no-isolation``.
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
    _CACHE[key] = out
    return out


def describe(report: dict[str, Any]) -> str:
    """The report as lines for a terminal."""
    lines = [f"sandbox on {report['platform']}: "
             + ("all required layers on" if report["ok"] else f"NOT usable: {report['error']}")]
    for name, layer in report["layers"].items():
        mark = "on " if layer.get("on") else "off"
        need = "required" if layer.get("required") else "optional"
        lines.append(f"  [{mark}] {name:<15} {need:<8} {layer.get('detail', '')}")
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
