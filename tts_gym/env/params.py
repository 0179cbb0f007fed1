"""Settings of a :class:`~tts_gym.env.ReplayEnv`, apart from its state."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from tts_gym.kernels.transitions import COST_MODES
from tts_gym.store import ReplayStore, load_store
from tts_gym.store.limits import MAX_QUESTION_TOKENS

DEFAULT_MAX_BRANCHES = 64
"""Slots of an env unless told otherwise: the paper's ceiling of 64 branches per question (its
64-sample self-consistency budget; the shipped stores hold 128 branches per question)."""
ILLEGAL_ACTION_MODES = ("raise", "ignore")
TOKEN_CEILING = float(MAX_QUESTION_TOKENS)
"""Upper bound of the ``vote[0]`` (tokens charged) observation entry: 1e9, the store
validator's bound on a question's worst-case episode charge (with ``probe_cost`` 0)."""


@dataclass(frozen=True)
class EnvParams:
    """Validated env settings.

    Attributes:
        max_branches: Slots S (default :data:`DEFAULT_MAX_BRANCHES`, the paper's ceiling).
        cost_weight: Reward per token charged (negative sign applied), default 1e-6.
        cost_mode: ``"reference"`` (the paper's charging) or ``"exact"``.
        reveal_on_advance: BRANCH/CONTINUE also reveal the answer (no PROBE needed).
        probe_cost: κ_probe, tokens charged per PROBE (0 in the paper).
        illegal_action: ``"ignore"`` (default: an illegal action is a free no-op, flagged in
            ``info["illegal_action"]``, so unmasked algorithms and the checkers can step) or
            ``"raise"`` (``ValueError``, for debugging a policy that should respect the mask).
    """

    max_branches: int = DEFAULT_MAX_BRANCHES
    cost_weight: float = 1e-6
    cost_mode: str = "reference"
    reveal_on_advance: bool = False
    probe_cost: int = 0
    illegal_action: str = "ignore"

    def __post_init__(self) -> None:
        if not isinstance(self.max_branches, int) or self.max_branches < 1:
            raise ValueError(f"max_branches must be a positive int, got {self.max_branches!r}.")
        if not np.isfinite(self.cost_weight) or self.cost_weight < 0:
            raise ValueError(f"cost_weight must be a finite number >= 0, got {self.cost_weight!r}.")
        if self.cost_mode not in COST_MODES:
            raise ValueError(
                f"cost_mode must be one of {sorted(COST_MODES)}, got {self.cost_mode!r}."
            )
        if not isinstance(self.probe_cost, int) or self.probe_cost < 0:
            raise ValueError(f"probe_cost must be an int >= 0 (tokens), got {self.probe_cost!r}.")
        if self.illegal_action not in ILLEGAL_ACTION_MODES:
            raise ValueError(
                f"illegal_action must be one of {ILLEGAL_ACTION_MODES}, got "
                f"{self.illegal_action!r}."
            )

    @property
    def mode(self) -> int:
        """The cost mode as the kernels' integer constant."""
        return COST_MODES[self.cost_mode]

    def observation_space(self, store: ReplayStore) -> spaces.Dict:
        """The flat Dict observation space for ``store`` (see the env docstring).

        Its keys are ``OBS_KEYS`` of :mod:`tts_gym.kernels.state`, where a new key starts."""
        s = self.max_branches
        lmax = store.max_probes
        labels = s * (lmax + 2)
        i32 = np.int32
        return spaces.Dict(
            {
                "agree": spaces.Box(0, s, (s,), i32),
                "depth": spaces.Box(0, lmax, (s,), i32),
                "fresh": spaces.Box(0, 1, (s,), np.int8),
                "label": spaces.Box(-1, labels, (s,), i32),
                "status": spaces.Box(0, 3, (s,), np.int8),
                "totals": spaces.Box(0, s, (4,), i32),
                "vote": spaces.Box(
                    np.zeros(5, np.float32),
                    np.array([TOKEN_CEILING, s, s, s, 1.0], np.float32),
                    dtype=np.float32,
                ),
            }
        )


def resolve_store(
    who: str,
    store: ReplayStore | None,
    model: str | None,
    benchmark: str | None,
    data_dir: str | os.PathLike[str] | None,
) -> ReplayStore:
    """The env's store: the one given, else ``load_store(model, benchmark, data_dir)``.

    Raises:
        ValueError: Neither a store nor both model and benchmark were given.
    """
    if store is not None:
        return store
    if model is None or benchmark is None:
        raise ValueError(
            f"{who} needs either store=ReplayStore or both model= and benchmark= "
            "(e.g. model='Qwen3-8B', benchmark='aime24')."
        )
    return load_store(model, benchmark, data_dir)


def check_render_mode(render_mode: str | None, supported: list[str]) -> None:
    """Raise a clear error for a render mode the env does not support."""
    if render_mode is not None and render_mode not in supported:
        modes = ", ".join(repr(m) for m in supported)
        raise ValueError(f"render_mode={render_mode!r} is not supported; use {modes} or None.")
