"""The question handle: the paper's primitives as steps of a :class:`ReplayEnv`.

``probe_new``, ``probe_more`` and ``full_read`` are the AutoTTS reference primitives
(docs/env.md, docs/reproducing.md). Each is carried out as one or two atomic env steps (BRANCH or
CONTINUE, then PROBE; SAMPLE), so a controller written against the handle is a policy acting on
the registered env, and is charged exactly what the env charges.

The handle checks every atomic action's legality itself before taking it, and raises
``ValueError`` for an illegal primitive (``probe_more`` of an unopened, finished or pruned slot,
``prune`` of a finished or pruned one), whatever the env's ``illegal_action`` setting: the env's
default turns illegal actions into no-ops for RL algorithms, but a controller's illegal call is a
bug to report, never a silent free step.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from tts_gym.env.actions import ANSWER, BRANCH, SAMPLE
from tts_gym.env.replay_env import ReplayEnv


class QuestionHandle:
    """One episode seen through the paper's primitives.

    Args:
        env: A :class:`ReplayEnv` (or a wrapper around one) that has just been reset.
        record_trace: Keep a JSON-serialisable execution trace of every call and note.

    Answers are opaque strings. ``probe_new`` and ``full_read`` return None when no branch is
    left (all N branches opened, or all ``max_branches`` slots used).
    """

    def __init__(self, env: gym.Env, record_trace: bool = True) -> None:
        base = env.unwrapped
        if not isinstance(base, ReplayEnv):
            raise TypeError(f"QuestionHandle needs a tts_gym ReplayEnv, got {type(base).__name__}.")
        self._env = env
        self._base: ReplayEnv = base
        self._layout = base.layout
        self._reveal = base.params.reveal_on_advance
        # Unwrapped env: primitives use ReplayEnv.apply_action (same kernel and state change as
        # step, without building the observation nobody reads here; ~3x faster). Through
        # wrappers every atomic action goes through env.step, so the wrappers see it.
        self._take = base.apply_action if env is base else env.step
        self._op = ""  # the primitive being carried out (for error messages)
        self.trace: list[dict[str, Any]] | None = [] if record_trace else None
        self.result: dict[str, Any] | None = None

    # --- the paper's primitives ------------------------------------------------------------
    def probe_new(self) -> tuple[str | None, int, bool] | None:
        """Open the next branch and advance it one interval.

        Returns:
            ``(answer, slot, finished)``, or None when no branch is left.
        """
        if self._base.branches_left == 0:
            self._record({"op": "probe_new", "none_left": True})
            return None
        before = self._base.tokens_used
        slot = self._base.n_opened
        self._op = "probe_new()"
        self._act(BRANCH)
        answer, finished = self._read(slot)
        self._record(
            {
                "op": "probe_new",
                "slot": slot,
                "answer": answer,
                "finished": finished,
                "tokens": self._base.tokens_used - before,
            }
        )
        return answer, slot, finished

    def probe_more(self, slot: int) -> tuple[str | None, bool]:
        """Advance an opened, unfinished slot one interval.

        Returns:
            ``(answer, finished)``.

        Raises:
            ValueError: The slot is not opened, finished or pruned.
        """
        before = self._base.tokens_used
        self._op = f"probe_more({slot})"
        self._act(self._layout.continue_(self._slot(slot)))
        answer, finished = self._read(int(slot))
        self._record(
            {
                "op": "probe_more",
                "slot": int(slot),
                "answer": answer,
                "finished": finished,
                "tokens": self._base.tokens_used - before,
            }
        )
        return answer, finished

    def full_read(self) -> str | None:
        """Open the next branch and read it to the end (charges its full T tokens).

        Returns:
            The branch's final answer, or None when no branch is left.
        """
        if self._base.branches_left == 0:
            self._record({"op": "full_read", "none_left": True})
            return None
        before = self._base.tokens_used
        slot = self._base.n_opened
        self._op = "full_read()"
        self._act(SAMPLE)
        answer = self._base.revealed_answer(slot)
        self._record(
            {
                "op": "full_read",
                "slot": slot,
                "answer": answer,
                "tokens": self._base.tokens_used - before,
            }
        )
        return answer

    def prune(self, slot: int) -> None:
        """Mark a slot inactive (abandon it); it can no longer be advanced.

        Raises:
            ValueError: The slot is not opened, finished or already pruned.
        """
        self._op = f"prune({slot})"
        self._act(self._layout.prune(self._slot(slot)))
        self._record({"op": "prune", "slot": int(slot)})

    def _slot(self, slot: int) -> int:
        """``slot`` as an int, checked against the env's S slots (else a wrong action's error)."""
        s = int(slot)
        if not 0 <= s < self._layout.slots:
            raise ValueError(
                f"slot {s} is out of range: this env has {self._layout.slots} slots "
                f"(0..{self._layout.slots - 1}); use a slot returned by probe_new()."
            )
        return s

    def note(self, event: str, **fields: Any) -> None:
        """Annotate a decision in the trace (fields must be JSON-serialisable scalars/lists)."""
        self._record({"op": "note", "event": str(event), **fields})

    def submit(self, answer: str | None) -> dict[str, Any]:
        """End the episode with ``answer`` (None counts as wrong); returns the final info.

        An answer that was never revealed in this episode (not returned by a primitive) is
        scored wrong whatever it says: ``result["revealed"]`` is False then.
        """
        if self.result is not None:
            raise RuntimeError("This question was already answered; make a new handle.")
        revealed = self._base.answer_revealed(answer)
        self._base.commit_answer(answer)
        _obs, _r, _term, _trunc, info = self._env.step(ANSWER)
        event = {"op": "finish", "answer": answer, "tokens": self._base.tokens_used}
        self._record(event if revealed else {**event, "unrevealed": True})
        self.result = {
            "answer": answer,
            "correct": bool(info["correct"]),
            "tokens": int(info["tokens"]),
            "revealed": revealed,
        }
        return self.result

    # --- what a controller may read ---------------------------------------------------------
    @property
    def tokens_used(self) -> int:
        """Tokens charged so far in this episode."""
        return self._base.tokens_used

    @property
    def branches_left(self) -> int:
        """How many more branches ``probe_new``/``full_read`` can open."""
        return self._base.branches_left

    @property
    def n_opened(self) -> int:
        """Branches opened so far (the next slot number)."""
        return self._base.n_opened

    # --- internals ---------------------------------------------------------------------------
    def _act(self, action: int) -> None:
        """Take one atomic action after checking its legality here (not the env's setting)."""
        if not self._base.is_legal(action):
            raise ValueError(
                f"Illegal action {action} = {self._layout.describe(action)} from "
                f"{self._op}: {self._base.illegal_reason(action)}. probe_more and prune need a "
                f"slot returned by probe_new() that is not finished (and not pruned)."
            )
        self._take(action)

    def _read(self, slot: int) -> tuple[str | None, bool]:
        if not self._reveal:
            self._act(self._layout.probe(slot))
        return self._base.revealed_answer(slot), self._base.slot_finished(slot)

    def _record(self, event: dict[str, Any]) -> None:
        if self.trace is not None:
            self.trace.append(event)
