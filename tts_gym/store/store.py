"""The packed replay store: one (model, benchmark) pair as C-contiguous numpy arrays."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

NO_ANSWER: int = -1
"""Answer id meaning "no answer" (padding, an unrevealed slot, a hidden gold)."""

UNKNOWN_ANSWER: int = -2
"""Answer id of a submitted string that no branch of the question ever produced."""


@dataclass(frozen=True, eq=False)
class ReplayStore:
    """Pre-collected reasoning trajectories of one model on one benchmark, packed to arrays.

    Answers are interned per question to int32 ids in first-appearance order (branch by branch,
    probes before the final answer; the gold answer last if no branch produced it).

    Attributes:
        model: Model name, e.g. ``"Qwen3-8B"``.
        benchmark: Benchmark name, e.g. ``"aime24"``.
        split: ``"search"`` (discovery may read it) or ``"heldout"``.
        source: Where the store came from (a file path, ``"synthetic:..."``).
        sha256: Digest of the source file's bytes (or of the generator parameters).
        probe_ans: int32 ``[Q, N, Lmax]``, answer id after each probe interval, -1 padded.
        n_probes: int32 ``[Q, N]``, probe count L of each branch (intervals with a probe answer).
        tokens: int64 ``[Q, N]``, total tokens T each branch generated.
        final_ans: int32 ``[Q, N]``, final answer id F of each branch.
        gold: int32 ``[Q]``, gold answer id (-1 in a gold-free copy).
        probe_freq: int64 ``[Q]``, probe interval Δ in tokens.
        n_branches: int32 ``[Q]``, branches of each question (the padded width N is the max).
        answers: per question, the tuple mapping answer id -> answer string.
        questions: per question, the problem text (informational).
    """

    model: str
    benchmark: str
    split: str
    source: str
    sha256: str
    probe_ans: np.ndarray
    n_probes: np.ndarray
    tokens: np.ndarray
    final_ans: np.ndarray
    gold: np.ndarray
    probe_freq: np.ndarray
    n_branches: np.ndarray
    answers: tuple[tuple[str, ...], ...]
    questions: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        """``"<model>/<benchmark>"``."""
        return f"{self.model}/{self.benchmark}"

    @property
    def n_questions(self) -> int:
        """Number of questions Q."""
        return int(self.probe_ans.shape[0])

    @property
    def width(self) -> int:
        """Padded branch axis N (the largest branch count of any question)."""
        return int(self.probe_ans.shape[1])

    @property
    def max_probes(self) -> int:
        """Padded probe axis Lmax (the longest probe list)."""
        return int(self.probe_ans.shape[2])

    @property
    def max_answers(self) -> int:
        """The largest number of distinct answer ids of any question."""
        return max(len(a) for a in self.answers)

    @property
    def has_gold(self) -> bool:
        """False for a gold-free copy (see :meth:`without_gold`)."""
        return bool(np.all(self.gold >= 0))

    @cached_property
    def _ids(self) -> tuple[dict[str, int], ...]:
        return tuple({s: i for i, s in enumerate(table)} for table in self.answers)

    @cached_property
    def majority_final(self) -> np.ndarray:
        """int32 ``[Q]``: the most frequent final answer over all branches of each question
        (ties: the answer of the earliest branch), -1 for a question without branches."""
        out = np.full(self.n_questions, -1, np.int32)
        for q in range(self.n_questions):
            fa = self.final_ans[q, : self.n_branches[q]]
            if fa.size:
                values, first, counts = np.unique(fa, return_index=True, return_counts=True)
                top = counts == counts.max()
                out[q] = values[top][np.argmin(first[top])]
        return out

    def answer_id(self, question: int, answer: str | None) -> int:
        """The id of ``answer`` in ``question``'s table; -1 for None, -2 for an unknown string."""
        if answer is None:
            return NO_ANSWER
        return self._ids[question].get(answer, UNKNOWN_ANSWER)

    def answer_string(self, question: int, answer_id: int) -> str | None:
        """The string of an answer id (None for a negative id)."""
        return None if answer_id < 0 else self.answers[question][int(answer_id)]

    def gold_string(self, question: int) -> str | None:
        """The gold answer string of ``question`` (None in a gold-free copy)."""
        return self.answer_string(question, int(self.gold[question]))

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The kernels' view of the store.

        Returns:
            ``(probe_ans, n_probes, tokens, final_ans, probe_freq, n_branches)``.
        """
        return (
            self.probe_ans,
            self.n_probes,
            self.tokens,
            self.final_ans,
            self.probe_freq,
            self.n_branches,
        )

    def without_gold(self) -> ReplayStore:
        """A copy with the gold answers removed (ids -1; gold-only strings dropped from tables).

        This is what untrusted controller code gets: it cannot score itself.
        """
        tables = []
        for q, table in enumerate(self.answers):
            g = int(self.gold[q])
            gold_only = g == len(table) - 1 and not self._id_used(q, g)
            tables.append(table[:-1] if gold_only else table)
        return dataclasses.replace(
            self,
            gold=np.full_like(self.gold, NO_ANSWER),
            answers=tuple(tables),
            sha256=self.sha256 + ":nogold",
        )

    def _id_used(self, q: int, answer_id: int) -> bool:
        return bool(
            np.any(self.final_ans[q] == answer_id) or np.any(self.probe_ans[q] == answer_id)
        )

    def subset(self, questions: list[int] | np.ndarray) -> ReplayStore:
        """A store holding only the given questions (in the given order)."""
        idx = np.asarray(questions, dtype=np.int64)
        pick = [int(i) for i in idx]
        return dataclasses.replace(
            self,
            probe_ans=np.ascontiguousarray(self.probe_ans[idx]),
            n_probes=np.ascontiguousarray(self.n_probes[idx]),
            tokens=np.ascontiguousarray(self.tokens[idx]),
            final_ans=np.ascontiguousarray(self.final_ans[idx]),
            gold=np.ascontiguousarray(self.gold[idx]),
            probe_freq=np.ascontiguousarray(self.probe_freq[idx]),
            n_branches=np.ascontiguousarray(self.n_branches[idx]),
            answers=tuple(self.answers[i] for i in pick),
            questions=tuple(self.questions[i] for i in pick) if self.questions else (),
            sha256=f"{self.sha256}:subset{len(pick)}",
        )

    def __repr__(self) -> str:
        return (
            f"ReplayStore({self.name}, split={self.split}, questions={self.n_questions}, "
            f"branches={self.width}, max_probes={self.max_probes})"
        )
