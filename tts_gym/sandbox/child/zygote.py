"""The fork server of candidate processes (run as a script, never imported by tts_gym).

Started by :class:`tts_gym.sandbox.zygote_client.ZygoteClient` as
``python -s -B <this file> <socket fd> <broker pid>`` with a minimal environment (thread pools
pinned to one thread, a fixed hash seed, nothing of the caller's, so no API key), an empty
working directory and its own session. It is a freshly executed interpreter that never loads
``tts_gym``, a store or a gold answer: it loads this package, ``tts_gym/candidate.py`` and
``tts_gym/source_lines.py`` by path, pre-imports the modules a candidate may use (there is no
filesystem later), wraps their randomness per episode and compiles the seccomp policy once, and
then, per request on its socket:

- ``spawn`` (with two descriptors: the pipe from the broker and the pipe to it): forks a child
  that applies :mod:`.isolation` and runs :mod:`.runtime`;
- ``reap``: kills a child (if still alive) and reports its exit status;
- end of the socket: kills every child it started and exits.

It sets ``PR_SET_PDEATHSIG`` so it dies with the broker; its children die with it.
"""

from __future__ import annotations

import ctypes
import fcntl
import gc
import importlib
import importlib.util
import json
import os
import signal
import socket
import sys
import types

LOADED_BY_PATH = ("candidate", "source_lines")
"""Modules of ``tts_gym`` the fork server loads by path, as ``tts_gym.<name>`` under a stub
package: the only tts-gym modules the child package may import; standard library only."""


def _load_by_path(name: str, path: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {name} from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _bootstrap() -> types.ModuleType:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.util.spec_from_file_location(
        "_tts_child", os.path.join(here, "__init__.py"), submodule_search_locations=[here]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the sandbox child package from {here}")
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["_tts_child"] = pkg
    spec.loader.exec_module(pkg)
    # the candidate API as `tts_gym.candidate` and the runtime's return-line finder as
    # `tts_gym.source_lines` (both standard library only), under a stub package with no path
    stub = types.ModuleType("tts_gym")
    stub.__path__ = []
    sys.modules["tts_gym"] = stub
    root = os.path.dirname(os.path.dirname(here))
    for name in LOADED_BY_PATH:
        vars(stub)[name] = _load_by_path(f"tts_gym.{name}", os.path.join(root, f"{name}.py"))
    return pkg


def _send(sock: socket.socket, obj: dict) -> None:
    sock.send(json.dumps(obj).encode())


def _spawn(sock: socket.socket, plan: dict, fds: list[int], program: bytes) -> int:
    from _tts_child import isolation, runtime, wire

    zygote_pid = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        sock.close()
        os.setsid()
        # the broker pipe at 3 (read) and 4 (write)
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 64) for fd in fds]
        os.dup2(high[0], 3)
        os.dup2(high[1], 4)
        plan = {**plan, "keep_fds": [3, 4]}
        try:
            report = isolation.apply(plan, program, zygote_pid)
        except isolation.IsolationError as exc:
            info = {"error": str(exc), "report": getattr(exc, "report", {})}
            wire.send_frame(4, wire.text_message(wire.HELLO, json.dumps(info)))
            os._exit(71)
        code = runtime.main(3, 4, report)
    except BaseException:  # noqa: BLE001 - a child never returns into the fork server
        code = 72
    finally:
        os._exit(code)
    return 0  # pragma: no cover


def _reap(pid: int) -> int:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return -999
    return os.waitstatus_to_exitcode(status)


def serve(sock_fd: int, broker_pid: int) -> int:
    """The fork server's loop (see the module docstring)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != broker_pid:
        return 3
    pkg = _bootstrap()
    from _tts_child import runtime, syscall_filter

    for name in runtime.CANDIDATE_MODULES:
        importlib.import_module(name)
    import greenlet  # noqa: F401  (the runtime's scheduler)
    import numpy as np

    runtime.wrap_randomness()  # once here, inherited by every candidate process
    program = syscall_filter.compile_policy()
    gc.collect()
    gc.freeze()  # what the fork server loaded is never scanned again by a child's collector
    sock = socket.socket(fileno=sock_fd)
    msg, _fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 0)
    head, _, blob = msg.partition(b"\0")
    init = json.loads(head)
    size = int(init["table_size"])
    table = np.frombuffer(blob, np.float64).reshape(size, size).copy()
    table.setflags(write=False)
    sys.modules["tts_gym.candidate"].install_table(table)
    from _tts_child import landlock

    _send(sock, {"ready": True, "landlock_abi": landlock.abi_version(),
                 "seccomp_instructions": len(program) // 8, "package": pkg.__name__})
    children: set[int] = set()
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, 2)
        except OSError:
            break
        if not msg:
            break
        req = json.loads(msg)
        if req["cmd"] == "spawn":
            pid = _spawn(sock, req["plan"], fds, program)
            for fd in fds:
                os.close(fd)
            children.add(pid)
            _send(sock, {"pid": pid})
        elif req["cmd"] == "reap":
            pid = int(req["pid"])
            code = _reap(pid) if pid in children else -999
            children.discard(pid)
            _send(sock, {"pid": pid, "code": code})
    for pid in children:
        _reap(pid)
    return 0


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1]), int(sys.argv[2])))
