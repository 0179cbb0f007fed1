"""The result of one (controller, store) evaluation under the published protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class EvalResult:
    """Accuracy and cost of a controller on a store, with per-seed and per-question detail.

    Attributes:
        controller: Controller name (``"sc"``, ``"cmc"``, ``"file:..."``).
        params: Its parameters.
        model, benchmark, split: The store.
        cost_mode: ``"reference"`` (comparable with the paper) or ``"exact"``.
        seeds: The shuffle seeds used, in order.
        correct: bool ``[S, Q]``: answer == gold for seed s, question q.
        tokens: int64 ``[S, Q]``: tokens charged in that episode.
        answers: ``[S][Q]`` answer strings (None for no answer).
        path: ``"batch"`` (jitted kernel) or ``"handle"`` (env steps through the handle).
        seconds: Wall time of the evaluation.
        traces: ``[S][Q]`` execution traces (lists of JSON-serialisable dicts) if requested.
        unrevealed: bool ``[S, Q]``: the answer was never revealed in its episode (scored wrong
            by the protocol's rule; None when the path cannot produce one, e.g. the batch
            kernels of the built-in controllers, which answer from what they revealed).
    """

    controller: str
    params: dict[str, Any]
    model: str
    benchmark: str
    split: str
    cost_mode: str
    seeds: list[int]
    correct: np.ndarray
    tokens: np.ndarray
    answers: list[list[str | None]]
    path: str
    seconds: float
    traces: list[list[list[dict[str, Any]]]] | None = field(default=None, repr=False)
    unrevealed: np.ndarray | None = field(default=None, repr=False)

    @property
    def unrevealed_answers(self) -> int:
        """Episodes whose answer was never revealed in the episode (each scored wrong)."""
        return 0 if self.unrevealed is None else int(np.count_nonzero(self.unrevealed))

    @property
    def per_seed_accuracy(self) -> np.ndarray:
        """float64 ``[S]``: fraction of questions answered correctly under each seed."""
        return self.correct.sum(axis=1) / self.correct.shape[1]

    @property
    def per_seed_tokens(self) -> np.ndarray:
        """float64 ``[S]``: average tokens per question under each seed."""
        return self.tokens.sum(axis=1) / self.tokens.shape[1]

    @property
    def per_question_accuracy(self) -> np.ndarray:
        """float64 ``[Q]``: fraction of seeds on which each question was answered correctly."""
        return self.correct.mean(axis=0)

    @property
    def per_question_tokens(self) -> np.ndarray:
        """float64 ``[Q]``: mean tokens of each question over seeds."""
        return self.tokens.mean(axis=0)

    @property
    def accuracy(self) -> float:
        """Percent correct, mean over seeds, rounded to 2 decimals as published."""
        return round(100.0 * float(np.mean(self.per_seed_accuracy)), 2)

    @property
    def avg_tokens(self) -> float:
        """Average tokens per question, mean over seeds (the published CSV truncates it).

        Computed as total tokens / (seeds × questions): the same number as the mean of the
        per-seed means (every seed has every question), as the double nearest to the exact
        fraction, so it prints without summation noise (``910813.035``, not
        ``910813.0350000001``) and its integer part is the published figure."""
        return float(self.tokens.sum()) / self.tokens.size

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the headline numbers."""
        return {
            "controller": self.controller,
            "params": self.params,
            "model": self.model,
            "benchmark": self.benchmark,
            "split": self.split,
            "cost_mode": self.cost_mode,
            "seeds": len(self.seeds),
            "questions": int(self.correct.shape[1]),
            "accuracy": self.accuracy,
            "avg_tokens": self.avg_tokens,
            "unrevealed_answers": self.unrevealed_answers,
            "path": self.path,
            "seconds": round(self.seconds, 4),
        }

    def to_dict(self, detail: bool = False) -> dict[str, Any]:
        """The summary, plus per-seed and per-question lists when ``detail``.

        Units are the summary's: every accuracy is a percent rounded to 2 decimals (like
        ``accuracy``; the ``per_*_accuracy`` properties are fractions), every token figure is
        tokens per question rounded to 3 decimals. ``traces`` (when recorded) are
        :meth:`labelled_traces`.
        """
        out = self.summary()
        if detail:
            out.update(
                {
                    "per_seed_accuracy": _rounded(100.0 * self.per_seed_accuracy, 2),
                    "per_seed_tokens": _rounded(self.per_seed_tokens, 3),
                    "per_question_accuracy": _rounded(100.0 * self.per_question_accuracy, 2),
                    "per_question_tokens": _rounded(self.per_question_tokens, 3),
                }
            )
            if self.traces is not None:
                out["traces"] = self.labelled_traces()
        return out

    def labelled_traces(self) -> list[dict[str, Any]]:
        """The recorded traces, one dict per episode, in (seed, question) order.

        Each is ``{"seed", "question", "answer", "correct", "tokens", "events"}``: the shuffle
        seed, the question's index in the store, the controller's answer, whether it was right,
        the tokens charged, and the episode's primitive calls and notes.

        Raises:
            ValueError: No traces were recorded (evaluate with ``traces=True``).
        """
        if self.traces is None:
            raise ValueError("No traces were recorded: evaluate with traces=True (--traces).")
        return [
            {
                "seed": int(seed),
                "question": q,
                "answer": self.answers[i][q],
                "correct": bool(self.correct[i, q]),
                "tokens": int(self.tokens[i, q]),
                "events": events,
            }
            for i, seed in enumerate(self.seeds)
            for q, events in enumerate(self.traces[i])
        ]


def _rounded(values: np.ndarray, digits: int) -> list[float]:
    """``values`` as a list of Python floats rounded to ``digits`` decimals (no float noise)."""
    return [round(float(v), digits) for v in values]
