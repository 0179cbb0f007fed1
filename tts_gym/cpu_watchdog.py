"""The per-episode CPU budget of a trusted controller file (``eval file:X --trusted``).

A controller imported into this process cannot be abandoned the way the sandbox abandons a
looping episode, so a signal-based watchdog stops it instead: around the file's top-level code,
its constructor (``seconds`` of CPU in all) and each ``solve`` (``seconds`` of CPU without
calling a primitive, as in the sandbox), :func:`cpu_budget` arms ``ITIMER_VIRTUAL`` (CPU time of
this process); when the budget is spent, the ``SIGVTALRM`` handler raises
:class:`EpisodeCpuExceeded` in the interrupted code, carrying the file and line of the innermost
frame of the controller's file that was running. A slow import at the top of a trusted file
counts against the budget too (raise ``--episode-cpu`` for heavy libraries).

Limits: signal handlers run in the main thread only (elsewhere the budget is not armed); the
handler runs between bytecodes, so a long call into C (a big numpy operation, a regex, a
``time.sleep`` does not count: it uses no CPU) is interrupted only when it returns to Python.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

REPEAT_S = 0.25
"""CPU seconds between further stops once the budget is spent (a bare ``except:`` caught it)."""
TICK_S = 0.25
"""CPU seconds between two looks at an episode's progress (as the sandbox's watchdog)."""


class EpisodeCpuExceeded(BaseException):
    """A trusted controller used its CPU budget; ``line`` is where it was running in
    ``filename`` (None when no frame of the file was on the stack). A ``BaseException``, so the
    controller's own ``except Exception`` does not swallow it (and the timer fires again every
    :data:`REPEAT_S` while the budget is armed)."""

    def __init__(self, filename: str, line: int | None, function: str | None,
                 seconds: float) -> None:
        self.filename, self.line, self.function, self.seconds = filename, line, function, seconds
        inside = f" in {function}()" if function and function != "<module>" else ""
        where = (f"{filename}:{line}: stopped after {seconds:g} s of CPU (the episode's CPU "
                 f"budget, --episode-cpu), running at line {line}{inside}" if line else
                 f"{filename}: stopped after {seconds:g} s of CPU (the episode's CPU budget, "
                 "--episode-cpu), outside the file's own code")
        super().__init__(where)


def innermost_line(frame: Any, filename: str) -> tuple[int | None, str | None]:
    """``(line, function)`` of the innermost frame of ``filename`` on the stack ending at
    ``frame``; ``(None, None)`` when none."""
    while frame is not None:
        if frame.f_code.co_filename == filename:
            return frame.f_lineno, frame.f_code.co_name
        frame = frame.f_back
    return None, None


def on_stack(frame: Any, filename: str) -> bool:
    """Whether a frame of ``filename`` is on the stack ending at ``frame``."""
    while frame is not None:
        if frame.f_code.co_filename == filename:
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def cpu_budget(seconds: float | None, filename: str,
               progress: Callable[[], Any] | None = None,
               inside: str | None = None) -> Iterator[None]:
    """Raise :class:`EpisodeCpuExceeded` in the body once it used ``seconds`` of CPU (without
    progress, when ``progress`` is given).

    Without ``progress`` the budget is the body's total CPU time (the file's top-level code,
    the constructor). With it, the budget is CPU time without calling a primitive, as in the
    sandbox: every :data:`TICK_S` of CPU the handler reads ``progress()`` (e.g. the episode's
    tokens and opened branches) and starts counting again whenever it changed.

    A no-op when ``seconds`` is None or this is not the main thread. The previous handler and
    timer are restored on exit (budgets do not nest: the inner one replaces the outer one).

    Args:
        seconds: The budget (CPU seconds of this process, user time).
        filename: The controller file whose frame is named in the error.
        progress: Returns a value that changes whenever the body calls a primitive.
        inside: A file whose frames on the interrupted stack count as progress (the
            primitives' own module: their one-time costs, e.g. loading compiled kernels in a
            fresh worker, are not the controller's).
    """
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    budget = float(seconds)
    tick = budget if progress is None else min(TICK_S, budget)
    state: dict[str, Any] = {"armed": True, "idle": 0.0, "seen": progress() if progress else None}

    def on_timer(_signum: int, frame: Any) -> None:
        if not state["armed"]:
            return
        if progress is not None:
            now = progress()
            if now != state["seen"] or (inside and on_stack(frame, inside)):
                state["seen"], state["idle"] = now, 0.0
                return
            state["idle"] += tick
            if state["idle"] + 1e-9 < budget:
                return
        line, function = innermost_line(frame, filename)
        raise EpisodeCpuExceeded(filename, line, function, budget)

    old = signal.signal(signal.SIGVTALRM, on_timer)
    signal.setitimer(signal.ITIMER_VIRTUAL, tick, tick if progress is not None else REPEAT_S)
    try:
        yield
    finally:
        state["armed"] = False
        signal.setitimer(signal.ITIMER_VIRTUAL, 0.0)
        signal.signal(signal.SIGVTALRM, old)
