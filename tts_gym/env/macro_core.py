"""The macro-action logic over one episode's question handle (shared by env and evaluation).

Six decisions, each a short sequence of the paper's primitives carried out through
:class:`~tts_gym.handle.QuestionHandle` (so as atomic env steps):

======  =================  ===============================================================
index   macro action       atomic actions (with ``reveal_on_advance=False``)
======  =================  ===============================================================
0       ANSWER             ANSWER, submitting the *leader* (below)
1       WIDEN              ``probe_new``: BRANCH, PROBE(new slot)
2       DEEPEN_ALL         ``probe_more`` every live slot: CONTINUE(i), PROBE(i) for each
3       DEEPEN_LEADERS     ``probe_more`` every live slot whose latest answer is the leader
4       PRUNE_DISSENTERS   PRUNE(i) for every live slot whose latest answer is not the leader
5       SAMPLE             ``full_read``: SAMPLE (open a branch, read it to its final answer)
======  =================  ===============================================================

SAMPLE was added after the first five: with them alone, MaskablePPO learned SC@1 at every cost
weight, even at 0 (docs/rl.md); one SAMPLE adds one final answer to the vote, so
self-consistency at any k is a short action sequence. Models trained on the first five keep
working: their ``config.json`` lists five actions and the RL controller masks SAMPLE for them.

A slot is *live* when opened, unpruned and unfinished. The *leader* is the majority of the
revealed final answers (first-occurrence tie rule, as the env's own aggregation), else, when no
branch has finished, the majority of the latest revealed answers of unpruned slots in slot order.

Legality (``action_masks()``, int8 ``[6]``): ANSWER always; WIDEN and SAMPLE while a branch is
left; DEEPEN_ALL while a slot is live; DEEPEN_LEADERS while a live slot shows the leader;
PRUNE_DISSENTERS while a live slot shows another answer.

Features: float32 ``[N_FEATURES]`` (see :data:`FEATURES`), built from what the handle returned
only (answers as strings, never gold).

:class:`MacroCore` drives the registered env ``tts_gym/ReplayMacro-v0``
(:class:`tts_gym.env.macro_env.MacroActionEnv`), :func:`tts_gym.evaluate_policy` and the ``rl:``
controller alike, so a policy sees identical observations in training and evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tts_gym.handle import QuestionHandle
from tts_gym.kernels.votes import beta_conf, top2_py

ANSWER, WIDEN, DEEPEN_ALL, DEEPEN_LEADERS, PRUNE_DISSENTERS, SAMPLE = range(6)
ACTION_NAMES = ("ANSWER", "WIDEN", "DEEPEN_ALL", "DEEPEN_LEADERS", "PRUNE_DISSENTERS", "SAMPLE")
N_ACTIONS = len(ACTION_NAMES)

FEATURES = (
    "opened/S",
    "live/S",
    "finished/S",
    "pruned/S",
    "branches_left/S",
    "tokens/1e6 (clipped at 8)",
    "finished answers revealed/S",
    "c1 over final answers/S",
    "c2 over final answers/S",
    "beta_conf(c1, c2) over final answers",
    "c1 over latest answers of unpruned slots/S",
    "c2 over latest answers of unpruned slots/S",
    "beta_conf(c1, c2) over latest answers",
    "share of revealed unpruned slots showing the leader",
    "distinct latest answers/S",
    "mean depth of live slots/40 (clipped at 8)",
    "share of deepened slots whose answer changed at the last deepening",
    "macro steps the leader has been unchanged/10 (clipped at 1)",
    "macro steps/max_macro_steps",
    "1 if the leader comes from final answers",
)
N_FEATURES = len(FEATURES)
FEATURE_HIGH = 8.0


def _majority(answers: Sequence[str | None]) -> str | None:
    winner, _c1, _c2 = top2_py(answers)
    return winner


class MacroCore:
    """Macro-action logic over one episode's question handle (shared by training and eval).

    Args:
        handle: A fresh :class:`~tts_gym.handle.QuestionHandle`.
        max_slots: S, the env's slot count (normalises the features).
        max_macro_steps: The macro step budget (normalises a feature; the caller enforces it).
    """

    def __init__(self, handle: QuestionHandle, max_slots: int, max_macro_steps: int) -> None:
        self.h = handle
        self.s = float(max_slots)
        self.max_steps = max_macro_steps
        self.answers: list[str | None] = []
        self.finished: list[bool] = []
        self.pruned: list[bool] = []
        self.depth: list[int] = []
        self.finals: list[str | None] = []
        self.steps = 0
        self.changed = 0.0
        self.streak = 0
        self._leader = self._compute_leader()

    # --- state queries -------------------------------------------------------------------------
    def live(self) -> list[int]:
        """Opened, unpruned, unfinished slots."""
        return [i for i in range(len(self.answers)) if not self.pruned[i] and not self.finished[i]]

    def _compute_leader(self) -> str | None:
        if self.finals:
            return _majority(self.finals)
        shown = [a for a, p in zip(self.answers, self.pruned, strict=True) if not p and a]
        return _majority(shown)

    @property
    def leader(self) -> str | None:
        """The answer ANSWER submits (see the module docstring)."""
        return self._leader

    def action_masks(self) -> np.ndarray:
        """int8 ``[N_ACTIONS]`` legality of the macro actions."""
        live = self.live()
        lead = self._leader
        agree = sum(1 for i in live if self.answers[i] == lead)
        return np.array(
            [
                1,
                1 if self.h.branches_left > 0 else 0,
                1 if live else 0,
                1 if agree > 0 else 0,
                1 if lead is not None and agree < len(live) else 0,
                1 if self.h.branches_left > 0 else 0,
            ],
            np.int8,
        )

    def features(self) -> np.ndarray:
        """float32 ``[N_FEATURES]`` observation (see :data:`FEATURES`)."""
        s = self.s
        n_open = len(self.answers)
        live = self.live()
        n_fin = sum(self.finished)
        n_pruned = sum(self.pruned)
        _w, f1, f2 = top2_py(self.finals)
        shown = [a for a, p in zip(self.answers, self.pruned, strict=True) if not p and a]
        _w2, l1, l2 = top2_py(shown)
        lead = self._leader
        agree = sum(1 for a in shown if a == lead) / len(shown) if shown else 0.0
        depth = sum(self.depth[i] for i in live) / (40.0 * len(live)) if live else 0.0
        f = np.array(
            [
                n_open / s,
                len(live) / s,
                n_fin / s,
                n_pruned / s,
                self.h.branches_left / s,
                min(self.h.tokens_used / 1e6, FEATURE_HIGH),
                len(self.finals) / s,
                f1 / s,
                f2 / s,
                beta_conf(f1, f2),
                l1 / s,
                l2 / s,
                beta_conf(l1, l2),
                agree,
                len(set(shown)) / s,
                min(depth, FEATURE_HIGH),
                self.changed,
                min(self.streak / 10.0, 1.0),
                min(self.steps / self.max_steps, 1.0),
                1.0 if self.finals else 0.0,
            ],
            np.float32,
        )
        return f

    # --- acting ----------------------------------------------------------------------------------
    def _deepen(self, slots: list[int]) -> None:
        changed = 0
        for i in slots:
            before = self.answers[i]
            answer, finished = self.h.probe_more(i)
            self.depth[i] += 1
            self.answers[i] = answer
            if finished:
                self.finished[i] = True
                self.finals.append(answer)
            changed += answer != before
        self.changed = changed / len(slots) if slots else 0.0

    def apply(self, action: int) -> dict[str, Any] | None:
        """Carry out a legal macro action; returns the handle's result dict after ANSWER."""
        self.steps += 1
        if action == ANSWER:
            return self.h.submit(self._leader)
        if action == WIDEN:
            out = self.h.probe_new()
            if out is not None:
                answer, _slot, finished = out
                self.answers.append(answer)
                self.finished.append(finished)
                self.pruned.append(False)
                self.depth.append(1)
                if finished:
                    self.finals.append(answer)
        elif action == SAMPLE:
            answer = self.h.full_read()
            if answer is not None:
                self.answers.append(answer)
                self.finished.append(True)
                self.pruned.append(False)
                self.depth.append(0)  # read to the end; depth features cover live slots only
                self.finals.append(answer)
        elif action == DEEPEN_ALL:
            self._deepen(self.live())
        elif action == DEEPEN_LEADERS:
            lead = self._leader
            self._deepen([i for i in self.live() if self.answers[i] == lead])
        elif action == PRUNE_DISSENTERS:
            lead = self._leader
            for i in self.live():
                if self.answers[i] != lead:
                    self.h.prune(i)
                    self.pruned[i] = True
        else:
            raise ValueError(f"Unknown macro action {action}; valid: 0..{N_ACTIONS - 1}.")
        new = self._compute_leader()
        self.streak = self.streak + 1 if new == self._leader else 0
        self._leader = new
        return None
