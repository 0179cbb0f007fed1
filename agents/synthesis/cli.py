"""``tts-gym discover``: the LLM controller-discovery loop from the command line.

Registered through the entry-point group ``tts_gym.commands`` (``discover =
agents.synthesis.cli:register``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.synthesis.llm import DEFAULT_API_KEY_ENV, LLMConfig, Pricing
from agents.synthesis.loop import DEFAULT_BETAS, DiscoveryConfig, run_discovery
from agents.synthesis.seeds import PAPER_SEEDS, SEED_SWEEPS, check_seed_names
from tts_gym.cli import CliError
from tts_gym.cli.common import default_workers
from tts_gym.cli.executor_options import add_executor_args, check_executor_args, executor_from_args
from tts_gym.paths import HELDOUT_BENCHMARKS, MODELS, SEARCH_BENCHMARKS
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.sandbox.zygote_client import SandboxUnavailable


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``discover`` sub-command."""
    p = sub.add_parser(
        "discover",
        help="discover controllers with an LLM (any OpenAI-compatible endpoint)",
        description="AutoTTS discovery loop: round 0 scores the seed controllers; each round "
        "asks the LLM for a beta-controller, lints it, runs it on the search split in "
        "OS-isolated candidate processes behind a broker that alone holds the data (see "
        "`tts-gym sandbox-check`), records everything under --out. Held-out benchmarks are "
        "scored only after selection.",
    )
    p.add_argument("--rounds", type=int, required=True, help="proposal rounds after round 0")
    p.add_argument(
        "--candidates-per-round",
        type=int,
        default=1,
        metavar="K",
        help="sibling proposals per round, asked concurrently with the same history and "
        "evaluated in parallel on the executor",
    )
    p.add_argument(
        "--base-url",
        default=None,
        help="endpoint root, e.g. http://host:8000/v1 (default: OPENAI_BASE_URL, else OpenAI)",
    )
    p.add_argument("--model-name", required=True, help="model name as the endpoint knows it")
    p.add_argument("--out", required=True, help="run folder (history, report.md)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--api-key-env",
        default=DEFAULT_API_KEY_ENV,
        help=f"environment variable holding the API key (default {DEFAULT_API_KEY_ENV})",
    )
    p.add_argument("--budget-usd", type=float, default=None, help="stop once this is spent")
    p.add_argument(
        "--max-tokens-total",
        type=int,
        default=None,
        help="stop once this many LLM tokens (prompt + completion) are used",
    )
    p.add_argument("--price-in", type=float, default=0.0, help="USD per million prompt tokens")
    p.add_argument("--price-out", type=float, default=0.0, help="USD per million completion tokens")
    p.add_argument("--seeds", type=int, default=10, help="shuffle seeds during search")
    p.add_argument(
        "--final-seeds",
        type=int,
        default=100,
        help="shuffle seeds for the final numbers, as many as the paper's",
    )
    p.add_argument(
        "--betas",
        type=float,
        nargs="+",
        default=list(DEFAULT_BETAS),
        help="beta sweep (default 0.0 0.1 ... 1.0)",
    )
    p.add_argument("--models", nargs="+", default=list(MODELS), help="models of the search split")
    p.add_argument(
        "--search-benchmarks",
        nargs="+",
        default=list(SEARCH_BENCHMARKS),
        help="search split (held-out names are refused)",
    )
    p.add_argument(
        "--heldout-benchmarks",
        nargs="+",
        default=list(HELDOUT_BENCHMARKS),
        help="scored after selection only",
    )
    p.add_argument("--data-dir", default=None, help="folder with <model>/<benchmark>.json")
    p.add_argument(
        "--candidate-timeout",
        type=float,
        default=1800.0,
        help="wall-clock seconds for one candidate's whole beta sweep (its processes are killed)",
    )
    p.add_argument("--memory-mb", type=int, default=2048,
                   help="memory limit of each candidate process (MiB)")
    p.add_argument("--episode-watchdog", type=float, default=10.0,
                   help="CPU seconds an episode may compute without calling a primitive")
    p.add_argument("--episode-cpu", type=float, default=SandboxLimits.episode_cpu_s,
                   help="CPU seconds per episode in a candidate process's hard CPU limit "
                   "(the limit: watchdog + this x episodes of the process)")
    p.add_argument(
        "--candidate-workers",
        type=int,
        default=None,
        help="broker processes evaluating units in parallel (default: every core)",
    )
    p.add_argument("--sandbox-netns", action="store_true",
                   help="also give each candidate process a new network/IPC namespace")
    p.add_argument("--unsafe-no-isolation", action="store_true",
                   help="run candidates even if a required isolation layer is missing here "
                   "(only for code you trust)")
    p.add_argument("--request-timeout", type=float, default=600.0, help="seconds per LLM call")
    p.add_argument("--max-attempts", type=int, default=6, help="attempts per LLM call")
    p.add_argument("--backoff", type=float, default=2.0, help="first retry backoff (seconds)")
    p.add_argument("--temperature", type=float, default=None,
                   help="LLM sampling temperature (default: not sent, the endpoint's)")
    p.add_argument("--max-output-tokens", type=int, default=None,
                   help="cap on the completion tokens of one LLM call (default: not sent)")
    p.add_argument("--finalists", type=int, default=3,
                   help="candidates re-scored with --finalist-seeds before the choice")
    p.add_argument("--finalist-seeds", type=int, default=30,
                   help="seeds of the finalists' re-scoring on the search split")
    p.add_argument("--heldout-curve-seeds", type=int, default=10,
                   help="seeds of the chosen controller's held-out curve over the sweep (its "
                   "chosen point uses --final-seeds)")
    p.add_argument(
        "--seed-controllers",
        default=",".join(PAPER_SEEDS),
        metavar="NAMES",
        help="comma-separated seeds that round 0 scores and round 1 shows, among "
        f"{', '.join(SEED_SWEEPS)}; add cmc to start from the state of the art (the score's "
        "budget grid always comes from the paper's four)",
    )
    p.add_argument("--no-traces", action="store_true",
                   help="ablation: show no execution traces to the LLM")
    p.add_argument("--no-beta", action="store_true",
                   help="ablation: no beta knob; each candidate declares a SETTINGS grid that "
                   "the loop sweeps instead")
    p.add_argument(
        "--prompt-chars",
        type=int,
        default=60000,
        help="cap on the history part of the prompt (characters)",
    )
    add_executor_args(p)
    p.set_defaults(func=run)


