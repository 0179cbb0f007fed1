"""A kernel without Landlock, simulated by making the Landlock ABI probe answer 0: the candidate
process still gets every required layer, seccomp alone refuses every access Landlock would have
denied (files, sockets, signals), and ``tts-gym sandbox-check`` says exactly that
(docs/safety.md, "Kernels without Landlock")."""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile

import pytest

from tests.test_sandbox import in_child
from tts_gym.cli import main as cli_main
from tts_gym.sandbox import layers
from tts_gym.sandbox.child import isolation, landlock, syscall_filter

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

ATTEMPTS = {
    "files (open, create, list, execute, inspect)": {
        "open": lambda: open("/etc/hostname").read(),
        "create": lambda: open(os.path.join(tempfile.gettempdir(), "no-landlock-canary"), "w"),
        "list": lambda: os.listdir("/"),
        "execute": lambda: os.execv("/bin/true", ["true"]),
        "stat": lambda: os.stat("/"),
    },
    "TCP bind/connect and abstract UNIX sockets": {
        "tcp": lambda: socket.socket(socket.AF_INET).connect(("127.0.0.1", 9)),
        "abstract": lambda: socket.socket(socket.AF_UNIX).connect("\0tts-gym-canary"),
    },
    "signals to other processes": {
        "kill": lambda: os.kill(os.getppid(), 0),
    },
}
"""Per kind of access Landlock guards, attempts a candidate could make."""


@pytest.fixture
def no_landlock(monkeypatch):
    """This process (and the children it forks) sees a kernel without Landlock."""
    monkeypatch.setattr(landlock, "abi_version", lambda: 0)


def _isolated_attempts(w: int) -> dict:
    os.chdir(tempfile.mkdtemp())  # the fork server's working directory is empty too
    report = isolation.apply({"memory_mb": 256, "cpu_s": 30, "keep_fds": [w]},
                             syscall_filter.compile_policy(), os.getppid())
    got = {}
    for door, attempts in ATTEMPTS.items():
        for name, attempt in attempts.items():
            try:
                attempt()
                got[f"{door}/{name}"] = "allowed"
            except OSError as exc:
                got[f"{door}/{name}"] = exc.errno
            except Exception as exc:  # noqa: BLE001 - recorded, and the test fails on it
                got[f"{door}/{name}"] = repr(exc)
    return {"report": report, "attempts": got}


def test_without_landlock_seccomp_alone_refuses_what_landlock_would_deny(no_landlock):
    code, text = in_child(_isolated_attempts)
    assert code == 0, text
    out = json.loads(text)
    report = out["report"]
    assert report["landlock"] == {"on": False, "required": False,
                                  "detail": "off (the kernel has no Landlock)"}
    for name, layer in report.items():  # every other required layer is still on
        assert layer["on"] or not layer["required"], (name, layer)
    assert report["seccomp"]["on"] and report["seccomp"]["required"]
    assert set(ATTEMPTS) == set(layers.LANDLOCK_DOORS)
    assert out["attempts"] == {k: 1 for k in out["attempts"]}  # every one EPERM
    assert not os.path.exists(os.path.join(tempfile.gettempdir(), "no-landlock-canary"))
    assert all(calls == [] for calls in layers.landlock_gaps().values())


def test_sandbox_check_prints_what_seccomp_alone_covers(no_landlock, monkeypatch, capsys):
    code, text = in_child(_isolated_attempts)
    assert code == 0, text
    report = {"ok": True, "platform": "Linux 5.10 (simulated)", "error": None,
              "layers": json.loads(text)["report"]}
    monkeypatch.setattr(layers, "check", lambda limits=None: layers.verdict(report))
    monkeypatch.setattr("tts_gym.cli.sandbox_check_cmd.check", layers.check)
    assert cli_main(["sandbox-check"]) == 0
    out = capsys.readouterr().out
    assert "[off] landlock        optional off (the kernel has no Landlock)" in out
    assert "seccomp allowlist alone refuses what it would deny" in out
    for door in layers.LANDLOCK_DOORS:
        assert f"    {door}: refused (" in out
    assert "NOT covered" not in out
    assert cli_main(["sandbox-check", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["without_landlock"]
    assert {d: v["refused_by_seccomp"] for d, v in got.items()} == {
        d: list(calls) for d, calls in layers.LANDLOCK_DOORS.items()}
    assert all(v["allowed"] == [] for v in got.values())


def test_a_kernel_without_landlock_is_refused_if_seccomp_would_let_a_door_open(monkeypatch):
    """The docs' claim is checked, not assumed: with an allowlist admitting ``openat`` (a
    hypothetical future change), the same report is refused and the check names the call."""
    monkeypatch.setattr(syscall_filter, "ALLOWED", (*syscall_filter.ALLOWED, "openat"))
    report = {"ok": True, "platform": "Linux 5.10 (simulated)", "error": None,
              "layers": {"landlock": {"on": False, "required": False,
                                      "detail": "off (the kernel has no Landlock)"},
                         "seccomp": {"on": True, "required": True, "detail": "allowlist"}}}
    layers.verdict(report)
    assert report["ok"] is False and "openat" in report["error"]
    assert "NOT covered, seccomp allows openat" in layers.describe(report)


def test_the_safety_page_lists_exactly_the_calls_checked():
    """docs/safety.md's table of what seccomp refuses in Landlock's place names the calls of
    :data:`layers.LANDLOCK_DOORS` (``*`` patterns allowed), no more and no fewer."""
    import fnmatch
    import re
    from pathlib import Path

    page = (Path(__file__).parent.parent / "docs" / "safety.md").read_text()
    section = page.split("## Kernels without Landlock", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    patterns = [p for row in rows for p in re.findall(r"`([a-z0-9_*]+)`", row.split("|")[2])]
    names = {c for calls in layers.LANDLOCK_DOORS.values() for c in calls}
    assert len(rows) == len(layers.LANDLOCK_DOORS)
    assert all(fnmatch.filter(names, p) for p in patterns), patterns
    assert {n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns)} == names
