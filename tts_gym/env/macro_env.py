"""The registered macro-action env ``tts_gym/ReplayMacro-v0``: six decisions over the replay MDP."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from tts_gym.env.macro_core import (
    ACTION_NAMES,
    ANSWER,
    FEATURE_HIGH,
    N_ACTIONS,
    N_FEATURES,
    MacroCore,
)
from tts_gym.env.params import DEFAULT_MAX_BRANCHES, ILLEGAL_ACTION_MODES, check_render_mode
from tts_gym.env.render import LEGEND
from tts_gym.env.replay_env import ReplayEnv
from tts_gym.handle import QuestionHandle

DEFAULT_MAX_MACRO_STEPS = 256


class MacroActionEnv(gym.Env):
    """Test-time scaling with six macro actions over the replay MDP (``tts_gym/ReplayMacro-v0``).

    ## Description

    The episodes, charging and reward of ``tts_gym/Replay-v0`` (one question under one order of
    its pre-collected branches), with six decisions instead of 3 + 3 S atomic actions: each is a
    short sequence of the paper's primitives (``probe_new``, ``probe_more``, ``full_read``,
    ``prune``) carried out as atomic steps of an inner :class:`~tts_gym.env.ReplayEnv` through
    the question handle. Credit assignment over thousands of atomic steps is hard; over these it
    is learnable in a minute of CPU (docs/rl.md). A ``gym.Env`` that owns its atomic env (not a
    ``gym.Wrapper``), so the checkers test it as it is; ``self.env`` is the atomic env.

    ## Action Space

    ``Discrete(6)``:

    | index | action           | atomic actions                                                 |
    |-------|------------------|----------------------------------------------------------------|
    | 0     | ANSWER           | ANSWER, submitting the leader                                  |
    | 1     | WIDEN            | ``probe_new``: BRANCH, PROBE(new slot)                         |
    | 2     | DEEPEN_ALL       | ``probe_more`` every live slot                                 |
    | 3     | DEEPEN_LEADERS   | ``probe_more`` every live slot showing the leader              |
    | 4     | PRUNE_DISSENTERS | PRUNE every live slot showing another answer                   |
    | 5     | SAMPLE           | ``full_read``: open a branch and read it to its final answer   |

    A slot is live when opened, unpruned and unfinished. The leader is the majority of the
    revealed final answers, else of the latest revealed answers of unpruned slots (ties: first
    occurrence). Legal actions: ``info["action_mask"]`` and ``action_masks()`` (int8 ``[6]``;
    through ``gym.make``'s wrappers: ``env.unwrapped.action_masks()``). ANSWER is always legal.
    An illegal action is a free no-op flagged in ``info["illegal_action"]`` that still counts as
    a macro step (``illegal_action="ignore"``, the default), or a ``ValueError`` (``"raise"``).

    ## Observation Space

    ``Box(0, 8, (20,), float32)``: slot counts, tokens, vote statistics over final and latest
    answers (leader and runner-up counts, the Beta confidence of the published CMC), agreement,
    depth, answer changes at the last deepening, leader stability and elapsed steps, in the
    order of :data:`tts_gym.env.macro_core.FEATURES`. Only what the primitives returned: never
    gold, never an unrevealed probe.

    ## Rewards

    The atomic env's, summed over the macro step: ``-cost_weight × tokens`` charged, plus 1 if
    the submitted answer is correct.

    ## Starting State

    As ``tts_gym/Replay-v0``: ``reset(seed=s)`` draws a question and a branch order;
    ``reset(options={"question": q, "shuffle_seed": s})`` gives the published protocol's episode.

    ## Episode End

    Terminated at ANSWER. After ``max_macro_steps`` macro steps the env answers by itself with
    the leader (terminated, not truncated: the answer is scored as any other), so an episode
    never outlasts ``max_macro_steps`` and the registration adds no ``TimeLimit``.

    ## Arguments

    ``gym.make("tts_gym/ReplayMacro-v0", max_macro_steps=256, illegal_action="ignore",
    render_mode=None, **replay_kwargs)``, where ``replay_kwargs`` are ``tts_gym/Replay-v0``'s
    (``model``, ``benchmark``, ``data_dir``, ``store``, ``max_branches``, ``cost_weight``,
    ``cost_mode``, ...). ``MacroActionEnv(env)`` drives an existing ReplayEnv instead.
    ``render_mode``: ``"ansi"`` (the atomic picture plus the leader) or ``"rgb_array"`` (the
    atomic env's frame).

    >>> import gymnasium as gym, tts_gym
    >>> from tts_gym.testing import tiny_store
    >>> env = gym.make("tts_gym/ReplayMacro-v0", store=tiny_store(), max_branches=4)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, info["action_mask"].tolist()
    ((20,), [1, 1, 0, 0, 0, 1])
    >>> obs, reward, terminated, truncated, info = env.step(1)   # WIDEN
    >>> info["tokens"] > 0, reward < 0
    (True, True)

    ## Version History

    * v0: registered id for the macro env that ``agents.rl.macro.MacroActionEnv`` provided since
      0.1.0 (same actions, features, reward and step-limit rule; models trained on it keep their
      numbers).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        env: gym.Env | None = None,
        max_macro_steps: int = DEFAULT_MAX_MACRO_STEPS,
        illegal_action: str = "ignore",
        render_mode: str | None = None,
        **replay_kwargs: Any,
    ) -> None:
        if illegal_action not in ILLEGAL_ACTION_MODES:
            raise ValueError(
                f"illegal_action must be one of {ILLEGAL_ACTION_MODES}, got {illegal_action!r}."
            )
        if not isinstance(max_macro_steps, int) or max_macro_steps < 1:
            raise ValueError(f"max_macro_steps must be an int >= 1, got {max_macro_steps!r}.")
        check_render_mode(render_mode, self.metadata["render_modes"])
        if env is None:
            env = ReplayEnv(render_mode=render_mode, **replay_kwargs)
        elif replay_kwargs or (render_mode is not None and render_mode != env.render_mode):
            given = sorted(replay_kwargs) + (["render_mode"] if render_mode is not None else [])
            raise TypeError(
                f"MacroActionEnv got a ReplayEnv and also {', '.join(given)}; pass these to the "
                f"ReplayEnv you build, or leave env out and pass them here."
            )
        base = env.unwrapped
        if not isinstance(base, ReplayEnv):
            raise TypeError(
                f"MacroActionEnv drives a tts_gym ReplayEnv, got {type(base).__name__}."
            )
        self.env = env
        self.base = base
        self.render_mode = base.render_mode
        self.max_macro_steps = max_macro_steps
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
        """int8 ``[6]`` macro legality (the name sb3-contrib's MaskablePPO looks for)."""
        if self.core is None or self.core.h.result is not None:
            mask = np.zeros(N_ACTIONS, np.int8)
            mask[ANSWER] = 1
            return mask
        return self.core.action_masks()

    def render(self) -> str | np.ndarray | None:
        """``"ansi"``: the atomic env's picture plus the leader; ``"rgb_array"``: its frame."""
        frame = self.base.render()
        if self.render_mode != "ansi" or not isinstance(frame, str) or self.core is None:
            return frame
        legend = "".join(line + "\n" for line in LEGEND)
        body = frame.removesuffix(legend)  # the macro state goes above the legend
        return f"{body}leader={self.core.leader!r} macro_steps={self.core.steps}\n{legend}"

    @staticmethod
    def _finish(info: dict[str, Any], result: dict[str, Any] | None) -> float:
        """Record the submitted answer in ``info``; returns the correctness reward."""
        assert result is not None  # apply(ANSWER) returns the handle's result
        info["answer"] = result["answer"]
        info["correct"] = bool(result["correct"])
        return 1.0 if result["correct"] else 0.0

    def close(self) -> None:
        self.env.close()

    def _info(self) -> dict[str, Any]:
        assert self.core is not None  # reset() made it
        return {
            "action_mask": self.action_masks(),
            "tokens": self.core.h.tokens_used,
            "question": self.base.question,
        }


def make_macro_env(
    store: Any,
    cost_weight: float = 1e-6,
    max_branches: int = DEFAULT_MAX_BRANCHES,
    max_macro_steps: int = DEFAULT_MAX_MACRO_STEPS,
    illegal_action: str = "ignore",
    render_mode: str | None = None,
) -> MacroActionEnv:
    """A :class:`MacroActionEnv` over a fresh ReplayEnv on ``store`` (``gym.make`` without the
    wrappers: the same as ``gym.make("tts_gym/ReplayMacro-v0", store=store, ...).unwrapped``)."""
    return MacroActionEnv(
        store=store,
        cost_weight=cost_weight,
        max_branches=max_branches,
        max_macro_steps=max_macro_steps,
        illegal_action=illegal_action,
        render_mode=render_mode,
    )
