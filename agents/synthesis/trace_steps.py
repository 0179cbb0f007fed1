"""What each step of an episode trace changes, and how a long trace is shortened around that.

The *revealed majority* after a step is the most frequent answer among the opened branches'
latest revealed answers (noise answers excluded; ties go to the answer revealed first). A step
is *key* when it changes the revealed majority, or when a probe changes a branch's answer
(``probe_more`` returning another answer than that branch's previous one). Shortening a trace
keeps its first and last steps, its last note (the controller's stop decision) and its key
steps, and replaces each stretch between them by one marker event::

    {"op": "...", "skipped": n, "tokens": t, "revealed": {answer: count}, "slots": {slot: answer}}

(``tokens`` charged, answers revealed and each branch's latest answer within the stretch), so
the majority and the spending can still be followed across it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from agents.synthesis.facts import NOISE_LEGEND

SKIP = "..."
"""The ``op`` of a marker event standing for elided steps."""

ANSWER_OPS = ("probe_new", "probe_more", "full_read")
NOISE = frozenset(NOISE_LEGEND)


@dataclass(frozen=True)
class Step:
    """What one event did.

    Attributes:
        majority: The revealed majority after the event (None before any answer).
        majority_changed: It differs from the one before the event.
        branch_changed: A probe changed a branch's answer.
    """

    majority: str | None
    majority_changed: bool
    branch_changed: bool

    @property
    def key(self) -> bool:
        """A step a shortened trace keeps."""
        return self.majority_changed or self.branch_changed


def walk(trace: Sequence[dict[str, Any]], noise: Collection[str] = NOISE) -> list[Step]:
    """One :class:`Step` per event of ``trace`` (markers included). The majority is kept
    incrementally (recounted only when the leader loses a branch)."""
    latest: dict[Any, str] = {}
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    state: list[str | None] = [None]  # the current majority

    def leader() -> str | None:
        live = [a for a, c in counts.items() if c > 0]
        return min(live, key=lambda a: (-counts[a], first[a])) if live else None

    def put(slot: Any, answer: str) -> None:
        old = latest.get(slot)
        latest[slot] = answer
        first.setdefault(answer, len(first))
        if old == answer:
            return
        if old is not None and old not in noise:
            counts[old] -= 1
        if answer not in noise:
            counts[answer] = counts.get(answer, 0) + 1
        top = state[0]
        if top is None or old == top:
            state[0] = leader()
        elif answer not in noise and (counts[answer], -first[answer]) > (counts[top],
                                                                         -first[top]):
            state[0] = answer

    out = []
    for ev in trace:
        before = state[0]
        op = ev.get("op")
        changed = False
        if op in ANSWER_OPS and ev.get("answer") is not None and "slot" in ev:
            slot, answer = ev["slot"], str(ev["answer"])
            changed = op == "probe_more" and slot in latest and latest[slot] != answer
            put(slot, answer)
        elif op == SKIP:
            for answer in ev.get("revealed") or {}:
                first.setdefault(str(answer), len(first))
            for slot, answer in (ev.get("slots") or {}).items():
                put(slot, str(answer))
        out.append(Step(state[0], state[0] != before, changed))
    return out


def kept_indices(trace: Sequence[dict[str, Any]], steps: Sequence[Step]) -> list[int]:
    """The events a shortened trace keeps: first, last, the last note, the key steps (markers
    never)."""
    n = len(trace)
    keep = {0, n - 1} if n else set()
    notes = [i for i, ev in enumerate(trace) if ev.get("op") == "note"]
    if notes:
        keep.add(notes[-1])
    keep |= {i for i, s in enumerate(steps) if s.key}
    return sorted(i for i in keep if trace[i].get("op") != SKIP)


def marker(events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One marker event standing for ``events`` (markers among them are merged)."""
    skipped = tokens = 0
    revealed: dict[Any, int] = {}
    slots: dict[Any, Any] = {}
    for ev in events:
        if ev.get("op") == SKIP:
            skipped += int(ev.get("skipped", 0))
            tokens += int(ev.get("tokens", 0))
            for a, c in (ev.get("revealed") or {}).items():
                revealed[a] = revealed.get(a, 0) + int(c)
            slots.update(ev.get("slots") or {})
            continue
        skipped += 1
        tokens += int(ev.get("tokens", 0) or 0)
        if ev.get("op") in ANSWER_OPS and ev.get("answer") is not None and "slot" in ev:
            revealed[ev["answer"]] = revealed.get(ev["answer"], 0) + 1
            slots[ev["slot"]] = ev["answer"]
    return {"op": SKIP, "skipped": skipped, "tokens": tokens, "revealed": revealed,
            "slots": slots}


def shorten(trace: Sequence[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    """``trace`` with at most ``keep`` real events (first, last, last note, key steps; evenly
    thinned when there are more key steps than fit), markers between them."""
    if len(trace) <= keep:
        return list(trace)
    kept = kept_indices(trace, walk(trace))
    if len(kept) > keep:
        fixed = {0, len(trace) - 1}
        notes = [i for i, ev in enumerate(trace) if ev.get("op") == "note"]
        fixed |= {notes[-1]} if notes else set()
        rest = [i for i in kept if i not in fixed]
        m = max(0, keep - len(fixed))
        pick = ({rest[round(j * (len(rest) - 1) / (m - 1))] for j in range(m)} if m > 1
                else set(rest[:m]))
        kept = sorted(fixed | pick)
    out: list[dict[str, Any]] = []
    prev = -1
    for i in kept:
        if i > prev + 1:
            out.append(marker(trace[prev + 1 : i]))
        out.append(trace[i])
        prev = i
    if prev < len(trace) - 1:
        out.append(marker(trace[prev + 1 :]))
    return out
