"""A sampled trajectory and the probe prompts cut from it, at exact token counts.

In ``ids`` mode (and ``tokenize`` mode) a probe prompt is the question's prompt token ids, the
first p generated token ids and the probe suffix's token ids: nothing is re-tokenised, so the
cut is exactly p tokens. In ``text`` mode the cut is a character offset (the start of generated
token p from the server's logprob offsets, else p × mean characters per token) and the server
re-tokenises prompt + prefix + suffix.

Request bodies for probes are built by slicing: the JSON of prompt + trajectory ids is encoded
once per branch, and the body of the probe at p is a byte slice of it plus the suffix, so a probe
carrying 40k tokens costs a memory copy, not a JSON encoding.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from tts_gym.collect.api import Completion, dumps
from tts_gym.collect.extract import last_boxed
from tts_gym.collect.protocol import thinking_length


@dataclass(frozen=True)
class Prompt:
    """A question's prompt: its text and, in token modes, its token ids (int64 ``[P]``)."""

    text: str
    ids: np.ndarray | None


@dataclass(frozen=True)
class Trajectory:
    """What the store and the probes need from one sampled trajectory.

    Attributes:
        generated: Generated tokens T (``usage.completion_tokens``), the store's branch tokens.
        thinking: Tokens of the thinking part t (probes sit at k·Δ < t).
        finish_reason: ``"stop"`` or ``"length"``.
        truncated: True when the trajectory hit ``--max-tokens``.
        final_raw: Content of the last ``\\boxed{}`` of the answer part (None: probe at t).
        ids: Generated token ids, int64 ``[T]`` (token modes), else None.
        text: Generated text (text mode; None in token modes).
        offsets: Character offset of each generated token, int64 ``[T]`` (text mode with
            logprobs), else None.
    """

    generated: int
    thinking: int
    finish_reason: str
    truncated: bool
    final_raw: str | None
    ids: np.ndarray | None = None
    text: str | None = None
    offsets: np.ndarray | None = None

    def blob(self) -> bytes:
        """What must survive a crash to probe this trajectory later (JSON bytes)."""
        return dumps({
            "ids": None if self.ids is None else self.ids.tolist(),
            "text": self.text,
            "offsets": None if self.offsets is None else self.offsets.tolist(),
        })

    def record(self) -> dict[str, Any]:
        """The journal fields of this trajectory (the blob holds the rest)."""
        return {
            "generated": self.generated,
            "thinking": self.thinking,
            "finish": self.finish_reason,
            "truncated": self.truncated,
            "final": self.final_raw,
        }

    @classmethod
    def restore(cls, record: dict[str, Any], blob: bytes) -> Trajectory:
        """Inverse of :meth:`record` + :meth:`blob`."""
        data = json.loads(blob)
        return cls(
            generated=record["generated"],
            thinking=record["thinking"],
            finish_reason=record["finish"],
            truncated=record["truncated"],
            final_raw=record["final"],
            ids=None if data["ids"] is None else np.asarray(data["ids"], dtype=np.int64),
            text=data["text"],
            offsets=None if data["offsets"] is None else np.asarray(data["offsets"], np.int64),
        )


def blob_digest(blob: bytes) -> str:
    """SHA-256 of a blob (journaled, checked on resume)."""
    return hashlib.sha256(blob).hexdigest()


def _final(text: str, marker: str, truncated: bool) -> str | None:
    if truncated:
        return None
    if marker:
        cut = text.find(marker)
        if cut >= 0:
            text = text[cut + len(marker) :]
    return last_boxed(text)


def from_ids(done: Completion, ids: list[int], marker_ids: list[int] | None, marker: str
             ) -> Trajectory:
    """Trajectory of a token-mode completion (``ids``: generated ids, exact or re-tokenised)."""
    arr = np.asarray(ids, dtype=np.int64)
    truncated = done.finish_reason == "length"
    t = thinking_length(ids, marker_ids) if marker_ids else None
    thinking = len(ids) if t is None else t
    return Trajectory(
        generated=done.completion_tokens,
        thinking=thinking,
        finish_reason=done.finish_reason,
        truncated=truncated,
        final_raw=_final(done.text, marker, truncated),
        ids=arr,
    )


def from_text(done: Completion, marker: str) -> Trajectory:
    """Trajectory of a text-mode completion (token positions from offsets, else a ratio)."""
    truncated = done.finish_reason == "length"
    n, text = done.completion_tokens, done.text
    offsets = None if done.offsets is None else np.asarray(done.offsets, dtype=np.int64)
    cut = text.find(marker) if marker else -1
    if cut < 0:
        thinking = n
    elif offsets is not None:
        thinking = int(np.searchsorted(offsets, cut, side="left"))
    else:
        thinking = round(cut * n / max(1, len(text)))
    return Trajectory(
        generated=n,
        thinking=thinking,
        finish_reason=done.finish_reason,
        truncated=truncated,
        final_raw=_final(text, marker, truncated),
        text=text,
        offsets=offsets,
    )


class ProbeBodies:
    """Request bodies of the probes of one trajectory.

    Args:
        head: Body bytes up to ``"prompt":`` included (model, max_tokens, temperature, ...).
        prompt: The question's prompt.
        traj: The trajectory.
        suffix_ids: Probe suffix token ids (token modes).
        suffix_text: Probe suffix text (text mode).
    """

    def __init__(self, head: bytes, prompt: Prompt, traj: Trajectory,
                 suffix_ids: list[int] | None, suffix_text: str) -> None:
        self.head = head
        self.traj = traj
        if traj.ids is not None:
            assert prompt.ids is not None and suffix_ids is not None
            self.n_prompt = len(prompt.ids)
            full = np.concatenate([prompt.ids, traj.ids])
            self._full = json.dumps(full.tolist(), separators=(",", ":")).encode()
            self._commas = np.flatnonzero(np.frombuffer(self._full, np.uint8) == ord(","))
            self._view = memoryview(self._full)
            tail = ",".join(map(str, suffix_ids))
            self._tail = (("," + tail) if tail else "").encode() + b"]}"
        else:
            self.prompt_text = prompt.text
            self.suffix_text = suffix_text

    def _char_cut(self, p: int) -> int:
        traj, text = self.traj, self.traj.text or ""
        if p >= traj.generated:
            return len(text)
        if traj.offsets is not None:
            return int(traj.offsets[p])
        return round(p * len(text) / max(1, traj.generated))

    def parts(self, p: int) -> tuple[bytes | memoryview, ...]:
        """The body of the probe after ``p`` generated tokens, as pieces (no 100 KB copy)."""
        if self.traj.ids is not None:
            n = self.n_prompt + p  # elements kept (>= 1: the prompt is never empty)
            end = self._commas[n - 1] if n - 1 < len(self._commas) else len(self._full) - 1
            return self.head, self._view[:end], self._tail
        text = self.prompt_text + (self.traj.text or "")[: self._char_cut(p)] + self.suffix_text
        return (self.head + dumps(text) + b"}",)

    def body(self, p: int) -> bytes:
        """The body of the probe after ``p`` generated tokens, as one bytes object."""
        return b"".join(self.parts(p))
