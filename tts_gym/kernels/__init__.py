"""numba kernels: replay transitions and vote statistics (one dynamics for every front end)."""

from tts_gym.kernels.transitions import (
    COST_MODES,
    MODE_EXACT,
    MODE_REFERENCE,
    advance_branch,
    advance_slot,
    can_advance,
    can_open,
    new_episode,
    open_slot,
    read_slot,
    reset_episode,
)
from tts_gym.kernels.votes import beta_conf, beta_conf_table, majority, majority_py, top2, top2_py

__all__ = [
    "COST_MODES",
    "MODE_EXACT",
    "MODE_REFERENCE",
    "advance_branch",
    "advance_slot",
    "beta_conf",
    "beta_conf_table",
    "can_advance",
    "can_open",
    "majority",
    "majority_py",
    "new_episode",
    "open_slot",
    "read_slot",
    "reset_episode",
    "top2",
    "top2_py",
]
