"""``tts-gym fidelity``: controllers on a real store and its calibrated synthetic twin."""

from __future__ import annotations

import argparse
import json

from tts_gym.cli.common import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``fidelity`` sub-command."""
    p = sub.add_parser(
        "fidelity",
        help="compare the published controllers on a real store and its synthetic twin",
        description="Score SC@64, ASC, ESC, Parallel-Probe and CMC (whichever are registered) "
        "on the real store and on a synthetic twin drawn from the model's calibrated "
        "parameters; print both side by side with the differences and the two targets "
        "(SC@64 accuracy within 5 points, CMC beta=0.5 token saving vs SC@64 within 10).",
    )
    p.add_argument("--model", required=True, help="e.g. Qwen3-8B")
    p.add_argument("--benchmark", default="aime24", help="real store (default aime24)")
    p.add_argument("--data-dir", default=None, help="folder with <model>/<benchmark>.json")
    p.add_argument(
        "--params",
        default=None,
        help="preset name or parameter file (default: the model's shipped preset; "
        "'calibrate' fits the real store now)",
    )
    p.add_argument("--twin-questions", type=int, default=3000, help="questions of the twin")
    p.add_argument(
        "--seeds", type=positive_int, default=100, help="shuffle seeds on the real store"
    )
    p.add_argument(
        "--twin-seeds", type=positive_int, default=3, help="shuffle seeds on the twin"
    )
    p.add_argument("--seed", type=int, default=0, help="generator seed of the twin")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the twin, score both, print the report."""
    from tts_gym.store import load_store
    from tts_gym.synthetic import generate_store, load_preset, preset_names
    from tts_gym.synthetic.calibrate import calibrate
    from tts_gym.synthetic.fidelity import compare, format_table

    real = load_store(args.model, args.benchmark, args.data_dir)
    if args.params == "calibrate" or (args.params is None and args.model not in preset_names()):
        params = calibrate(real)
        origin = f"calibrated now on {real.name}"
    else:
        params = load_preset(args.params or args.model)
        origin = f"preset {args.params or args.model} ({params.source})"
    twin = generate_store(params, args.twin_questions, real.width, args.seed, name=args.model)
    report = compare(real, twin, real_seeds=args.seeds, twin_seeds=args.twin_seeds)
    report.update(
        {
            "model": args.model,
            "real": real.name,
            "twin": f"{args.twin_questions} synthetic questions, seed {args.seed}, {origin}",
            "real_seeds": args.seeds,
            "twin_seeds": args.twin_seeds,
        }
    )
    if args.json:
        print(json.dumps(report))
        return 0
    title = (
        f"{real.name} ({args.seeds} seeds) vs synthetic twin ({report['twin']}, "
        f"{args.twin_seeds} seeds)"
    )
    print(format_table(report, title))
    return 0
