"""The atomic action layout of :class:`~tts_gym.env.ReplayEnv`.

With S = ``max_branches`` slots, ``Discrete(3 + 3 S)``:

=========  =====================  =============================================
index      action                 effect
=========  =====================  =============================================
0          ANSWER                 end the episode with the aggregated answer
1          BRANCH                 open the next branch, advance it once
2          SAMPLE                 open the next branch, read it to the end (T)
3 + i      CONTINUE(i)            advance slot i by one probe interval
3 + S + i  PROBE(i)               reveal slot i's answer at its current depth
3 + 2S + i PRUNE(i)               mark slot i inactive
=========  =====================  =============================================
"""

from __future__ import annotations

from dataclasses import dataclass

ANSWER = 0
BRANCH = 1
SAMPLE = 2
_KINDS = ("CONTINUE", "PROBE", "PRUNE")


@dataclass(frozen=True)
class ActionLayout:
    """Encode/decode atomic actions for ``slots`` (S) branch slots."""

    slots: int

    @property
    def n(self) -> int:
        """Number of discrete actions, 3 + 3 S."""
        return 3 + 3 * self.slots

    def continue_(self, slot: int) -> int:
        """Index of CONTINUE(slot)."""
        return 3 + slot

    def probe(self, slot: int) -> int:
        """Index of PROBE(slot)."""
        return 3 + self.slots + slot

    def prune(self, slot: int) -> int:
        """Index of PRUNE(slot)."""
        return 3 + 2 * self.slots + slot

    def describe(self, action: int) -> str:
        """Human-readable name, e.g. ``"PROBE(3)"``."""
        if action == ANSWER:
            return "ANSWER"
        if action == BRANCH:
            return "BRANCH"
        if action == SAMPLE:
            return "SAMPLE"
        if 3 <= action < self.n:
            kind, slot = divmod(action - 3, self.slots)
            return f"{_KINDS[kind]}({slot})"
        return f"<out of range: {action}>"
