"""Periodic evaluation during training with the published protocol (``train-rl --eval-freq``).

Every ``eval_freq`` training steps (counted over all envs, as ``--timesteps``), the current
policy is scored with :func:`tts_gym.evaluate_policy` on each training store (the search split)
for ``eval_seeds`` shuffle seeds of the protocol (0..k-1), deterministically. The score to beat
is the protocol's mean reward, ``accuracy - cost_weight × tokens`` averaged over the stores
(accuracy as a fraction: what the policy is trained to maximise, 1 per correct answer).
Whenever it improves, the model is saved to ``OUT/best_model.zip`` (``rl:OUT/best_model.zip``
evaluates it: ``OUT/config.json`` describes both). Every evaluation is appended to
``OUT/evaluations.json`` and logged as ``eval/accuracy``, ``eval/avg_tokens`` and
``eval/reward`` in SB3's logger (CSV, and TensorBoard with ``--tensorboard``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from tts_gym.evaluation.policy_eval import evaluate_policy
from tts_gym.io import write_json_atomic

BEST_MODEL = "best_model.zip"
EVALUATIONS = "evaluations.json"


def protocol_reward(accuracy_percent: float, avg_tokens: float, cost_weight: float) -> float:
    """Mean reward per episode of the protocol: accuracy (fraction) - cost_weight × tokens."""
    return accuracy_percent / 100.0 - cost_weight * avg_tokens


class ProtocolEvalCallback(BaseCallback):
    """Score the policy every ``eval_freq`` steps; keep the best model (see module docstring).

    Args:
        stores: The stores to score on (the training stores).
        eval_freq: Training steps (over all envs) between evaluations.
        seeds: Shuffle seeds per store (0..seeds-1).
        out: The run folder (``best_model.zip``, ``evaluations.json``).
        cost_weight: The training reward's cost weight.
        env_kwargs: ``evaluate_policy`` keywords (``actions``, ``max_branches``,
            ``max_macro_steps``).
    """

    def __init__(
        self,
        stores: list[Any],
        eval_freq: int,
        seeds: int,
        out: Path,
        cost_weight: float,
        env_kwargs: dict[str, Any],
    ) -> None:
        super().__init__()
        self.stores = stores
        self.eval_freq = eval_freq
        self.seeds = seeds
        self.out = Path(out)
        self.cost_weight = cost_weight
        self.env_kwargs = env_kwargs
        self.next_eval = eval_freq
        self.best: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_eval:
            while self.next_eval <= self.num_timesteps:
                self.next_eval += self.eval_freq
            self.evaluate()
        return True

    def evaluate(self) -> dict[str, Any]:
        """Score the current policy now; returns the evaluation's record."""
        rows = []
        for store in self.stores:
            r = evaluate_policy(self.model, store, self.seeds, **self.env_kwargs)
            rows.append({"store": store.name, "accuracy": r.accuracy, "avg_tokens": r.avg_tokens,
                         "reward": protocol_reward(r.accuracy, r.avg_tokens, self.cost_weight)})
        n = len(rows)
        record = {
            "timesteps": int(self.num_timesteps),
            "seeds": self.seeds,
            "accuracy": sum(r["accuracy"] for r in rows) / n,
            "avg_tokens": sum(r["avg_tokens"] for r in rows) / n,
            "reward": sum(r["reward"] for r in rows) / n,
            "stores": rows,
        }
        for key in ("accuracy", "avg_tokens", "reward"):
            self.logger.record(f"eval/{key}", record[key])
        if self.best is None or record["reward"] > self.best["reward"]:
            self.model.save(self.out / BEST_MODEL)
            self.best = {k: record[k] for k in ("timesteps", "accuracy", "avg_tokens", "reward")}
        self.history.append(record)
        write_json_atomic(self.out / EVALUATIONS, {"best": self.best, "evaluations": self.history})
        return record
