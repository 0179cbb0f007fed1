"""Turn a controller's answers and charges into an :class:`EvalResult` (the one scoring rule).

Correct means the answer's id in the question's table equals the gold id; None, a string no
branch produced, or an answer that was never revealed in its episode, is wrong. Every front end
(batch kernels, the handle path, sandboxed candidates) is scored here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tts_gym.evaluation.result import EvalResult
from tts_gym.store import ReplayStore


def answer_ids(store: ReplayStore, answers: Sequence[Sequence[str | None]]) -> np.ndarray:
    """int32 ``[S, Q]`` ids of answer strings ``[S][Q]`` (-1 None, -2 unknown string).

    Raises:
        ValueError: ``answers`` is not ``[S][Q]`` for the store's Q questions.
    """
    n_q = store.n_questions
    if any(len(row) != n_q for row in answers):
        raise ValueError(f"answers must hold {n_q} answers per seed for {store.name}.")
    ids = [[store.answer_id(q, a) for q, a in enumerate(row)] for row in answers]
    return np.asarray(ids, np.int32).reshape(len(answers), n_q)


def score(store: ReplayStore, seeds: Sequence[int], ids: np.ndarray, tokens: np.ndarray, *,
          controller: str, params: dict[str, Any], cost_mode: str, path: str,
          seconds: float = 0.0, traces: list | None = None,
          unrevealed: np.ndarray | None = None) -> EvalResult:
    """Score answer ids ``[S, Q]`` and tokens ``[S, Q]`` against ``store``'s gold answers.

    ``unrevealed`` (bool ``[S, Q]``) marks answers never revealed in their episode: the
    protocol scores them wrong whatever they say.

    Raises:
        ValueError: Shapes do not match the seeds and the store, or the store has no gold.
    """
    ids = np.asarray(ids, np.int32)
    tokens = np.asarray(tokens, np.int64)
    shape = (len(seeds), store.n_questions)
    if ids.shape != shape or tokens.shape != shape:
        raise ValueError(f"answers and tokens must be {list(shape)} (seeds × questions of "
                         f"{store.name}), got {list(ids.shape)} and {list(tokens.shape)}.")
    if not store.has_gold:
        raise ValueError(f"Store {store.name} has no gold answers (a gold-free copy); score on "
                         "the original store.")
    correct = (ids >= 0) & (ids == store.gold[None, :])
    if unrevealed is not None:
        unrevealed = np.asarray(unrevealed, bool).reshape(shape)
        correct &= ~unrevealed
    strings = [[store.answer_string(q, int(a)) for q, a in enumerate(row)] for row in ids]
    return EvalResult(
        controller=controller, params=params, model=store.model, benchmark=store.benchmark,
        split=store.split, cost_mode=cost_mode, seeds=[int(s) for s in seeds], correct=correct,
        tokens=tokens, answers=strings, path=path, seconds=seconds, traces=traces,
        unrevealed=unrevealed)
