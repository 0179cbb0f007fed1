"""The published protocol for a policy with ``predict`` (SB3, sb3-contrib or your own).

:func:`evaluate_policy` plays the policy on the registered env it was trained on
(``tts_gym/ReplayMacro-v0`` or ``tts_gym/Replay-v0``) for every (shuffle seed, question) of the
protocol (the episode of ``reset(options={"question": q, "shuffle_seed": s})``, as the
controllers get), and scores the answers with the one scoring rule of
:mod:`tts_gym.evaluation.scoring`: the result is an :class:`~tts_gym.EvalResult`, comparable row
for row with :func:`tts_gym.evaluate`'s.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from tts_gym.env.macro_env import DEFAULT_MAX_MACRO_STEPS, MacroActionEnv
from tts_gym.env.params import DEFAULT_MAX_BRANCHES
from tts_gym.env.replay_env import ReplayEnv
from tts_gym.evaluation.protocol import protocol_seeds
from tts_gym.evaluation.result import EvalResult
from tts_gym.evaluation.scoring import score
from tts_gym.kernels.transitions import COST_MODES
from tts_gym.registration import MAX_EPISODE_STEPS
from tts_gym.store import ReplayStore

ACTION_SPACES = ("macro", "atomic")


def accepts_masks(policy: Any) -> bool:
    """Whether ``policy.predict`` takes an ``action_masks`` keyword (sb3-contrib's maskable
    algorithms do; SB3's PPO and DQN do not)."""
    try:
        params = inspect.signature(policy.predict).parameters
    except (TypeError, ValueError):  # a builtin or C callable: try the keyword
        return True
    return "action_masks" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


def policy_actor(policy: Any, deterministic: bool = True) -> Callable[[Any, np.ndarray], int]:
    """``act(obs, mask) -> int`` calling ``policy.predict`` (with ``action_masks=`` when it
    takes them). ``predict`` may return ``(action, state)`` as SB3 does, or the action alone.

    Raises:
        TypeError: ``policy`` has no ``predict``.
    """
    predict = getattr(policy, "predict", None)
    if not callable(predict):
        raise TypeError(
            f"evaluate_policy needs an object with predict(obs, action_masks=..., "
            f"deterministic=...) (an SB3 or sb3-contrib model), got {type(policy).__name__}; "
            f"score a controller with solve(question) with tts_gym.evaluate instead."
        )
    masked = accepts_masks(policy)

    def act(obs: Any, mask: np.ndarray) -> int:
        if masked:
            out = predict(obs, action_masks=mask.astype(bool), deterministic=deterministic)
        else:
            out = predict(obs, deterministic=deterministic)
        action = out[0] if isinstance(out, tuple) else out
        return int(np.asarray(action).reshape(-1)[0])

    return act


def make_eval_env(
    store: ReplayStore,
    actions: str,
    max_branches: int,
    max_macro_steps: int,
    cost_mode: str,
) -> gym.Env:
    """The env a policy is scored on: the macro env (it ends episodes by itself), or the atomic
    env under the registration's time limit. Illegal actions are the envs' default free
    no-ops (a macro no-op still counts as a macro step)."""
    if actions == "macro":
        return MacroActionEnv(
            store=store, max_branches=max_branches, cost_mode=cost_mode,
            max_macro_steps=max_macro_steps,
        )
    return gym.wrappers.TimeLimit(
        ReplayEnv(store=store, max_branches=max_branches, cost_mode=cost_mode),
        MAX_EPISODE_STEPS,
    )


def _check(actions: str, policy: Any, env: gym.Env, seeds: int | Sequence[int]) -> list[int]:
    """The seed list, after checking that the policy observes what ``env`` returns."""
    space = getattr(policy, "observation_space", None)
    if isinstance(space, gym.spaces.Space):
        trained_on = "atomic" if isinstance(space, gym.spaces.Dict) else "macro"
        if trained_on != actions:
            raise ValueError(
                f"The policy observes {type(space).__name__} observations of the {trained_on} "
                f"env, not the {actions} env's; pass actions={trained_on!r}."
            )
        obs_space = env.observation_space
        if (isinstance(space, gym.spaces.Dict) and isinstance(obs_space, gym.spaces.Dict)
                and "status" in space.spaces):
            slots = (space["status"].shape or (0,))[0]
            if slots != (obs_space["status"].shape or (0,))[0]:
                raise ValueError(
                    f"The policy was trained with max_branches={slots}; pass "
                    f"max_branches={slots} (the observation has one entry per slot)."
                )
        elif space.shape != env.observation_space.shape:
            raise ValueError(
                f"The policy observes {space}, not the macro env's {env.observation_space}; "
                f"score it on the env it was trained on."
            )
    return protocol_seeds(seeds)


def evaluate_policy(
    policy: Any,
    store: ReplayStore,
    seeds: int | Sequence[int] = 100,
    *,
    actions: str = "macro",
    deterministic: bool = True,
    max_branches: int = DEFAULT_MAX_BRANCHES,
    max_macro_steps: int = DEFAULT_MAX_MACRO_STEPS,
    cost_mode: str = "reference",
    name: str | None = None,
    progress: Callable[[int], Any] | None = None,
) -> EvalResult:
    """Score a policy with ``predict(obs, action_masks=...)`` by the published protocol.

    Every (seed, question) episode is the protocol's (``reset(options={"question": q,
    "shuffle_seed": s})``) on the env the policy acts on; actions are ``policy.predict(obs,
    action_masks=mask, deterministic=deterministic)`` (without ``action_masks`` when ``predict``
    does not take it: then an illegal action is the env's free no-op, and on the macro env it
    still counts towards ``max_macro_steps``). An atomic episode cut by the time limit (20,000
    steps) has no answer and is scored wrong.

    Args:
        policy: An SB3 / sb3-contrib model (``MaskablePPO``, ``PPO``, ``DQN``) or any object
            whose ``predict(obs, ...)`` returns an action or ``(action, state)``.
        store: The replay store (must carry gold answers).
        seeds: Number of shuffle seeds (0..n-1) or an explicit list; the paper uses 100.
        actions: ``"macro"`` (``tts_gym/ReplayMacro-v0``, 20 float32 features) or
            ``"atomic"`` (``tts_gym/Replay-v0``, the Dict observation).
        deterministic: Passed to ``predict`` (the greedy action by default).
        max_branches: Env slots S (as in training).
        max_macro_steps: The macro env's step limit (as in training).
        cost_mode: ``"reference"`` (the paper's charging) or ``"exact"``.
        name: The result's controller name (default ``policy-<class name>``).
        progress: Optional callable ``progress(n_seeds_done)``.

    Returns:
        An :class:`~tts_gym.EvalResult` (``path="env"``), as :func:`tts_gym.evaluate` returns.

    Raises:
        TypeError: ``policy`` has no ``predict``.
        ValueError: Unknown ``actions`` or ``cost_mode``, bad seeds, a gold-free store, or a
            policy whose observation space is not the chosen env's.
    """
    if actions not in ACTION_SPACES:
        raise ValueError(f"actions must be one of {ACTION_SPACES}, got {actions!r}.")
    if cost_mode not in COST_MODES:
        raise ValueError(f"cost_mode must be one of {sorted(COST_MODES)}, got {cost_mode!r}.")
    if not store.has_gold:
        raise ValueError(f"Store {store.name} has no gold answers (a gold-free copy); it cannot "
                         "be scored. Evaluate on the original store.")
    act = policy_actor(policy, deterministic)
    env = make_eval_env(store, actions, max_branches, max_macro_steps, cost_mode)
    seed_list = _check(actions, policy, env, seeds)
    base: Any = env.unwrapped  # the env with action_masks() (the macro env is its own)
    shape = (len(seed_list), store.n_questions)
    ids = np.full(shape, -1, np.int32)
    tokens = np.zeros(shape, np.int64)
    unrevealed = np.zeros(shape, bool)
    start = time.perf_counter()
    for i, s in enumerate(seed_list):
        for q in range(store.n_questions):
            obs, info = env.reset(options={"question": q, "shuffle_seed": s})
            done = False
            while not done:
                obs, _r, terminated, truncated, info = env.step(act(obs, base.action_masks()))
                done = terminated or truncated
            if "answer" in info:  # a truncated atomic episode has none: -1, scored wrong
                ids[i, q] = store.answer_id(q, info["answer"])
            tokens[i, q] = info["tokens"]
            unrevealed[i, q] = bool(info.get("unrevealed_answer", False))
        if progress is not None:
            progress(1)
    env.close()
    params = {"actions": actions, "deterministic": deterministic, "max_branches": max_branches}
    if actions == "macro":
        params["max_macro_steps"] = max_macro_steps
    return score(
        store, seed_list, ids, tokens, controller=name or f"policy-{type(policy).__name__}",
        params=params, cost_mode=cost_mode, path="env", seconds=time.perf_counter() - start,
        unrevealed=unrevealed)