def config_from(args: argparse.Namespace) -> DiscoveryConfig:
    """The run configuration from parsed flags.

    Raises:
        ValueError: Bad numbers (the message says which flag).
    """
    if args.rounds < 0:
        raise ValueError("--rounds must be >= 0.")
    if args.candidates_per_round < 1:
        raise ValueError("--candidates-per-round must be >= 1.")
    for flag in ("seeds", "final_seeds", "finalists", "finalist_seeds", "heldout_curve_seeds"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1.")
    seed_controllers = check_seed_names(args.seed_controllers.split(","))
    betas = tuple(sorted(set(float(b) for b in args.betas)))
    if any(not 0.0 <= b <= 1.0 for b in betas):
        raise ValueError(f"--betas must lie in [0, 1], got {list(betas)}.")
    return DiscoveryConfig(
        out=Path(args.out),
        rounds=args.rounds,
        llm=LLMConfig(
            model=args.model_name,
            base_url=args.base_url,
            api_key_env=args.api_key_env,
            timeout_s=args.request_timeout,
            max_attempts=args.max_attempts,
            backoff_s=args.backoff,
            temperature=args.temperature,
            max_output_tokens=args.max_output_tokens,
        ),
        models=tuple(args.models),
        search_benchmarks=tuple(args.search_benchmarks),
        heldout_benchmarks=tuple(args.heldout_benchmarks),
        data_dir=args.data_dir,
        betas=betas,
        seeds=args.seeds,
        final_seeds=args.final_seeds,
        limits=SandboxLimits(
            timeout_s=args.candidate_timeout,
            memory_mb=args.memory_mb,
            watchdog_s=args.episode_watchdog,
            episode_cpu_s=args.episode_cpu,
            workers=args.candidate_workers or default_workers(),
            netns=args.sandbox_netns,
            unsafe=args.unsafe_no_isolation,
        ),
        pricing=Pricing(args.price_in, args.price_out),
        budget_usd=args.budget_usd,
        max_tokens_total=args.max_tokens_total,
        resume=args.resume,
        prompt_chars=args.prompt_chars,
        no_traces=args.no_traces,
        no_beta=args.no_beta,
        finalists=args.finalists,
        finalist_seeds=args.finalist_seeds,
        heldout_curve_seeds=args.heldout_curve_seeds,
        candidates_per_round=args.candidates_per_round,
        seed_controllers=seed_controllers,
    )


def run(args: argparse.Namespace) -> int:
    """Run or resume the loop; exit 0 when it completed or hit its budget, 1 when the LLM
    endpoint failed (the report is written either way; ``--resume`` continues)."""
    check_executor_args(args)
    cfg = config_from(args)
    try:
        with executor_from_args(args, args.candidate_workers):
            summary = run_discovery(cfg)
    except SandboxUnavailable as exc:
        raise CliError(str(exc)) from None
    chosen = summary["chosen"]
    print(f"report: {cfg.out / 'report.md'}")
    if chosen:
        knob = "setting" if args.no_beta else "beta"
        print(
            f"chosen: round {chosen['round']} {knob}={chosen[knob]} (score "
            f"{chosen['score']:.2f}); search accuracy {chosen['accuracy']:.2f}% at "
            f"{chosen['avg_tokens']:.0f} tokens ({args.finalist_seeds} seeds)"
        )
    stop = summary["stop_reason"]
    if stop:
        print(f"stopped early: {stop}")
        if stop.startswith("LLM endpoint failed"):
            return 1
    return 0
