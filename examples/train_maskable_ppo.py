"""Train a small MaskablePPO controller in a few minutes and print its held-out row beside CMC's.

Trains on the search split (AIME24 of all four Qwen3 models) with the macro-action env
``tts_gym/ReplayMacro-v0``, then scores the policy on the held-out AIME25 and HMMT25 stores of one
model with the published 100-seed protocol, next to the CMC controller (if installed)::

    TTS_GYM_DATA=/path/to/replay python examples/train_maskable_ppo.py --model Qwen3-8B

Writes ``OUT/model.zip``, ``OUT/config.json`` and ``OUT/heldout.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from agents.rl.policy import RLController
from agents.rl.train import Args, train
from tts_gym import evaluate, load_store, make_controller
from tts_gym.io import write_json_atomic

HELDOUT = ("aime25", "hmmt25")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="Qwen3-8B", help="model whose held-out stores are scored")
    p.add_argument("--timesteps", type=int, default=60_000)
    p.add_argument(
        "--cost-weight",
        type=float,
        default=1e-7,
        help="reward per token; at 1e-6 one full read costs ~0.015 and the policy learns SC@1",
    )
    p.add_argument("--out", default="runs/example-maskable-ppo")
    p.add_argument("--seeds", type=int, default=100)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    a = p.parse_args(argv)

    start = time.perf_counter()
    config = train(
        Args(
            algo="maskable-ppo",
            timesteps=a.timesteps,
            cost_weight=a.cost_weight,
            out=a.out,
            data_dir=a.data_dir,
            seed=a.seed,
        )
    )
    train_seconds = time.perf_counter() - start
    print(f"trained MaskablePPO on {', '.join(config['stores'])} in {train_seconds:.0f} s")

    controllers = {"rl-maskable-ppo": RLController(Path(a.out) / "model.zip")}
    try:
        controllers["cmc"] = make_controller("cmc")
    except (ValueError, ImportError) as exc:  # CMC not installed in this checkout
        print(f"(CMC unavailable: {exc})")
    rows = []
    print(f"\n{'controller':<18} {'store':<18} {'accuracy %':>10} {'avg tokens':>12} {'s':>6}")
    for bench in HELDOUT:
        store = load_store(a.model, bench, a.data_dir)
        for name, ctrl in controllers.items():
            r = evaluate(ctrl, store, a.seeds, workers=a.workers)
            rows.append(
                {
                    "controller": name,
                    "store": store.name,
                    "accuracy": r.accuracy,
                    "avg_tokens": r.avg_tokens,
                    "seconds": round(r.seconds, 1),
                }
            )
            print(
                f"{name:<18} {store.name:<18} {r.accuracy:>10.2f} {r.avg_tokens:>12,.0f} "
                f"{r.seconds:>6.0f}"
            )
    write_json_atomic(
        Path(a.out) / "heldout.json",
        {"train_seconds": round(train_seconds, 1), "config": config, "rows": rows},
    )
    print(json.dumps({"train_seconds": round(train_seconds, 1), "out": a.out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
