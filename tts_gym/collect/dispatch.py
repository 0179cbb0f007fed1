"""Least-loaded dispatch of requests over several servers, each with a bound on requests in
flight.

A request asks for a slot; it gets the server with the fewest requests in flight among those
with a free slot (ties: the ``prefer``-red server, whose prefix cache holds the branch, then
the lowest index). A server that just failed is *cooling* for a while: it is used only when no
other server has a free slot, so a dead server does not attract every retry by looking idle.
Waiting requests are served first come, first served.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque


class Dispatcher:
    """Slots over ``n_servers`` servers, ``limit`` in flight on each.

    Args:
        n_servers: Number of servers (>= 1).
        limit: Requests in flight per server (>= 1).
        clock: Monotonic clock in seconds (injected in tests).
    """

    def __init__(self, n_servers: int, limit: int, clock=time.monotonic) -> None:
        if n_servers < 1 or limit < 1:
            raise ValueError("need at least one server and one slot per server")
        self.limit = limit
        self.in_flight = [0] * n_servers
        self.cooling_until = [0.0] * n_servers
        self.served = [0] * n_servers
        self._clock = clock
        self._waiters: deque[tuple[asyncio.Future[int], int | None]] = deque()

    def _pick(self, prefer: int | None) -> int | None:
        now = self._clock()
        best: tuple[int, int, int, int] | None = None
        for i, load in enumerate(self.in_flight):
            if load >= self.limit:
                continue
            rank = (int(self.cooling_until[i] > now), load, int(i != prefer), i)
            if best is None or rank < best:
                best = rank
        return None if best is None else best[3]

    async def acquire(self, prefer: int | None = None) -> int:
        """Wait for a slot; return the server index (release it with :meth:`release`)."""
        if not self._waiters:
            i = self._pick(prefer)
            if i is not None:
                self.in_flight[i] += 1
                self.served[i] += 1
                return i
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append((fut, prefer))
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(fut.result())  # granted just as we were cancelled: give it back
            else:
                self._waiters = deque(w for w in self._waiters if w[0] is not fut)
            raise

    def release(self, server: int) -> None:
        """Give a slot back and hand free slots to waiting requests."""
        self.in_flight[server] -= 1
        while self._waiters:
            fut, prefer = self._waiters[0]
            if fut.done():
                self._waiters.popleft()
                continue
            i = self._pick(prefer)
            if i is None:
                return
            self._waiters.popleft()
            self.in_flight[i] += 1
            self.served[i] += 1
            fut.set_result(i)

    def cool(self, server: int, seconds: float) -> None:
        """Mark ``server`` as failing: prefer the others for ``seconds``."""
        self.cooling_until[server] = max(self.cooling_until[server], self._clock() + seconds)
