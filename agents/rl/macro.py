"""A small macro-action space over the atomic replay env, learnable by an RL agent.

The atomic env (``tts_gym/Replay-v0``) has 3 + 3 S actions (195 for S = 64) and a per-slot Dict
observation; credit assignment over thousands of atomic steps is hard. The macro env keeps the
same episodes, charges and reward, but offers six decisions, each a short sequence of the paper's
primitives (carried out through :class:`~tts_gym.handle.QuestionHandle`, so as atomic env steps):

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
weight, even at 0 (see README, "RL baselines"); one SAMPLE adds one final answer to the vote, so
self-consistency at any k is a short action sequence. Models trained on the first five keep
working: their ``config.json`` lists five actions and the controller masks SAMPLE for them.

A slot is *live* when opened, unpruned and unfinished. The *leader* is the majority of the
revealed final answers (first-occurrence tie rule, as the env's own aggregation), else, when no
branch has finished, the majority of the latest revealed answers of unpruned slots in slot order.

Legality (``action_masks()``, int8 ``[6]``): ANSWER always; WIDEN and SAMPLE while a branch is
left; DEEPEN_ALL while a slot is live; DEEPEN_LEADERS while a live slot shows the leader;
PRUNE_DISSENTERS while a live slot shows another answer.

Observation: float32 ``[N_FEATURES]`` (see :data:`FEATURES`), built from what the controller has
been told by the handle only (answers as strings, never gold): counts of slots by state, tokens
spent, vote statistics (leader/runner-up counts and the Beta confidence of the published CMC),
agreement, depth, the share of live slots whose answer changed at the last deepening, how long
the leader has been stable, and elapsed macro steps.

Reward: the atomic env's, summed: ``-cost_weight × tokens`` charged by the macro step, +1 if the
submitted answer is correct. After ``max_macro_steps`` macro steps the env answers by itself
(ANSWER with the leader; terminated), the rule the evaluation controller follows too.

The same :class:`MacroCore` drives training (:class:`MacroActionEnv`) and evaluation
(:class:`agents.rl.policy.RLController` over the protocol's question handle), so a policy sees
identical observations in both.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from tts_gym.env.replay_env import ReplayEnv
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


def _majority(answers: list[str]) -> str | None:
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
        self.finals: list[str] = []
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


class MacroActionEnv(gym.Env):
    """The macro-action MDP over a :class:`~tts_gym.env.ReplayEnv` (see module docstring).

    A ``gym.Env`` that owns its atomic env (rather than a ``gym.Wrapper``), so Gymnasium's
    ``check_env`` tests it as it is; ``self.env`` is the atomic env it drives.

    Args:
        env: A ReplayEnv (not time-limited: the macro env has its own limit).
        max_macro_steps: Answer automatically after this many macro steps (default 256; keep
            it well above a useful episode's length, or the limit, not the policy, decides when
            to stop: with 64, short-trained policies learned to never answer and let the limit
            answer for them).
        illegal_action: ``"ignore"`` (a free no-op flagged in ``info["illegal_action"]``, for
            unmasked algorithms and ``check_env``) or ``"raise"``.

    >>> from tts_gym.env import ReplayEnv
    >>> from tts_gym.testing import tiny_store
    >>> env = MacroActionEnv(ReplayEnv(store=tiny_store(), max_branches=4))
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.action_masks().tolist()
    ((20,), [1, 1, 0, 0, 0, 1])
    >>> obs, reward, terminated, truncated, info = env.step(WIDEN)
    >>> int(info["tokens"]) > 0, reward < 0
    (True, True)
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self, env: gym.Env, max_macro_steps: int = 256, illegal_action: str = "ignore"
    ) -> None:
        base = env.unwrapped
        if not isinstance(base, ReplayEnv):
            raise TypeError(f"MacroActionEnv wraps a tts_gym ReplayEnv, got {type(base).__name__}.")
        if illegal_action not in ("ignore", "raise"):
            raise ValueError(f"illegal_action must be 'ignore' or 'raise', got {illegal_action!r}.")
        if max_macro_steps < 1:
            raise ValueError(f"max_macro_steps must be >= 1, got {max_macro_steps}.")
        self.env = env
        self.base = base
        self.render_mode = base.render_mode
        self.max_macro_steps = int(max_macro_steps)
        self.illegal_action = illegal_action
        self.action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = spaces.Box(0.0, FEATURE_HIGH, (N_FEATURES,), np.float32)
        self.core: MacroCore | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.env.reset(seed=seed, options=options)
        handle = QuestionHandle(self.env, record_trace=False)
        self.core = MacroCore(handle, self.base.layout.slots, self.max_macro_steps)
        return self.core.features(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        core = self.core
        if core is None or core.h.result is not None:
            raise RuntimeError("The episode has ended: call reset() first.")
        action = int(action)
        legal = 0 <= action < N_ACTIONS and core.action_masks()[action] == 1
        if not legal:
            if self.illegal_action == "raise":
                name = ACTION_NAMES[action] if 0 <= action < N_ACTIONS else "out of range"
                raise ValueError(
                    f"Illegal macro action {action} ({name}); take actions with "
                    f"info['action_mask'][a] == 1 (or env.unwrapped.action_masks() through "
                    f"wrappers), or make the env with illegal_action='ignore'."
                )
            core.steps += 1
            info = self._info()
            info["illegal_action"] = True
            if core.steps >= self.max_macro_steps:
                result = core.apply(ANSWER)
                return core.features(), self._finish(info, result), True, False, info
            return core.features(), 0.0, False, False, info
        before = core.h.tokens_used
        result = core.apply(action)
        reward = -self.base.params.cost_weight * float(core.h.tokens_used - before)
        info = self._info()
        if result is not None:
            reward += self._finish(info, result)
            return core.features(), float(reward), True, False, info
        if core.steps >= self.max_macro_steps:
            # the step limit answers with the leader (as the evaluation controller does)
            result = core.apply(ANSWER)
            return core.features(), float(reward) + self._finish(info, result), True, False, info
        return core.features(), float(reward), False, False, info

    def action_masks(self) -> np.ndarray:
        """int8 ``[N_ACTIONS]`` macro legality (the name sb3-contrib's MaskablePPO looks for)."""
        if self.core is None or self.core.h.result is not None:
            mask = np.zeros(N_ACTIONS, np.int8)
            mask[ANSWER] = 1
            return mask
        return self.core.action_masks()

    def render(self) -> str | None:
        text = self.env.render()
        if text is None or self.core is None:
            return text
        return f"{text}\nleader={self.core.leader!r} macro_steps={self.core.steps}"

    @staticmethod
    def _finish(info: dict[str, Any], result: dict[str, Any]) -> float:
        """Record the submitted answer in ``info``; returns the correctness reward."""
        info["answer"] = result["answer"]
        info["correct"] = bool(result["correct"])
        return 1.0 if result["correct"] else 0.0

    def close(self) -> None:
        self.env.close()

    def _info(self) -> dict[str, Any]:
        return {
            "action_mask": self.action_masks(),
            "tokens": self.core.h.tokens_used,
            "question": self.base.question,
        }


def make_macro_env(
    store: Any,
    cost_weight: float = 1e-6,
    max_branches: int = 64,
    max_macro_steps: int = 256,
    illegal_action: str = "ignore",
    render_mode: str | None = None,
) -> MacroActionEnv:
    """A :class:`MacroActionEnv` over a fresh :class:`~tts_gym.env.ReplayEnv` on ``store``."""
    base = ReplayEnv(
        store=store, max_branches=max_branches, cost_weight=cost_weight, render_mode=render_mode
    )
    return MacroActionEnv(base, max_macro_steps=max_macro_steps, illegal_action=illegal_action)
