"""Train an RL controller on the replay env (CleanRL-style, one readable file).

What it does, top to bottom:

1. loads the training stores (by default the search split, AIME24, of all four Qwen3 models);
2. builds ``n_envs`` envs, store ``i % len(stores)`` for env i: the macro-action env
   ``tts_gym/ReplayMacro-v0`` (``--actions macro``, the default; an ``MlpPolicy`` on its 20
   features) or the atomic env ``tts_gym/Replay-v0`` under its time limit (``--actions atomic``;
   a ``MultiInputPolicy`` on its Dict observation), each in SB3's ``Monitor`` and together in a
   ``DummyVecEnv`` (why not the native vector env: see :mod:`agents.rl.sb3_vec`);
3. seeds everything explicitly (Python, numpy, torch through SB3's ``set_random_seed``, every
   env's ``reset(seed=seed + i)``) and sets torch's thread count (``--torch-threads``, default
   1: for networks this small, torch's default of one thread per core is several times slower,
   the threads' synchronisation costing more than the matrix products);
4. trains PPO, MaskablePPO (sb3-contrib; uses ``action_masks()``) or DQN with a progress bar,
   periodic checkpoints (``OUT/checkpoints/``), SB3's CSV log (``OUT/progress.csv``), SB3's
   TensorBoard log (``--tensorboard DIR``: ``DIR/<run name>``, the run name being
   ``<exp name>__<seed>__<unix time>``) and, with ``--eval-freq N``, the published protocol
   every N steps on the training stores, keeping the best model (:mod:`agents.rl.eval_callback`);
5. saves ``OUT/model.zip`` and ``OUT/config.json`` (everything needed to rebuild the observation
   and to evaluate: ``tts-gym eval rl:OUT/model.zip --model M --benchmark B`` for macro-action
   models, ``tts_gym.evaluate_policy(model, store, actions=...)`` for either).

Run: ``python -m agents.rl.train --algo maskable-ppo --timesteps 50000 --out runs/mppo`` or
``tts-gym train-rl ...`` (same flags).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.rl.macro import ACTION_NAMES, FEATURES, make_macro_env
from tts_gym.extras import require_extra

ALGOS = ("ppo", "maskable-ppo", "dqn")
ACTION_SPACES = ("macro", "atomic")
ENV_IDS = {"macro": "tts_gym/ReplayMacro-v0", "atomic": "tts_gym/Replay-v0"}
POLICIES = {"macro": "MlpPolicy", "atomic": "MultiInputPolicy"}
DEFAULT_MODELS = ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B")
CONFIG_NAME = "config.json"


@dataclass
class Args:
    """Training settings (every field is a ``--flag`` of ``tts-gym train-rl``)."""

    algo: str = "maskable-ppo"
    """RL algorithm: ppo, maskable-ppo (sb3-contrib, respects the action mask) or dqn."""
    actions: str = "macro"
    """Action space: macro (tts_gym/ReplayMacro-v0, six decisions; what rl:OUT/model.zip plays)
    or atomic (tts_gym/Replay-v0, 3 + 3 S actions, Dict observation)."""
    timesteps: int = 50_000
    """Total env steps to train for (over all envs)."""
    cost_weight: float = 1e-6
    """Reward per token charged (the env's cost_weight); sweep it to trace the RL frontier."""
    train_benchmark: str = "aime24"
    """Benchmark to train on; keep the search split (aime24): aime25/hmmt25 are held out."""
    models: tuple[str, ...] = DEFAULT_MODELS
    """Models whose stores are trained on (one env per model, cycled over n_envs)."""
    out: str = "runs/rl"
    """Output folder: model.zip, config.json, progress.csv, checkpoints/ (and best_model.zip,
    evaluations.json with --eval-freq)."""
    exp_name: str | None = None
    """Experiment name, recorded in config.json and naming the TensorBoard run (default:
    ALGO-ACTIONS-cwCOST_WEIGHT)."""
    tensorboard: str | None = None
    """Also log to TensorBoard (SB3's logger) under DIR/<exp name>__<seed>__<unix time>."""
    eval_freq: int = 0
    """Score the policy with the protocol on the training stores every N steps (over all envs)
    and keep OUT/best_model.zip (0: never)."""
    eval_seeds: int = 10
    """Shuffle seeds of each periodic evaluation (the published protocol uses 100)."""
    data_dir: str | None = None
    """Replay-store folder (default: TTS_GYM_DATA, else the download cache)."""
    seed: int = 0
    """Seed of Python, numpy, torch and the envs."""
    n_envs: int = 8
    """Parallel envs in the DummyVecEnv."""
    max_branches: int = 64
    """Env slots S (the paper's ceiling)."""
    max_macro_steps: int = 256
    """Macro steps after which the env answers by itself (evaluation follows the same rule)."""
    learning_rate: float = 3e-4
    """Adam learning rate."""
    n_steps: int = 64
    """PPO rollout length per env."""
    batch_size: int = 128
    """Minibatch size (PPO and DQN)."""
    n_epochs: int = 4
    """PPO epochs per rollout."""
    gamma: float = 0.995
    """Discount factor."""
    ent_coef: float = 0.01
    """PPO entropy bonus."""
    net_arch: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the policy/value (or Q) network."""
    checkpoint_every: int = 25_000
    """Save a checkpoint every this many steps (0: never)."""
    torch_threads: int = 1
    """Threads torch may use; 1 is fastest for networks this small (torch's default, one per
    core, made MaskablePPO ~5x slower here: docs/rl.md)."""
    progress: bool = True
    """Show a progress bar."""
    store: Any = field(default=None, repr=False)
    """(Python API only) train on this ReplayStore or list of stores instead of loading."""

    def validate(self) -> None:
        """Raise ValueError with a fix for inconsistent settings."""
        if self.algo not in ALGOS:
            raise ValueError(f"--algo must be one of {ALGOS}, got {self.algo!r}.")
        if self.actions not in ACTION_SPACES:
            raise ValueError(f"--actions must be one of {ACTION_SPACES}, got {self.actions!r}.")
        if self.eval_freq < 0:
            raise ValueError(f"--eval-freq must be >= 0 (0: no evaluation), got {self.eval_freq}.")
        if self.eval_seeds < 1:
            raise ValueError(f"--eval-seeds must be >= 1, got {self.eval_seeds}.")
        if self.timesteps < 1:
            raise ValueError(f"--timesteps must be >= 1, got {self.timesteps}.")
        if not np.isfinite(self.cost_weight) or self.cost_weight < 0:
            raise ValueError(f"--cost-weight must be >= 0, got {self.cost_weight}.")
        if self.n_envs < 1:
            raise ValueError(f"--n-envs must be >= 1, got {self.n_envs}.")
        if self.torch_threads < 1:
            raise ValueError(f"--torch-threads must be >= 1, got {self.torch_threads}.")

    @property
    def experiment(self) -> str:
        """The experiment name (``exp_name``, else ``ALGO-ACTIONS-cwCOST_WEIGHT``)."""
        return self.exp_name or f"{self.algo}-{self.actions}-cw{self.cost_weight:g}"

    def config(self) -> dict[str, Any]:
        """JSON-serialisable settings (without the in-memory store)."""
        d = dataclasses.asdict(self)
        d.pop("store")
        d["models"] = list(self.models)
        d["net_arch"] = list(self.net_arch)
        return d


def load_training_stores(args: Args) -> list[Any]:
    """The stores to train on (``args.store`` if given, else one per model)."""
    from tts_gym.store import load_store

    if args.store is not None:
        return list(args.store) if isinstance(args.store, (list, tuple)) else [args.store]
    return [load_store(m, args.train_benchmark, args.data_dir) for m in args.models]


def make_env(args: Args, store: Any):
    """One training env on ``store``: the macro env, or the atomic env in its time limit."""
    if args.actions == "macro":
        return make_macro_env(
            store,
            cost_weight=args.cost_weight,
            max_branches=args.max_branches,
            max_macro_steps=args.max_macro_steps,
            illegal_action="ignore",
        )
    from gymnasium.wrappers import TimeLimit

    from tts_gym.env import ReplayEnv
    from tts_gym.registration import MAX_EPISODE_STEPS

    atomic = ReplayEnv(store=store, max_branches=args.max_branches, cost_weight=args.cost_weight)
    return TimeLimit(atomic, MAX_EPISODE_STEPS)


def make_vec_env(args: Args, stores: list[Any]):
    """DummyVecEnv of ``n_envs`` Monitor-wrapped envs (env i on store i % len)."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    def factory(i: int):
        def make():
            return Monitor(make_env(args, stores[i % len(stores)]))

        return make

    venv = DummyVecEnv([factory(i) for i in range(args.n_envs)])
    venv.seed(args.seed)
    return venv


def algo_class(algo: str):
    """The SB3 / sb3-contrib class for an ``--algo`` name."""
    if algo == "maskable-ppo":
        from sb3_contrib import MaskablePPO

        return MaskablePPO
    if algo == "ppo":
        from stable_baselines3 import PPO

        return PPO
    if algo == "dqn":
        from stable_baselines3 import DQN

        return DQN
    raise ValueError(f"Unknown algo {algo!r}; choose one of {ALGOS}.")


def build_model(args: Args, venv):
    """A fresh SB3 model for ``args.algo`` on ``venv`` (on the CPU, seeded)."""
    cls = algo_class(args.algo)
    common = {
        "learning_rate": args.learning_rate,
        "gamma": args.gamma,
        "seed": args.seed,
        "verbose": 0,
        "device": "cpu",
        "policy_kwargs": {"net_arch": list(args.net_arch)},
    }
    if args.algo == "dqn":
        return cls(
            POLICIES[args.actions],
            venv,
            batch_size=args.batch_size,
            buffer_size=max(10_000, min(args.timesteps, 200_000)),
            learning_starts=min(1_000, args.timesteps // 10),
            train_freq=4,
            target_update_interval=1_000,
            exploration_fraction=0.3,
            **common,
        )
    return cls(
        POLICIES[args.actions],
        venv,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        ent_coef=args.ent_coef,
        **common,
    )


def make_callbacks(args: Args, out: Path, stores: list[Any]):
    """Progress bar, checkpoint and (``eval_freq``) protocol evaluation callbacks."""
    from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
    from tqdm import tqdm

    class ProgressBar(BaseCallback):
        """A tqdm bar over timesteps showing the recent mean episode reward."""

        def _on_training_start(self) -> None:
            self.bar = tqdm(
                total=args.timesteps, desc=f"train {args.algo}", unit="step", mininterval=2.0
            )

        def _on_step(self) -> bool:
            # rollouts round the budget up to whole batches; do not count past the total
            self.bar.update(min(self.training_env.num_envs, self.bar.total - self.bar.n))
            buf = self.model.ep_info_buffer
            if buf and self.n_calls % 50 == 0:
                self.bar.set_postfix(ep_rew=f"{np.mean([e['r'] for e in buf]):.3f}")
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    callbacks = []
    if args.progress:
        callbacks.append(ProgressBar())
    if args.checkpoint_every > 0:
        callbacks.append(
            CheckpointCallback(
                save_freq=max(1, args.checkpoint_every // args.n_envs),
                save_path=str(out / "checkpoints"),
                name_prefix="model",
            )
        )
    if args.eval_freq > 0:
        from agents.rl.eval_callback import ProtocolEvalCallback

        kwargs: dict[str, Any] = {"actions": args.actions, "max_branches": args.max_branches}
        if args.actions == "macro":
            kwargs["max_macro_steps"] = args.max_macro_steps
        callbacks.append(
            ProtocolEvalCallback(
                stores, args.eval_freq, args.eval_seeds, out, args.cost_weight, kwargs
            )
        )
    return callbacks


def make_logger(args: Args, out: Path, run_name: str):
    """SB3's logger: CSV in ``OUT/progress.csv``, plus TensorBoard in ``DIR/run_name``."""
    from stable_baselines3.common.logger import Logger, make_output_format

    formats = [make_output_format("csv", str(out))]
    if args.tensorboard:
        formats.append(make_output_format("tensorboard", str(Path(args.tensorboard) / run_name)))
    return Logger(str(out), formats)


def train(args: Args) -> dict[str, Any]:
    """Train, save ``OUT/model.zip`` and ``OUT/config.json``; returns the config written."""
    args.validate()
    needed = ["torch", "stable_baselines3"]
    if args.algo == "maskable-ppo":
        needed.append("sb3_contrib")
    require_extra("rl", f"tts-gym train-rl --algo {args.algo}", needed)  # before any work
    if args.tensorboard:
        require_extra("rl", "tts-gym train-rl --tensorboard", ["tensorboard"])
    import torch
    from stable_baselines3.common.utils import set_random_seed

    from tts_gym.io import write_json_atomic

    torch.set_num_threads(args.torch_threads)
    random.seed(args.seed)
    np.random.seed(args.seed)  # noqa: NPY002 - SB3 internals still draw from the global RNG
    set_random_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stores = load_training_stores(args)
    venv = make_vec_env(args, stores)
    model = build_model(args, venv)
    run_name = f"{args.experiment}__{args.seed}__{int(time.time())}"
    logger = make_logger(args, out, run_name)
    model.set_logger(logger)
    callbacks = make_callbacks(args, out, stores)
    start = time.perf_counter()
    try:
        model.learn(total_timesteps=args.timesteps, callback=callbacks)
    finally:
        logger.close()  # flushes and closes progress.csv, also when training is interrupted
    seconds = time.perf_counter() - start
    model.save(out / "model.zip")
    recent = [e["r"] for e in model.ep_info_buffer] if model.ep_info_buffer else []
    config = {
        **args.config(),
        "exp_name": args.experiment,
        "run_name": run_name,
        "tensorboard_dir": str(Path(args.tensorboard) / run_name) if args.tensorboard else None,
        "stores": [s.name for s in stores],
        "train_seconds": round(seconds, 1),
        "final_mean_episode_reward": float(np.mean(recent)) if recent else None,
        "action_space": args.actions,
        "env": ENV_IDS[args.actions],
    }
    if args.actions == "macro":  # what the rl: controller needs to rebuild the observation
        config["actions"] = list(ACTION_NAMES)
        config["features"] = list(FEATURES)
    else:
        config["actions"] = "atomic"
    evaluator = next((c for c in callbacks if hasattr(c, "best")), None)
    if evaluator is not None and evaluator.best is not None:
        config["best_model"] = {**evaluator.best, "path": str(out / "best_model.zip")}
    write_json_atomic(out / CONFIG_NAME, config)
    venv.close()
    return config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per :class:`Args` field (underscores become dashes)."""
    for f in dataclasses.fields(Args):
        if f.name == "store":
            continue
        flag = "--" + f.name.replace("_", "-")
        doc = _field_docs().get(f.name, "")
        default = f.default
        if f.name in ("models", "net_arch"):
            kind = str if f.name == "models" else int
            parser.add_argument(flag, nargs="+", type=kind, default=list(default), help=doc)
        elif isinstance(default, bool):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=default, help=doc
            )
        elif f.name in ("algo", "actions"):
            choices = ALGOS if f.name == "algo" else ACTION_SPACES
            parser.add_argument(flag, choices=choices, default=default, help=doc)
        else:
            kind = type(default) if default is not None else str
            parser.add_argument(flag, type=kind, default=default, help=doc)  # the CLI prints it


def args_from(ns: argparse.Namespace) -> Args:
    """An :class:`Args` from parsed flags."""
    values = {f.name: getattr(ns, f.name) for f in dataclasses.fields(Args) if f.name != "store"}
    values["models"] = tuple(values["models"])
    values["net_arch"] = tuple(values["net_arch"])
    return Args(**values)


def _field_docs() -> dict[str, str]:
    """Field docstrings (the string literal after each field) of :class:`Args`."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(Args)))
    docs: dict[str, str] = {}
    body = tree.body[0].body
    for node, nxt in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
        ):
            docs[node.target.id] = str(nxt.value.value)
    return docs


def main(argv: list[str] | None = None) -> int:
    """``python -m agents.rl.train``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    config = train(args_from(parser.parse_args(argv)))
    print(json.dumps({k: config[k] for k in ("algo", "timesteps", "train_seconds", "out")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
