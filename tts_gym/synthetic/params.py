"""Parameters of the synthetic trajectory model (:mod:`tts_gym.synthetic.generate`).

Every field is a statistic with a meaning one can read off a real store; ``tts-gym calibrate``
measures them (:mod:`tts_gym.synthetic.calibrate`) and the four presets under ``tts_gym/data``
hold the values measured on the AIME24 stores (the search split) of the four shipped models.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

PRESET_MODELS: tuple[str, ...] = ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B")
"""Models with a committed preset (``tts_gym/data/synthetic-<model>.json``)."""

DEFAULT_PRESET = "Qwen3-8B"


@dataclass(frozen=True)
class SyntheticParams:
    """The generative model of reasoning trajectories, one field per meaningful statistic.

    Difficulty: with probability ``difficulty_hard_share`` a question is one the model
    essentially cannot solve, p ~ Beta(0.5, 0.5 / ``difficulty_hard_mean`` - 0.5); otherwise its
    pass@1 p ~ Beta(``difficulty_a``, ``difficulty_b``). Each branch ends correct with
    probability p. (A zero-inflated Beta: the real stores have a cluster of unsolved questions
    and a gap above it that a single Beta cannot produce.)

    Wrong answers: a question has K = 1 + Poisson(``attractors_mean``) wrong-answer attractors
    (capped at ``attractors_max``) with weights ~ Dirichlet(``attractor_concentration``); a wrong
    branch ends on an attractor with probability 1 - ``wrong_tail`` and on a one-off junk answer
    otherwise.

    Lengths (tokens T): log T = mu_q + shift + ``log_tokens_sd`` × ε, where shift is 0 for a
    correct branch, ``log_tokens_wrong_shift`` for one ending on a wrong attractor and
    ``log_tokens_junk_shift`` for one ending on a junk answer (attractor-wrong branches are
    "confidently wrong": shorter than scattered wrong ones in all four AIME24 stores), and
    mu_q = ``log_tokens_mean`` + ``log_tokens_difficulty_slope`` × p
    + ``log_tokens_question_sd`` × η; T is capped at ``token_cap`` (capped branches land in the
    last ``cap_jitter`` tokens).
    The probe count is L = round(T / (Δ · r)), r ~ N(``tokens_per_interval_mean``,
    ``tokens_per_interval_sd``) in units of Δ = ``probe_freq``, capped at ``max_probes``.

    Convergence: a branch's probes equal its final answer from index k* on (the last probe always
    does). k* = 0 with probability ``converge_at_start_correct`` / ``_wrong``; otherwise
    k* = floor(f · L) with f ~ Beta(``converge_a_correct``, ``converge_b_correct``) for correct
    branches and Beta(``converge_a_wrong``, ``converge_b_wrong``) for wrong ones.

    Before k*: a Markov chain; each probe repeats the previous one with probability
    ``probe_stay``, otherwise draws anew: the branch's final answer (``probe_final``), a noise
    string (``probe_noise``, strings ``noise_strings`` with weights ``noise_weights``), an answer
    drawn like a wrong final answer of the question (``probe_pool``), else a junk answer from a
    per-question vocabulary of ``junk_vocab`` strings.

    Attributes are plain floats/ints so the parameter file is a flat JSON object.
    """

    difficulty_a: float = 0.5
    difficulty_b: float = 0.3
    difficulty_hard_share: float = 0.0
    difficulty_hard_mean: float = 0.01
    attractors_mean: float = 4.0
    attractors_max: int = 32
    attractor_concentration: float = 0.5
    wrong_tail: float = 0.2
    log_tokens_mean: float = 9.6
    log_tokens_difficulty_slope: float = -0.5
    log_tokens_question_sd: float = 0.3
    log_tokens_wrong_shift: float = 0.3
    log_tokens_junk_shift: float = 0.5
    log_tokens_sd: float = 0.45
    token_cap: int = 41_498
    cap_jitter: int = 300
    probe_freq: int = 500
    tokens_per_interval_mean: float = 1.035
    tokens_per_interval_sd: float = 0.03
    max_probes: int = 80
    converge_at_start_correct: float = 0.03
    converge_at_start_wrong: float = 0.03
    converge_a_correct: float = 1.5
    converge_b_correct: float = 1.0
    converge_a_wrong: float = 2.0
    converge_b_wrong: float = 0.7
    probe_stay: float = 0.55
    probe_final: float = 0.09
    probe_noise: float = 0.07
    probe_pool: float = 0.4
    junk_vocab: int = 400
    noise_strings: tuple[str, ...] = ("ERR", "No", "?", "[Boxed Answer]")
    noise_weights: tuple[float, ...] = (0.97, 0.01, 0.01, 0.01)
    source: str = "defaults"
    statistics: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.difficulty_a <= 0 or self.difficulty_b <= 0:
            raise ValueError("difficulty_a and difficulty_b must be > 0 (Beta parameters).")
        if self.probe_freq <= 0 or self.max_probes < 1 or self.token_cap < 1:
            raise ValueError("probe_freq, max_probes and token_cap must be positive.")
        if len(self.noise_strings) != len(self.noise_weights) or not self.noise_strings:
            raise ValueError("noise_strings and noise_weights must be non-empty, same length.")
        if not 0.0 < self.difficulty_hard_mean < 1.0:
            raise ValueError("difficulty_hard_mean must be in (0, 1).")
        for name in (
            "wrong_tail",
            "probe_stay",
            "difficulty_hard_share",
            "converge_at_start_correct",
            "converge_at_start_wrong",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1].")
        if self.probe_final + self.probe_noise + self.probe_pool > 1.0 + 1e-9:
            raise ValueError("probe_final + probe_noise + probe_pool must be <= 1.")
        if self.junk_vocab < 1 or self.attractors_max < 1:
            raise ValueError("junk_vocab and attractors_max must be >= 1.")

    def replace(self, **changes: Any) -> SyntheticParams:
        """A copy with some fields changed (e.g. ``max_probes=200``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the parameter file's content)."""
        out = dataclasses.asdict(self)
        out["noise_strings"] = list(self.noise_strings)
        out["noise_weights"] = list(self.noise_weights)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyntheticParams:
        """Build from a parameter-file dict; unknown keys raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"Unknown synthetic parameter(s) {unknown}; known: {sorted(names)}.")
        data = dict(data)
        for key in ("noise_strings", "noise_weights"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the parameter file (JSON, atomically)."""
        from tts_gym.io import write_json_atomic

        write_json_atomic(path, self.to_dict())
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SyntheticParams:
        """Read a parameter file written by :meth:`save` or ``tts-gym calibrate``."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def preset_names() -> tuple[str, ...]:
    """Models whose preset file ships with the package."""
    root = resources.files("tts_gym") / "data"
    return tuple(m for m in PRESET_MODELS if (root / f"synthetic-{m}.json").is_file())


def load_preset(name: str = DEFAULT_PRESET) -> SyntheticParams:
    """The calibrated parameters of a shipped model, or of a parameter file path.

    Args:
        name: A model name (``"Qwen3-8B"``) or a path to a JSON parameter file.

    Raises:
        ValueError: Neither a shipped preset nor an existing file.
    """
    res = resources.files("tts_gym") / "data" / f"synthetic-{name}.json"
    if res.is_file():
        return SyntheticParams.from_dict(json.loads(res.read_text()))
    if Path(name).is_file():
        return SyntheticParams.load(name)
    raise ValueError(
        f"No synthetic preset {name!r}; shipped presets: {list(preset_names())}, or give a "
        "parameter file written by `tts-gym calibrate`."
    )
