"""Limits of sandboxed candidate runs."""

from __future__ import annotations

from dataclasses import dataclass

TURN_CPU_SLACK_S = 1.0
"""CPU seconds a turn may use beyond its episodes' watchdogs (the runtime's own work, the
watchdog's 0.25 s tick, system time that the watchdog's virtual timer does not count)."""


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one unit of work (one candidate process) and of each of its episodes.

    Attributes:
        timeout_s: Wall-clock seconds a unit may take once its process said HELLO.
        startup_s: Seconds allowed for the fork server to start and a child to say HELLO.
        memory_mb: Address space a candidate process may map beyond its size at start (MiB).
        cpu_s: CPU seconds of a candidate process (RLIMIT_CPU); None: ``watchdog_s +
            episode_cpu_s x episodes`` (:meth:`process_cpu_s`).
        watchdog_s: CPU seconds an episode may compute without calling a primitive before it
            is abandoned and blamed (the other episodes continue). The broker also stops a
            process whose turn uses more than ``watchdog_s`` per episode it resumed (plus
            :data:`TURN_CPU_SLACK_S`): the watchdog's timer is the candidate's own.
        episode_cpu_s: CPU seconds per episode in a candidate process's hard CPU limit
            (``--episode-cpu``): the kernel stops a process past ``watchdog_s + episode_cpu_s x
            episodes`` whatever the candidate does to its own timer.
        max_steps: Primitives one episode may call (the env's episode limit, 20,000).
        stall_s: Wall-clock seconds without any message from a candidate process before it is
            killed and the running episode blamed (a stall outside Python's reach, e.g. one long
            C call); None: ``2 * watchdog_s + 10``.
        netns: Also give each candidate a new network and IPC namespace (optional layer;
            seccomp already refuses every socket; costs a few ms per process).
        workers: Processes (each a broker with its own candidate process) working in
            parallel.
        pin_cpu: Pin each broker, its fork server and its candidates to one CPU (a round
            trip then costs a context switch, not a wake-up of another CPU).
        python_loop: Serve every round in Python instead of the compiled loop (slower; the
            two are tested to give identical replies).
        unsafe: Run even where a required isolation layer is missing (``--unsafe-no-isolation``:
            candidates still run in a separate process behind the broker, but the operating
            system does not confine them).
    """

    timeout_s: float = 600.0
    startup_s: float = 60.0
    memory_mb: int = 2048
    cpu_s: float | None = None
    watchdog_s: float = 10.0
    episode_cpu_s: float = 1.0
    max_steps: int = 20000
    stall_s: float | None = None
    netns: bool = False
    workers: int = 1
    pin_cpu: bool = True
    unsafe: bool = False
    python_loop: bool = False

    @classmethod
    def per_episode(cls, episode_cpu_s: float = 1.0, **kwargs: object) -> SandboxLimits:
        """Limits where ``episode_cpu_s`` (``--episode-cpu`` of ``eval``, ``sweep``, ``table``)
        is also the watchdog: an episode that computes that long without calling a primitive
        is stopped, and the message names the line it was running. A process's kernel limit
        stays ``watchdog + episode_cpu_s x episodes``, so no episode can spend more than its
        share in one stretch either way.

        Raises:
            ValueError: ``episode_cpu_s`` is not a positive number.
        """
        if not episode_cpu_s > 0:
            raise ValueError(f"--episode-cpu must be a positive number of seconds, got "
                             f"{episode_cpu_s!r}.")
        return cls(episode_cpu_s=float(episode_cpu_s), watchdog_s=float(episode_cpu_s),
                   **kwargs)  # type: ignore[arg-type]

    @property
    def stall_limit_s(self) -> float:
        """The stall limit in effect."""
        return float(self.stall_s if self.stall_s is not None else 2.0 * self.watchdog_s + 10.0)

    def process_cpu_s(self, episodes: int) -> float:
        """The RLIMIT_CPU of a candidate process that plays ``episodes`` episodes (seconds)."""
        if self.cpu_s is not None:
            return float(self.cpu_s)
        return float(self.watchdog_s + self.episode_cpu_s * max(0, int(episodes)))

    def turn_cpu_s(self, resumed: int) -> float:
        """CPU seconds a candidate process may use in one turn that resumed ``resumed``
        episodes (each may compute ``watchdog_s`` before its watchdog abandons it)."""
        return self.watchdog_s * max(1, int(resumed)) * 1.1 + TURN_CPU_SLACK_S

    def plan(self, episodes: int = 0) -> dict[str, object]:
        """The isolation plan sent to the fork server for a child playing ``episodes``."""
        return {"memory_mb": int(self.memory_mb), "cpu_s": self.process_cpu_s(episodes),
                "netns": bool(self.netns), "unsafe": bool(self.unsafe)}
