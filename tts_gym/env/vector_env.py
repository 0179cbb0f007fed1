"""A native batched version of ``tts_gym/Replay-v0``: N episodes stepped in one numba call.

``gym.make_vec("tts_gym/Replay-v0", num_envs=N, vectorization_mode="vector_entry_point",
store=...)`` (or ``model=..., benchmark=...``) builds a :class:`ReplayVectorEnv`. Its state is
the :class:`~tts_gym.env.ReplayEnv` state arrays stacked on a leading axis of length N, and
:func:`vec_step` loops over the N envs calling the very kernels the single env calls
(:func:`tts_gym.env.dynamics.env_step`, which also keeps each env's observation and legality
mask current, ``reset_state``, ``aggregate``, and through them
:mod:`tts_gym.kernels.transitions`): there is no second copy of the dynamics.

Semantics equal N single envs made with ``gym.make("tts_gym/Replay-v0", ...)`` (same time limit):

- ``reset(seed=s)`` seeds env i with ``s + i`` (a list seeds each env), as ``SyncVectorEnv``
  does; every random draw (question, branch order) of env i comes from its own
  ``numpy.random.Generator``, in the same order as :meth:`ReplayEnv.reset` makes them. Draws
  without options (autoresets, ``reset()`` without options) are made for all starting envs in
  one jitted call (:func:`~tts_gym.env.episode_start.draw_episodes`, bit-identical to the
  single env's draws), not env by env in Python.
- ``reset(options=...)`` takes the single env's options (``question``, ``shuffle_seed``,
  ``order``), each either one value for every env or a sequence of N values, plus
  ``reset_mask`` (bool ``[N]``) to reset only some envs.
- Autoreset: ``AutoresetMode.NEXT_STEP`` (Gymnasium 1.x default). The step after an episode
  ends resets that env (its action is ignored) and returns reward 0, not terminated/truncated.
- ``action_masks()`` returns int8 ``[N, 3 + 3 S]``; ``info["action_mask"]`` holds the same.
- ``info`` arrays (with ``_key`` masks): ``action_mask``, ``tokens``, ``question``, ``opened``
  for every env; ``answer`` (str or None) and ``correct`` for envs that answered this step;
  ``illegal_action`` where an env's action was illegal (a free no-op, the default
  ``illegal_action="ignore"``; with ``"raise"`` the step raises and steps no env).

>>> import gymnasium as gym, tts_gym
>>> from tts_gym.testing import tiny_store
>>> envs = gym.make_vec("tts_gym/Replay-v0", num_envs=3, vectorization_mode="vector_entry_point",
...                     store=tiny_store(), max_branches=4)
>>> obs, info = envs.reset(seed=0)
>>> obs["status"].shape, envs.action_masks().shape
((3, 4), (3, 15))
>>> obs, rewards, terminated, truncated, info = envs.step([2, 2, 0])
>>> terminated.tolist(), bool(info["_correct"][2])
([False, False, True], True)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from numba import njit

from tts_gym.env.actions import ActionLayout
from tts_gym.env.dynamics import (
    MASK,
    STEP_ANSWER,
    STEP_ILLEGAL,
    aggregate,
    env_step,
    observation_copy,
    reset_state,
    stacked_views,
)
from tts_gym.env.episode_start import draw_episodes, generator_list, start_episode
from tts_gym.env.params import DEFAULT_MAX_BRANCHES, EnvParams, check_render_mode, resolve_store
from tts_gym.env.raster import render_rgb
from tts_gym.env.render import render_ansi
from tts_gym.kernels.state import (
    COST,
    EP_COUNTERS,
    EP_ORDER,
    OPENED,
    new_book,
    new_episode,
    stack,
)
from tts_gym.kernels.transitions import env_data
from tts_gym.kernels.votes import beta_conf_table
from tts_gym.store import ReplayStore

KIND_STEP = 0
KIND_RESET = 1
KIND_KEEP = 2


@njit(cache=True, inline="always")
def first_illegal(actions, kinds, masks):
    """The first stepping env whose action its current mask forbids, else -1 (``masks`` holds
    every stepping env's legality mask: fill_mask is is_legal's rule)."""
    n_actions = masks.shape[1]
    for i in range(kinds.shape[0]):
        a = actions[i]
        if kinds[i] == KIND_STEP and (a < 0 or a >= n_actions or masks[i, a] == 0):
            return i
    return -1


@njit(cache=True, _nrt=False)  # type: ignore[call-overload]  # _nrt: numba-private, unstubbed
def vec_step(
    data,
    n_branches,
    gold,
    qs,
    ep_arrays,
    book_arrays,
    actions,
    kinds,
    slots,
    mode,
    reveal_on_advance,
    probe_cost,
    cost_weight,
    strict,
    conf,
    counts,
    rewards,
    terminated,
    answers,
    illegal,
    elapsed,
    max_steps,
    truncated,
    needs_reset,
):
    """Step (or reset) every env of a batch through the single env's kernels.

    Args:
        data: the store's kernel data tuple (:func:`~tts_gym.kernels.transitions.env_data`).
        n_branches, gold: int32 ``[Q]`` store arrays.
        qs: int64 ``[N]`` question of each env.
        ep_arrays: the episode tuple of :mod:`~tts_gym.kernels.transitions` with a leading
            axis N on every array (order ``[N, W]``, depth/spent/finished/current ``[N, C]``,
            counters ``[N, 2]``).
        book_arrays: the bookkeeping tuple of :mod:`~tts_gym.env.dynamics`, leading axis N.
        actions: int64 ``[N]`` atomic actions (used where ``kinds`` is KIND_STEP).
        kinds: int8 ``[N]``: KIND_STEP steps env i; KIND_RESET clears its episode (its question
            and order were already written); KIND_KEEP leaves it as it is (observation only).
        slots, mode, reveal_on_advance, probe_cost: the env parameters (as in ``env_step``).
        cost_weight: reward per token charged (float, sign applied here).
        strict: check every action first and step nothing if one is illegal.
        conf, counts: ``beta_conf_table`` and an int64 zero scratch array (as in the env).
        rewards, terminated, answers, illegal: outputs float64/bool/int32/bool ``[N]``.
        elapsed: int64 ``[N]`` steps of each episode (0 after KIND_RESET, +1 after KIND_STEP).
        max_steps: time limit (``truncated`` once ``elapsed >= max_steps``); -1: none.
        truncated: bool output ``[N]``.
        needs_reset: bool ``[N]``, set to ``terminated | truncated`` for stepped/reset envs
            (KIND_KEEP envs keep theirs).

    Returns:
        ``(bad, n_answered, n_illegal, n_needing_reset)``: ``bad`` is -1, or (strict only) the
        first env whose action is illegal (nothing was changed then; the counts are 0). The
        counts let the caller skip per-env Python work when they are 0.
    """
    n = qs.shape[0]
    if strict:
        bad = first_illegal(actions, kinds, book_arrays[MASK])
        if bad >= 0:
            return bad, 0, 0, 0
    n_answered = 0
    n_illegal = 0
    for i in range(n):
        q = qs[i]
        ep, book = stacked_views(ep_arrays, book_arrays, i)
        kind = kinds[i]
        rewards[i] = 0.0
        terminated[i] = False
        answers[i] = -1
        illegal[i] = False
        if kind == KIND_RESET:
            elapsed[i] = 0
        elif kind == KIND_STEP:
            elapsed[i] += 1
        # as gymnasium's TimeLimit: truncated at the limit even if also terminated
        truncated[i] = max_steps >= 0 and elapsed[i] >= max_steps
        if kind == KIND_RESET:
            reset_state(n_branches, q, ep, book, slots)
        elif kind == KIND_STEP:
            status, charge = env_step(
                data,
                n_branches,
                q,
                ep,
                book,
                actions[i],
                slots,
                mode,
                reveal_on_advance,
                probe_cost,
                conf,
                counts,
            )
            if status == STEP_ILLEGAL:
                illegal[i] = True
                n_illegal += 1
            else:
                rewards[i] = -cost_weight * float(charge)
                if status == STEP_ANSWER:
                    a = aggregate(ep, book, counts)
                    answers[i] = a
                    terminated[i] = True
                    n_answered += 1
                    if a >= 0 and a == gold[q]:
                        rewards[i] += 1.0
        if kind != KIND_KEEP:
            needs_reset[i] = terminated[i] or truncated[i]
    n_done = 0
    for i in range(n):
        n_done += needs_reset[i]
    return -1, n_answered, n_illegal, n_done


def _per_env(value: Any, n: int, name: str) -> list[Any]:
    """One option value per env: a scalar for all, or a sequence of exactly ``n``."""
    if isinstance(value, (str, bytes)) or np.ndim(value) == 0:
        return [value] * n
    if name == "order" and np.ndim(value) == 1:
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(
            f"options[{name!r}] has {len(values)} values for {n} envs; give one value for all "
            f"envs or exactly one per env."
        )
    return values


class ReplayVectorEnv(VectorEnv):
    """N replay episodes with stacked state, stepped by one jitted loop (see module docstring).

    Args:
        num_envs: N, the number of episodes stepped together.
        model, benchmark, data_dir, store: the store, as for :class:`~tts_gym.env.ReplayEnv`.
        max_branches, cost_weight, cost_mode, reveal_on_advance, probe_cost, illegal_action:
            the single env's settings (:class:`~tts_gym.env.EnvParams`).
        max_episode_steps: time limit per episode (``truncated``), as the registration's
            ``TimeLimit`` for the single env; None: no limit.
        render_mode: None, ``"ansi"`` (``render()`` returns one string per env) or
            ``"rgb_array"`` (one uint8 ``[H, W, 3]`` frame per env).
    """

    metadata = {
        "render_modes": ["ansi", "rgb_array"],
        "render_fps": 4,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        model: str | None = None,
        benchmark: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        store: ReplayStore | None = None,
        max_branches: int = DEFAULT_MAX_BRANCHES,
        cost_weight: float = 1e-6,
        cost_mode: str = "reference",
        reveal_on_advance: bool = False,
        probe_cost: int = 0,
        illegal_action: str = "ignore",
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}.")
        store = resolve_store("ReplayVectorEnv", store, model, benchmark, data_dir)
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.params = EnvParams(
            max_branches=max_branches,
            cost_weight=cost_weight,
            cost_mode=cost_mode,
            reveal_on_advance=reveal_on_advance,
            probe_cost=probe_cost,
            illegal_action=illegal_action,
        )
        n = int(num_envs)
        self.num_envs = n
        self.store = store
        self.render_mode = render_mode
        self.max_episode_steps = max_episode_steps
        self.layout = ActionLayout(max_branches)
        self.single_action_space = spaces.Discrete(self.layout.n)
        self.action_space = batch_space(self.single_action_space, n)
        self.single_observation_space = self.params.observation_space(store)
        self.observation_space = batch_space(self.single_observation_space, n)
        self._data = env_data(store)
        self._ep = stack(new_episode(store.width, max_branches), n)
        self._book = stack(new_book(max_branches, store.max_probes, store.max_answers), n)
        self._counts = np.zeros(store.max_answers + 1, np.int64)
        self._conf = beta_conf_table(max_branches)
        self._q = np.zeros(n, np.int64)
        self._elapsed = np.zeros(n, np.int64)
        self._needs_reset = np.ones(n, bool)
        self._n_done = n
        self._all_step = np.zeros(n, np.int8)  # kinds when no env resets (KIND_STEP is 0)
        self._all_true = np.ones(n, bool)
        self._all_true.flags.writeable = False
        self._masks = self._book[MASK]  # [N, 3 + 3 S], kept current by the kernels
        self._masks[:, 0] = 1  # before the first reset: ANSWER only
        self._rngs: list[np.random.Generator] | None = None
        self._rng_list: Any = None  # the same generators as a numba typed list (built lazily)

    # --- Gymnasium VectorEnv API ----------------------------------------------------------------
    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        n = self.num_envs
        if seed is None:
            seeds: list[int | None] = [None] * n
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(n)]
        else:
            seeds = list(seed)
            if len(seeds) != n:
                raise ValueError(f"reset(seed=...) got {len(seeds)} seeds for {n} envs.")
        if self._rngs is None:
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
            self._rng_list = None
        else:
            for i, s in enumerate(seeds):
                if s is not None:
                    self._rngs[i] = seeding.np_random(s)[0]
                    if self._rng_list is not None:
                        self._rng_list[i] = self._rngs[i]
        self._np_random = self._rngs[0]
        options = dict(options or {})
        mask = np.asarray(options.pop("reset_mask", np.ones(n, bool)), bool)
        if mask.shape != (n,):
            raise ValueError(f"options['reset_mask'] must be a bool array of shape ({n},).")
        per = {k: _per_env(v, n, k) for k, v in options.items()}
        if per:
            for j in np.flatnonzero(mask):
                self._draw_episode(int(j), {k: v[j] for k, v in per.items()})
        else:
            self._draw_episodes(mask)
        kinds = np.where(mask, KIND_RESET, KIND_KEEP).astype(np.int8)
        obs = self._run(np.zeros(n, np.int64), kinds)
        self._needs_reset[mask] = False
        self._n_done = int(self._needs_reset.sum())
        self._elapsed[mask] = 0
        return obs, self._info(0, 0)

    def step(
        self, actions: Any
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._rngs is None:
            raise RuntimeError("Call reset() before step().")
        n = self.num_envs
        acts = np.asarray(actions, dtype=np.int64).reshape(-1)
        if acts.shape != (n,):
            raise ValueError(f"step() needs {n} actions (one per env), got shape {acts.shape}.")
        if self._n_done:
            resetting = self._needs_reset
            self._draw_episodes(resetting)
            # bool -> int8 gives KIND_RESET (1) where resetting and KIND_STEP (0) elsewhere
            kinds = resetting.astype(np.int8)
        else:
            kinds = self._all_step
        # the kernel counts steps, truncates and sets self._needs_reset (in place)
        obs = self._run(acts, kinds)
        info = self._info(self._n_answered, self._n_illegal)
        return obs, self._rewards, self._terminated, self._truncated, info

    def render(self) -> tuple[str, ...] | tuple[np.ndarray, ...] | None:
        """One picture per env, each what the single env renders in the same state."""
        if self.render_mode is None:
            return None
        out: list[Any] = []
        for i in range(self.num_envs):
            ep = tuple(a[i] for a in self._ep)
            book = tuple(a[i] for a in self._book)
            if self.render_mode == "ansi":
                out.append(render_ansi(int(self._q[i]), ep, book, self.layout.slots))
            else:
                out.append(render_rgb(int(self._q[i]), ep, book))
        return tuple(out)

    # --- helpers ---------------------------------------------------------------------------------
    def action_masks(self) -> np.ndarray:
        """int8 legality masks ``[N, 3 + 3 S]`` of the current states (a copy)."""
        return self._masks.copy()

    @property
    def tokens_used(self) -> np.ndarray:
        """int64 ``[N]`` tokens charged so far in each env's episode."""
        return self._ep[EP_COUNTERS][:, COST].copy()

    @property
    def questions(self) -> np.ndarray:
        """int64 ``[N]`` the current question of each env."""
        return self._q.copy()

    # --- internals -------------------------------------------------------------------------------
    @property
    def _ignore(self) -> bool:
        return self.params.illegal_action == "ignore"

    def _draw_episodes(self, which: np.ndarray) -> None:
        """Start an episode without options in every env where ``which`` (one jitted call)."""
        assert self._rngs is not None, "reset() seeds the generators first"
        if self._rng_list is None:
            self._rng_list = generator_list(self._rngs)
        draw_episodes(self._rng_list, which, self.store.n_branches, self._q, self._ep[EP_ORDER])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_rng_list"] = None  # a numba typed list does not pickle; rebuilt on demand
        return state

    def _draw_episode(self, i: int, opts: dict[str, Any]) -> None:
        """Choose env i's question and branch order exactly as :meth:`ReplayEnv.reset` does."""
        where = f" (env {i})" if opts else ""  # only option errors quote it
        assert self._rngs is not None, "reset() seeds the generators first"
        self._q[i] = start_episode(self.store, opts, self._rngs[i], self._ep[EP_ORDER][i], where)

    def _run(self, actions: np.ndarray, kinds: np.ndarray) -> dict[str, np.ndarray]:
        """Call :func:`vec_step`; fresh output arrays every call (they are returned as is)."""
        n, s, p = self.num_envs, self.layout.slots, self.params
        self._rewards = np.empty(n, np.float64)
        self._terminated = np.empty(n, bool)
        self._answers = np.empty(n, np.int32)
        self._illegal = np.empty(n, bool)
        self._truncated = np.empty(n, bool)
        bad, self._n_answered, self._n_illegal, self._n_done = vec_step(
            self._data,
            self.store.n_branches,
            self.store.gold,
            self._q,
            self._ep,
            self._book,
            actions,
            kinds,
            s,
            p.mode,
            p.reveal_on_advance,
            p.probe_cost,
            float(p.cost_weight),
            not self._ignore,
            self._conf,
            self._counts,
            self._rewards,
            self._terminated,
            self._answers,
            self._illegal,
            self._elapsed,
            -1 if self.max_episode_steps is None else int(self.max_episode_steps),
            self._truncated,
            self._needs_reset,
        )
        if bad >= 0:
            raise ValueError(
                f"Illegal action {int(actions[bad])} = {self.layout.describe(int(actions[bad]))} "
                f"in env {bad} (nothing was stepped). Take only actions with "
                f"info['action_mask'][i, a] == 1 or envs.unwrapped.action_masks()[i, a] == 1; or "
                f"drop illegal_action='raise' to make illegal actions free no-ops flagged in "
                f"info['illegal_action']."
            )
        return observation_copy(self._book)

    def _info(self, n_answered: int, n_illegal: int) -> dict[str, Any]:
        """The info dict of the last kernel call (``n_answered``/``n_illegal``: its counts)."""
        every = self._all_true  # read-only, shared by the always-present keys
        counters = self._ep[EP_COUNTERS]
        info: dict[str, Any] = {
            "action_mask": self._masks.copy(),
            "_action_mask": every,
            "tokens": counters[:, COST].copy(),
            "_tokens": every,
            "question": self._q.copy(),
            "_question": every,
            "opened": counters[:, OPENED].copy(),
            "_opened": every,
        }
        if n_answered:
            answered = self._terminated
            answers = self._answers
            strings = np.full(self.num_envs, None, dtype=object)
            correct = np.zeros(self.num_envs, bool)
            gold = self.store.gold
            for i in np.flatnonzero(answered).tolist():
                q = int(self._q[i])
                a = int(answers[i])
                strings[i] = self.store.answer_string(q, a)
                correct[i] = a >= 0 and a == gold[q]
            info["answer"] = strings
            info["_answer"] = answered.copy()
            info["correct"] = correct
            info["_correct"] = answered.copy()
        if n_illegal and self._ignore:
            info["illegal_action"] = self._illegal.copy()
            info["_illegal_action"] = self._illegal.copy()
        return info
