"""A plain-Python twin of the replay semantics, written from the spec alone.

Source: the replay semantics as docs/env.md states them ("The paper's primitives",
"Cost modes").
It reads the AutoTTS JSON layout (``tts_gym.testing.tiny_questions``) directly, with answers as
strings, and shares no code with :mod:`tts_gym.kernels` or the store packer, so comparing the
two catches a bug in either.

Charging (branch with probes p[0..L-1], total tokens T, final answer F, interval Δ, k intervals
consumed, ``spent`` tokens already charged to it):

- reference: an interval costs Δ; the finishing advance costs max(0, T - spent).
  Probing to the end costs max(L·Δ, T).
- exact: the k-th interval costs min(T, (k+1)·Δ) - min(T, k·Δ); the finishing advance costs
  T - min(T, k·Δ). Probing to the end costs exactly T.
``full_read`` costs T in both modes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any


class TwinError(Exception):
    """An illegal primitive call (the real env raises ValueError / returns None)."""


def python_order(n_branches: int, shuffle_seed: int) -> list[int]:
    """The protocol's order: ``random.Random(seed).shuffle(list(range(N)))``."""
    order = list(range(n_branches))
    random.Random(shuffle_seed).shuffle(order)
    return order


@dataclass
class TwinBranch:
    """One pre-collected branch: probe answers, total tokens T, final answer F."""

    probes: list[str]
    tokens: int
    final: str

    @classmethod
    def from_json(cls, entry: list[Any]) -> TwinBranch:
        """``[probe_answers, tokens, final_answer]`` as in ``each_branch``."""
        probes, tokens, final = entry
        return cls([str(p) for p in probes], int(tokens), str(final))


@dataclass
class TwinEpisode:
    """One question under one branch order, as the spec describes it.

    Args:
        branches: the question's branches (store order).
        delta: probe interval Δ in tokens.
        order: the branch order (a permutation of range(N)).
        mode: ``"reference"`` or ``"exact"``.
        capacity: slot limit (the env's ``max_branches``); None = N.
    """

    branches: list[TwinBranch]
    delta: int
    order: list[int]
    mode: str = "reference"
    capacity: int | None = None
    opened: int = 0
    cost: int = 0
    k: list[int] = field(default_factory=list)
    spent: list[int] = field(default_factory=list)
    finished: list[bool] = field(default_factory=list)
    pruned: list[bool] = field(default_factory=list)
    revealed: set[str] = field(default_factory=set)
    """Every answer a primitive returned (the protocol scores any other answer wrong)."""

    @classmethod
    def from_question(
        cls, question: dict[str, Any], order: list[int], mode: str = "reference", capacity=None
    ) -> TwinEpisode:
        """Build from one question dict of the AutoTTS JSON layout."""
        branches = [TwinBranch.from_json(e) for e in question["each_branch"]]
        return cls(branches, int(question["probe_freq"]), list(order), mode, capacity)

    # --- legality --------------------------------------------------------------------------
    @property
    def limit(self) -> int:
        """How many branches may be opened in total."""
        n = len(self.branches)
        return n if self.capacity is None else min(n, self.capacity)

    def can_open(self) -> bool:
        return self.opened < self.limit

    def can_advance(self, slot: int) -> bool:
        return 0 <= slot < self.opened and not self.finished[slot] and not self.pruned[slot]

    # --- the three reference primitives ----------------------------------------------------
    def probe_new(self) -> tuple[str, int, bool] | None:
        """Open ``order[opened]`` as slot ``opened`` and advance it once; None if none left."""
        if not self.can_open():
            return None
        slot = self.opened
        self.opened += 1
        self.k.append(0)
        self.spent.append(0)
        self.finished.append(False)
        self.pruned.append(False)
        answer, fin, _charge = self._advance(slot)
        return answer, slot, fin

    def probe_more(self, slot: int) -> tuple[str, bool]:
        """Advance an opened, unfinished, unpruned slot once."""
        if not self.can_advance(slot):
            raise TwinError(f"slot {slot} cannot be advanced")
        answer, fin, _charge = self._advance(slot)
        return answer, fin

    def full_read(self) -> str | None:
        """Open the next branch and read it to the end at exactly T tokens."""
        if not self.can_open():
            return None
        b = self.branches[self.order[self.opened]]
        self.opened += 1
        self.k.append(len(b.probes))
        self.spent.append(b.tokens)
        self.finished.append(True)
        self.pruned.append(False)
        self.cost += b.tokens
        self.revealed.add(b.final)
        return b.final

    def prune(self, slot: int) -> None:
        """Bookkeeping only: the slot can no longer be advanced."""
        if not (0 <= slot < self.opened) or self.pruned[slot] or self.finished[slot]:
            raise TwinError(f"slot {slot} cannot be pruned")
        self.pruned[slot] = True

    # --- "advance once" --------------------------------------------------------------------
    def _advance(self, slot: int) -> tuple[str, bool, int]:
        b = self.branches[self.order[slot]]
        k, d, t = self.k[slot], self.delta, b.tokens
        if k < len(b.probes):
            if self.mode == "reference":
                charge = d
            else:
                charge = min(t, (k + 1) * d) - min(t, k * d)
            answer, fin = b.probes[k], False
            self.k[slot] = k + 1
        else:
            if self.mode == "reference":
                charge = max(0, t - self.spent[slot])
            else:
                charge = t - min(t, k * d)
            answer, fin = b.final, True
            self.finished[slot] = True
        self.spent[slot] += charge
        self.cost += charge
        self.revealed.add(answer)
        return answer, fin, charge


def cost_to_end(branch: TwinBranch, delta: int, mode: str) -> int:
    """Closed form of probing a branch to the end (the spec's notes)."""
    if mode == "reference":
        return max(len(branch.probes) * delta, branch.tokens)
    return branch.tokens
