"""``tts-gym calibrate``: fit the synthetic generator's parameters to a real store."""

from __future__ import annotations

import argparse
import json

from tts_gym.cli.common import add_store_args


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``calibrate`` sub-command."""
    p = sub.add_parser(
        "calibrate",
        help="measure a real store's statistics and fit the synthetic generator to them",
        description="Measure pass@1 per question, distinct answers, probe/final agreement by "
        "position, token quantiles and noise rate of a real store, fit the synthetic model's "
        "parameters, and write them as a small JSON file (numbers only).",
    )
    add_store_args(p)
    p.add_argument("--out", default=None, help="parameter file to write (default: print JSON)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated fits (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Calibrate and write or print the parameter file."""
    from tts_gym.store import load_store
    from tts_gym.synthetic.calibrate import calibrate

    store = load_store(args.model, args.benchmark, args.data_dir)
    params = calibrate(store, seed=args.seed)
    if args.out:
        params.save(args.out)
        st = params.statistics
        print(
            f"calibrated {store.name}: pass@1 mean {st['pass1_mean']:.3f}, distinct answers "
            f"{st['distinct_answers_mean']:.0f}/question, noise rate {st['noise_rate']:.3f} "
            f"-> {args.out}"
        )
    else:
        print(json.dumps(params.to_dict(), indent=1))
    return 0
