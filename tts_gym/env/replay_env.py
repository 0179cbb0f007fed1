"""The registered Gymnasium environment ``tts_gym/Replay-v0``."""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from tts_gym.env.actions import ANSWER, ActionLayout
from tts_gym.env.dynamics import (
    MASK,
    STEP_ANSWER,
    STEP_ILLEGAL,
    aggregate,
    env_step,
    observation_copy,
    reset_state,
)
from tts_gym.env.episode_start import start_episode
from tts_gym.env.params import DEFAULT_MAX_BRANCHES, EnvParams, check_render_mode, resolve_store
from tts_gym.env.raster import render_rgb
from tts_gym.env.render import render_ansi
from tts_gym.kernels.state import (
    BOOK_LABEL_OF,
    BOOK_PRUNED,
    BOOK_SHOWN,
    COST,
    EP_COUNTERS,
    EP_FINISHED,
    EP_ORDER,
    OPENED,
    new_book,
    new_episode,
)
from tts_gym.kernels.transitions import env_data
from tts_gym.kernels.votes import beta_conf_table
from tts_gym.store import ReplayStore


class ReplayEnv(gym.Env):
    """Test-time scaling over pre-collected reasoning trajectories (AutoTTS replay MDP).

    ## Description

    One episode is one question of a replay store under one order of its N pre-collected
    reasoning branches. The agent opens branches (in that order), extends them interval by
    interval (one interval = Δ tokens, 500 in the shipped stores), reveals their intermediate
    answers, prunes some, and finally answers. Every token a branch generates is charged; the
    charging follows the AutoTTS reference replay exactly (docs/env.md, docs/reproducing.md), so
    controllers reproduce the published numbers of "LLMs Improving LLMs: Agentic Discovery for
    Test-Time Scaling" (2026).

    ## Action Space

    ``Discrete(3 + 3 S)`` with S = ``max_branches`` slots (slots are numbered in opening order):

    | index      | action      | effect                                                    |
    |------------|-------------|-----------------------------------------------------------|
    | 0          | ANSWER      | end the episode with the aggregated answer                |
    | 1          | BRANCH      | open the next branch, advance it one interval (hidden)    |
    | 2          | SAMPLE      | open the next branch and read it to the end (T tokens)    |
    | 3 + i      | CONTINUE(i) | advance slot i one interval (answer hidden)               |
    | 3 + S + i  | PROBE(i)    | reveal slot i's answer at its depth (``probe_cost``)       |
    | 3 + 2S + i | PRUNE(i)    | mark slot i inactive (its revealed answers stay)          |

    Legal actions are given by ``info["action_mask"]`` and ``action_masks()`` (int8). ANSWER is
    always legal. ``gym.make`` wraps the env (``TimeLimit``, ...), and Gymnasium wrappers do not
    forward methods: call ``env.unwrapped.action_masks()`` or
    ``env.get_wrapper_attr("action_masks")()`` (sb3-contrib's ``ActionMasker`` and MaskablePPO
    find it themselves). By default an illegal action is a free no-op: nothing changes, the
    reward is 0, and ``info["illegal_action"]`` is True (``illegal_action="ignore"``; unmasked
    algorithms and Gymnasium's and SB3's ``check_env``, which step with random actions, need
    it). ``illegal_action="raise"`` raises ``ValueError`` instead, to debug a policy that should
    respect the mask. The question handle refuses illegal primitives under either setting.

    ## Observation Space

    A flat ``Dict`` holding only revealed information (never gold, never an unrevealed probe;
    answers appear as episode-local labels in first-reveal order):

    | key    | shape | dtype   | meaning                                                     |
    |--------|-------|---------|-------------------------------------------------------------|
    | agree  | (S,)  | int32   | unpruned slots showing the same label as slot i (0: none)   |
    | depth  | (S,)  | int32   | probe intervals consumed by slot i                          |
    | fresh  | (S,)  | int8    | 1 if slot i's label is its answer at its current depth      |
    | label  | (S,)  | int32   | episode-local label of slot i's latest revealed answer, -1  |
    | status | (S,)  | int8    | 0 unopened, 1 active, 2 finished, 3 pruned                  |
    | totals | (4,)  | int32   | opened, active, finished, pruned slots                      |
    | vote   | (5,)  | float32 | tokens charged, revealed finished answers, leader count c1, |
    |        |       |         | runner-up count c2, beta_conf(c1, c2)                       |

    ## Rewards

    ``-cost_weight × tokens`` charged by each step, plus 1 at ANSWER if the answer equals the
    gold answer. Default ``cost_weight = 1e-6`` (100k tokens cost 0.1 of a correct answer).

    ## Starting State

    ``reset(seed=s)`` draws a question and a branch order from ``self.np_random``.
    ``reset(options={"question": q, "shuffle_seed": s})`` gives the published protocol's
    episode (order of ``random.Random(s).shuffle``); ``options={"question": q, "order": arr}``
    pins any order. No branch is open.

    ## Episode End

    Terminated at ANSWER. The answer is the one committed by :meth:`commit_answer` (the question
    handle's ``submit``), else the majority of revealed final answers, else of the latest
    revealed answers of unpruned slots (ties: earliest first occurrence). Truncated by the
    registration's ``max_episode_steps`` (20,000; a legal episode on the shipped stores needs at
    most ~10,600 steps).

    ## Arguments

    ``gym.make("tts_gym/Replay-v0", model="Qwen3-8B", benchmark="aime24", data_dir=None,
    store=None, max_branches=64, cost_weight=1e-6, cost_mode="reference",
    reveal_on_advance=False, probe_cost=0, illegal_action="ignore", render_mode=None)``;
    ``render_mode`` is None, ``"ansi"`` (text with a legend) or ``"rgb_array"`` (uint8 frame).
    ``store`` takes an already loaded :class:`~tts_gym.store.ReplayStore`; ``cost_mode="exact"``
    charges probing to the end as exactly T (numbers not comparable with the paper).

    >>> import gymnasium as gym, tts_gym
    >>> from tts_gym.testing import tiny_store
    >>> env = gym.make("tts_gym/Replay-v0", store=tiny_store(), max_branches=4)
    >>> obs, info = env.reset(options={"question": 0, "shuffle_seed": 0})
    >>> obs["status"].tolist(), info["action_mask"][:3].tolist()
    ([0, 0, 0, 0], [1, 1, 1])
    >>> obs, reward, terminated, truncated, info = env.step(2)   # SAMPLE: read one branch
    >>> obs["status"][0].item(), info["tokens"] > 0
    (2, True)
    >>> obs, reward, terminated, truncated, info = env.step(0)   # ANSWER
    >>> terminated, sorted(k for k in info if k in ("answer", "correct"))
    (True, ['answer', 'correct'])

    ## Version History

    * v0: initial release (AutoTTS reference replay semantics, atomic actions, flat Dict obs).
    * v0 (after 0.1.0): the default ``illegal_action`` is ``"ignore"`` (was ``"raise"``), so both
      ``check_env`` pass with default arguments. Same id: every action sequence the old default
      accepted gives the same observations, rewards and infos; only sequences it refused with an
      exception now have an outcome (the no-op ``illegal_action="ignore"`` always had), so no
      recorded result can change. ``illegal_action="raise"`` restores the old behaviour.
    * v0 (later): ``render_mode="rgb_array"`` (a numpy raster, :mod:`tts_gym.env.raster`) and a
      legend closing the ``"ansi"`` picture. Rendering only: same id.
    * The macro-action env is registered as ``tts_gym/ReplayMacro-v0``
      (:class:`tts_gym.env.macro_env.MacroActionEnv`, with its own Version History).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
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
        render_mode: str | None = None,
    ) -> None:
        store = resolve_store("ReplayEnv", store, model, benchmark, data_dir)
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.params = EnvParams(
            max_branches=max_branches,
            cost_weight=cost_weight,
            cost_mode=cost_mode,
            reveal_on_advance=reveal_on_advance,
            probe_cost=probe_cost,
            illegal_action=illegal_action,
        )
        self.store = store
        self.render_mode = render_mode
        self.layout = ActionLayout(max_branches)
        self._data = env_data(store)
        self._ep = new_episode(store.width, max_branches)
        self._book = new_book(max_branches, store.max_probes, store.max_answers)
        self._counts = np.zeros(store.max_answers + 1, np.int64)
        self._conf = beta_conf_table(max_branches)
        self.action_space = spaces.Discrete(self.layout.n)
        self.observation_space = self.params.observation_space(store)
        self._q = 0
        self._done = True
        self._committed: int | None = None
        # Hot-path constants of step() (EnvParams is the validated source of truth).
        self._slots = max_branches
        self._n_actions = self.layout.n
        self._n_branches = store.n_branches
        self._mode = self.params.mode
        self._reveal = bool(reveal_on_advance)
        self._probe_cost = int(probe_cost)
        self._cost_weight = float(cost_weight)
        self._raise = illegal_action == "raise"

    # --- Gymnasium API -------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict]:
        super().reset(seed=seed)
        q = start_episode(self.store, options or {}, self.np_random, self._ep[EP_ORDER])
        self._q = q
        reset_state(self._n_branches, q, self._ep, self._book, self._slots)
        self._committed = None
        self._done = False
        obs, mask, tokens, opened = self._observe()
        return obs, self._make_info(mask, tokens, opened)

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        if self._done:
            raise RuntimeError("The episode has ended (ANSWER was taken): call reset() first.")
        action = int(action)
        status, charge = self._apply(action)
        obs = observation_copy(self._book)
        mask = self._book[MASK].copy()  # ANSWER only once ANSWER was taken
        counters = self._ep[EP_COUNTERS]
        info = self._make_info(mask, counters[COST], counters[OPENED])
        if status == STEP_ILLEGAL:
            if self._raise:
                raise ValueError(self._illegal_message(action))
            info["illegal_action"] = True
            return obs, 0.0, False, False, info
        reward = -self._cost_weight * int(charge)
        if status == STEP_ANSWER:
            self._done = True
            answer = self._final_answer()
            # the protocol's rule: an answer never revealed in this episode is wrong
            unrevealed = answer >= 0 and self._book[BOOK_LABEL_OF][answer] < 0
            correct = bool(answer >= 0 and answer == int(self.store.gold[self._q])
                           and not unrevealed)
            reward += 1.0 if correct else 0.0
            info["answer"] = self.store.answer_string(self._q, answer)
            info["correct"] = correct
            if unrevealed:
                info["unrevealed_answer"] = True
            return obs, float(reward), True, False, info
        return obs, float(reward), False, False, info

    def render(self) -> str | np.ndarray | None:
        """``"ansi"``: a text picture with a legend; ``"rgb_array"``: uint8 ``[H, W, 3]``
        (:mod:`tts_gym.env.raster`; H and W fixed by ``max_branches`` and the store); None
        without a render mode."""
        if self.render_mode == "ansi":
            return render_ansi(self._q, self._ep, self._book, self.layout.slots)
        if self.render_mode == "rgb_array":
            return render_rgb(self._q, self._ep, self._book)
        return None

    # --- helpers used by the question handle and wrappers ---------------------------------
    def action_masks(self) -> np.ndarray:
        """int8 legality mask ``[3 + 3 S]`` (the name sb3-contrib's MaskablePPO looks for)."""
        if self._done:
            mask = np.zeros(self.layout.n, np.int8)
            mask[ANSWER] = 1
            return mask
        return self._book[MASK].copy()

    def apply_action(self, action: int) -> int:
        """Take one atomic action (not ANSWER) without building an observation.

        The question handle's fast path on an unwrapped env: the same transition kernel, state
        change, legality rule and errors as :meth:`step`, minus the observation, mask and info
        it would return (nobody reads them there). Use :meth:`step` for ANSWER.

        Returns:
            Tokens charged by the action (0 for an ignored illegal action).

        Raises:
            ValueError: Illegal action (with ``illegal_action="raise"``), or ANSWER.
            RuntimeError: The episode has ended.
        """
        if self._done:
            raise RuntimeError("The episode has ended (ANSWER was taken): call reset() first.")
        action = int(action)
        if action == ANSWER:
            raise ValueError("apply_action() does not end episodes: use step(ANSWER).")
        status, charge = self._apply(action)
        if status == STEP_ILLEGAL:
            if self._raise:
                raise ValueError(self._illegal_message(action))
            return 0
        return int(charge)

    def is_legal(self, action: int) -> bool:
        """Whether ``action`` is legal now (False for any action once the episode has ended).

        Reads the legality mask the kernels keep current (the rule of
        :func:`tts_gym.env.dynamics.is_legal`, tested equal action by action), so it costs no
        kernel call: the question handle asks it before every primitive.
        """
        a = int(action)
        return not self._done and 0 <= a < self._n_actions and bool(self._book[MASK][a])

    def commit_answer(self, answer: str | None) -> None:
        """Fix the answer the next ANSWER step submits (instead of the aggregation).

        A string no branch produced is kept and scored wrong; None is scored wrong; so is an
        answer that was never revealed in this episode (``info["unrevealed_answer"]``).
        """
        self._committed = self.store.answer_id(self._q, answer)

    def answer_revealed(self, answer: str | None) -> bool:
        """Whether ``answer`` was revealed in this episode (None claims nothing: True).

        The protocol scores an answer that was never revealed in its episode as wrong.
        """
        if answer is None:
            return True
        a = self.store.answer_id(self._q, answer)
        return a >= 0 and bool(self._book[BOOK_LABEL_OF][a] >= 0)

    def revealed_answer(self, slot: int) -> str | None:
        """The answer string last revealed at ``slot`` (None if nothing was revealed)."""
        return self.store.answer_string(self._q, int(self._book[BOOK_SHOWN][slot]))

    def slot_finished(self, slot: int) -> bool:
        """Whether ``slot`` has returned its final answer."""
        return bool(self._ep[EP_FINISHED][slot])

    @property
    def question(self) -> int:
        """The current question index."""
        return self._q

    @property
    def tokens_used(self) -> int:
        """Tokens charged so far in this episode."""
        return int(self._ep[EP_COUNTERS][COST])

    @property
    def n_opened(self) -> int:
        """Slots opened so far."""
        return int(self._ep[EP_COUNTERS][OPENED])

    @property
    def branches_left(self) -> int:
        """Branches that can still be opened (store branches and free slots)."""
        return max(0, min(int(self.store.n_branches[self._q]), self.layout.slots) - self.n_opened)

    # --- internals -------------------------------------------------------------------------
    def _apply(self, action: int) -> tuple[int, int]:
        return env_step(
            self._data,
            self._n_branches,
            self._q,
            self._ep,
            self._book,
            action,
            self._slots,
            self._mode,
            self._reveal,
            self._probe_cost,
            self._conf,
            self._counts,
        )

    def _final_answer(self) -> int:
        if self._committed is not None:
            return self._committed
        return int(aggregate(self._ep, self._book, self._counts))

    def _observe(self) -> tuple[dict[str, np.ndarray], np.ndarray, int, int]:
        """Fresh observation and mask arrays, plus (tokens charged, slots opened)."""
        return observation_copy(self._book), self.action_masks(), self.tokens_used, self.n_opened

    def _observation(self) -> dict[str, np.ndarray]:
        return self._observe()[0]

    def _make_info(self, mask: np.ndarray, tokens: int, opened: int) -> dict[str, Any]:
        # int(): the kernels return Python ints when jitted, numpy ints under NUMBA_DISABLE_JIT.
        return {
            "action_mask": mask,
            "tokens": int(tokens),
            "question": self._q,
            "opened": int(opened),
        }

    def _info(self) -> dict[str, Any]:
        return self._make_info(self.action_masks(), self.tokens_used, self.n_opened)

    def illegal_reason(self, action: int) -> str:
        """Why ``action`` is illegal now, e.g. ``"slot 2 is finished"`` (for error messages)."""
        if self._done:
            return "the episode has ended"
        if not 0 <= action < self.layout.n:
            return f"the action space is Discrete({self.layout.n})"
        if action in (1, 2):
            return (
                f"no branch is left to open ({self.n_opened} opened of "
                f"{int(self.store.n_branches[self._q])} branches, {self.layout.slots} slots)"
            )
        slot = (action - 3) % self.layout.slots
        if slot >= self.n_opened:
            return f"slot {slot} is not opened yet ({self.n_opened} opened)"
        if self._book[BOOK_PRUNED][slot]:
            return f"slot {slot} is pruned"
        if self._ep[EP_FINISHED][slot]:
            return f"slot {slot} is finished"
        return f"slot {slot}'s answer at its current depth is already revealed"

    def _illegal_message(self, action: int) -> str:
        return (
            f"Illegal action {action} = {self.layout.describe(action)}: "
            f"{self.illegal_reason(action)}. Take only actions whose mask entry is 1: "
            f"info['action_mask'], env.unwrapped.action_masks() or "
            f'env.get_wrapper_attr("action_masks")() (gym.make wraps the env, and wrappers do '
            f"not forward methods); or drop illegal_action='raise' to make illegal actions free "
            f"no-ops flagged in info['illegal_action']."
        )
