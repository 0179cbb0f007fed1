"""The per-episode CPU budget of a trusted controller file (``eval file:X --trusted``).

A controller imported into this process cannot be abandoned the way the sandbox abandons a
looping episode, so a signal-based watchdog stops it instead: before the file's top-level code,
its constructor and each ``solve``, :func:`cpu_budget` arms ``ITIMER_VIRTUAL`` (CPU time of this
process) for ``seconds``; if the timer fires, the ``SIGVTALRM`` handler raises
:class:`EpisodeCpuExceeded` in the interrupted code, carrying the file and line of the innermost
frame of the controller's file that was running.

Limits: signal handlers run in the main thread only (elsewhere the budget is not armed); the
handler runs between bytecodes, so a long call into C (a big numpy operation, a regex, a
``time.sleep`` does not count: it uses no CPU) is interrupted only when it returns to Python.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

REPEAT_S = 0.25
"""CPU seconds between further stops once the budget is spent (a bare ``except:`` caught it)."""


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


@contextlib.contextmanager
def cpu_budget(seconds: float | None, filename: str) -> Iterator[None]:
    """Raise :class:`EpisodeCpuExceeded` in the body once it used ``seconds`` of CPU.

    A no-op when ``seconds`` is None or this is not the main thread. The previous handler and
    timer are restored on exit (budgets do not nest: the inner one replaces the outer one).

    Args:
        seconds: The budget (CPU seconds of this process, user time).
        filename: The controller file whose frame is named in the error.
    """
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    armed = [True]

    def on_timer(_signum: int, frame: Any) -> None:
        if armed[0]:
            line, function = innermost_line(frame, filename)
            raise EpisodeCpuExceeded(filename, line, function, float(seconds))

    old = signal.signal(signal.SIGVTALRM, on_timer)
    signal.setitimer(signal.ITIMER_VIRTUAL, float(seconds), REPEAT_S)
    try:
        yield
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_VIRTUAL, 0.0)
        signal.signal(signal.SIGVTALRM, old)
