"""``tts-gym train-rl``: train an RL controller on the macro-action env (entry point
``tts_gym.commands``). Flags mirror :class:`agents.rl.train.Args`."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train-rl`` sub-command."""
    from agents.rl.train import add_arguments

    p = sub.add_parser(
        "train-rl",
        help="train a PPO / MaskablePPO / DQN policy on the macro-action (or atomic) env",
        description="Train an RL policy on the search split (default: aime24 of all four "
        "models); saves OUT/model.zip and OUT/config.json. Evaluate it with "
        "`tts-gym eval rl:OUT/model.zip --model M --benchmark B`.",
    )
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train and print a one-line JSON summary."""
    from agents.rl.train import args_from, train

    config = train(args_from(args))
    keys = ("algo", "actions", "exp_name", "timesteps", "cost_weight", "train_seconds",
            "final_mean_episode_reward")
    summary = {k: config[k] for k in keys}
    summary["actions"] = config["action_space"]
    summary["model"] = f"{config['out']}/model.zip"
    if "best_model" in config:
        summary["best_model"] = config["best_model"]["path"]
    if config["tensorboard_dir"]:
        summary["tensorboard"] = config["tensorboard_dir"]
    print(json.dumps(summary))
    return 0
