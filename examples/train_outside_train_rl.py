"""Train MaskablePPO with your own SB3 loop, then score it with the published protocol.

No ``tts-gym train-rl`` involved: the registered macro-action env ``tts_gym/ReplayMacro-v0``,
sb3-contrib's ``MaskablePPO`` as its documentation shows it, and ``tts_gym.evaluate_policy`` for
the 100-seed protocol on a held-out store (the same ``EvalResult`` as ``tts_gym.evaluate``)::

    TTS_GYM_DATA=/path/to/replay python examples/train_outside_train_rl.py --timesteps 4096

Prints one JSON line: the held-out row (accuracy %, tokens per question) and the training time.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import gymnasium as gym
import torch
from sb3_contrib import MaskablePPO

import tts_gym  # noqa: F401  (registers the envs)
from tts_gym import evaluate_policy, load_store


@dataclass
class Args:
    """Settings (each is a ``--flag``)."""

    model: str = "Qwen3-8B"
    """Model whose stores are used."""
    train_benchmark: str = "aime24"
    """Store to train on (the search split)."""
    eval_benchmark: str = "aime25"
    """Held-out store to score on."""
    data_dir: str | None = None
    """Replay-store folder (default: TTS_GYM_DATA, else the download cache)."""
    timesteps: int = 4096
    """Macro steps to train for."""
    cost_weight: float = 1e-7
    """Reward per token charged."""
    seeds: int = 100
    """Shuffle seeds of the evaluation (the published protocol: 100)."""
    seed: int = 0
    """Seed of the model and the env."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in vars(Args()).items():
        kind = type(default) if default is not None else str
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=default)
    args = Args(**vars(parser.parse_args(argv)))

    torch.set_num_threads(1)  # tiny networks: one thread is fastest (docs/rl.md)
    train_store = load_store(args.model, args.train_benchmark, args.data_dir)
    env = gym.make("tts_gym/ReplayMacro-v0", store=train_store, cost_weight=args.cost_weight)
    model = MaskablePPO("MlpPolicy", env, n_steps=256, batch_size=64, seed=args.seed,
                        device="cpu")
    start = time.perf_counter()
    model.learn(args.timesteps)
    seconds = time.perf_counter() - start

    held_out = load_store(args.model, args.eval_benchmark, args.data_dir)
    result = evaluate_policy(model, held_out, args.seeds, name="maskable-ppo (own loop)")
    row = {**result.summary(), "train_seconds": round(seconds, 1), "timesteps": args.timesteps}
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
