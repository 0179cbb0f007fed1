"""``tts-gym collect``: build a replay store from a model served behind an OpenAI-compatible
completions endpoint (vLLM, SGLang, llama.cpp). See ``docs/collect.md``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tts_gym.cli import CliError
from tts_gym.cli.common import positive_int

DEFAULTS = {
    "branches": 128,
    "interval": 500,
    "max_tokens": 40000,
    "temperature": 0.7,
    "top_p": 0.95,
    "probe_max_tokens": 32,
}


def _ranged(cast: type, low: float, high: float | None = None, *, above: bool = False):
    """argparse type: ``cast(text)`` within ``[low, high]`` (``(low, high]`` when ``above``)."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < low or (above and value == low) or (high is not None and value > high):
            bound = f"> {low}" if above else f">= {low}"
            raise argparse.ArgumentTypeError(
                f"must be {bound}{'' if high is None else f' and <= {high}'}, got {value}"
            )
        return value

    return parse


_non_negative_int = _ranged(int, 0)
_temperature = _ranged(float, 0.0, 2.0)
_top_p = _ranged(float, 0.0, 1.0, above=True)
_seconds = _ranged(float, 0.0, above=True)
_min_p = _ranged(float, 0.0, 1.0)
_penalty = _ranged(float, 0.0, 2.0, above=True)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``collect`` sub-command."""
    p = sub.add_parser(
        "collect",
        help="build a replay store from a served model (vLLM, SGLang, llama.cpp)",
        description="Sample N reasoning trajectories per problem from an OpenAI-compatible "
        "completions server, probe each one every D generated tokens of its thinking, and write "
        "a replay store DIR/<store-model>/<benchmark>.json (plus .meta.json and .raw.json) that "
        "every tts-gym command reads with --data-dir DIR --model <store-model> --benchmark "
        "<benchmark>. Interrupted runs continue where they stopped when rerun with the same "
        "arguments. Needs the collect extra: pip install \"tts-gym[collect]\".",
    )
    p.add_argument("problems", metavar="PROBLEMS",
                   help="JSONL (or .csv, .parquet) with fields id, problem, answer")
    p.add_argument("--base-url", action="append", required=True, metavar="URL",
                   help="server, e.g. http://127.0.0.1:8000/v1 (repeat to share the load)")
    p.add_argument("--model-name", required=True, help="the model as the server names it")
    p.add_argument("--out", required=True, metavar="DIR", help="data directory to write into")
    p.add_argument("--branches", type=positive_int, default=DEFAULTS["branches"],
                   help="trajectories per problem N (default 128)")
    p.add_argument("--interval", type=positive_int, default=DEFAULTS["interval"],
                   help="probe every D generated thinking tokens (default 500)")
    p.add_argument("--max-tokens", type=positive_int, default=DEFAULTS["max_tokens"],
                   help="generation budget per trajectory (default 40000)")
    p.add_argument("--temperature", type=_temperature, default=DEFAULTS["temperature"],
                   help="sampling temperature (default 0.7, the paper's)")
    p.add_argument("--top-p", type=_top_p, default=DEFAULTS["top_p"],
                   help="nucleus sampling (default 0.95)")
    p.add_argument("--top-k", type=_non_negative_int, default=0,
                   help="top-k sampling (default 0: off; sent explicitly to every engine)")
    p.add_argument("--min-p", type=_min_p, default=0.0,
                   help="min-p sampling (default 0: off; sent explicitly)")
    p.add_argument("--repetition-penalty", type=_penalty, default=1.0,
                   help="repetition penalty (default 1: off; sent explicitly)")
    p.add_argument("--probe-suffix", default=None,
                   help="text appended to a prefix to ask for the answer (default: Dynasor's "
                   "'... Oh, I suddenly got the answer ... \\boxed{')")
    p.add_argument("--probe-max-tokens", type=positive_int, default=DEFAULTS["probe_max_tokens"],
                   help="tokens a probe may generate, greedily (default 32)")
    p.add_argument("--template", default="qwen3",
                   help="qwen3, deepseek-r1, raw, or a file with {problem} (default qwen3)")
    p.add_argument("--think-end", default=None,
                   help="end-of-thinking marker (default </think> for qwen3 and deepseek-r1, "
                   "none otherwise)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="run seed (default 0)")
    p.add_argument("--store-model", default=None,
                   help="store folder name (default: last path part of --model-name)")
    p.add_argument("--benchmark", default=None,
                   help="store file stem (default: the problem file's stem)")
    p.add_argument("--split", choices=("heldout", "search"), default="heldout",
                   help="heldout (default) or search: whether discovery may read the store")
    p.add_argument("--api-key-env", default=None, metavar="VAR",
                   help="environment variable holding the server's API key")
    p.add_argument("--token-mode", choices=("auto", "ids", "tokenize", "text"), default="auto",
                   help="how prefixes are cut (default auto: ids, token-exact, or a refusal; "
                   "tokenize and text are inexact and must be asked for)")
    p.add_argument("--check", action="store_true",
                   help="detect the engine and print the pre-flight (token mode, context, "
                   "effective sampling, token and time estimate), then stop; writes nothing")
    p.add_argument("--max-in-flight", type=positive_int, default=64,
                   help="requests in flight per server (default 64)")
    p.add_argument("--max-tokens-total", type=positive_int, default=None,
                   help="stop (resumably) after this many generated tokens")
    p.add_argument("--timeout", type=_seconds, default=300.0,
                   help="seconds for a probe or tokenize request (default 300)")
    p.add_argument("--generation-timeout", type=_seconds, default=3600.0,
                   help="seconds for one trajectory (default 3600)")
    p.add_argument("--retries", type=_non_negative_int, default=5,
                   help="extra attempts per request on 429/5xx/timeouts/drops (default 5)")
    p.add_argument("--retry-backoff", type=_seconds, default=2.0,
                   help="first wait between attempts in seconds, doubling (default 2)")
    p.add_argument("--id-field", default="id", help="problem-file field of the id")
    p.add_argument("--problem-field", default="problem", help="field of the problem text")
    p.add_argument("--answer-field", default="answer", help="field of the gold answer")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a store collect wrote earlier with other settings")
    p.add_argument("--keep-work", action="store_true",
                   help="keep the journal folder after the store is written")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Collect, printing progress on stderr and the store's path on stdout."""
    from tts_gym.collect import CollectError, require_extra

    try:
        require_extra()
        return _run(args)
    except CollectError as exc:
        raise CliError(str(exc)) from None


def _run(args: argparse.Namespace) -> int:
    from tts_gym.collect import BudgetReached
    from tts_gym.collect.client import api_key_from
    from tts_gym.collect.config import DEFAULT_PROBE_SUFFIX, CollectConfig
    from tts_gym.collect.problems import Fields, file_digest, read_problems
    from tts_gym.collect.runner import RunOptions, collect
    from tts_gym.collect.templates import load_template
    from tts_gym.retry import RetryPolicy

    problems_path = Path(args.problems).expanduser()
    fields = Fields(args.id_field, args.problem_field, args.answer_field)
    problems = read_problems(problems_path, fields)
    template = load_template(args.template, args.think_end)
    store_model = args.store_model or args.model_name.rstrip("/").split("/")[-1]
    benchmark = args.benchmark or problems_path.stem
    for flag, value in (("--store-model", store_model), ("--benchmark", benchmark)):
        if not value or value.startswith(".") or "/" in value or "\\" in value:
            raise CliError(f"{flag} {value!r} must be a plain folder/file name (no '/', not "
                           "starting with '.').")
    config = CollectConfig(
        problems_sha256=file_digest(problems_path),
        fields=(fields.id, fields.problem, fields.answer),
        model_name=args.model_name,
        template=template.name,
        template_text=template.text,
        think_end=template.think_end,
        branches=args.branches,
        interval=args.interval,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        probe_suffix=DEFAULT_PROBE_SUFFIX if args.probe_suffix is None else args.probe_suffix,
        probe_max_tokens=args.probe_max_tokens,
        seed=args.seed,
        token_mode=args.token_mode,
        store_model=store_model,
        benchmark=benchmark,
        split=args.split,
        top_k=args.top_k,
        min_p=args.min_p,
        repetition_penalty=args.repetition_penalty,
    )
    options = RunOptions(
        base_urls=tuple(args.base_url),
        token_mode=args.token_mode,
        max_in_flight=args.max_in_flight,
        max_tokens_total=args.max_tokens_total,
        timeout_s=args.timeout,
        generation_timeout_s=args.generation_timeout,
        policy=RetryPolicy(max_attempts=args.retries + 1, backoff_s=args.retry_backoff),
        api_key=api_key_from(args.api_key_env),
        overwrite=args.overwrite,
        keep_work=args.keep_work,
        progress=sys.stderr.isatty(),
        check_only=args.check,
    )

    def log(line: str) -> None:
        print(f"tts-gym collect: {line}", file=sys.stderr, flush=True)

    log(f"{len(problems)} problems x {args.branches} branches from {args.model_name} at "
        f"{', '.join(options.base_urls)}")
    try:
        store, meta, collected = collect(problems, config, template, options, args.out, log)
    except BudgetReached as exc:
        print(f"tts-gym collect: {exc}", file=sys.stderr)
        return 3
    if args.check:
        print("\n".join(meta["preflight"]))
        return 0
    counts = meta["counts"]
    state = "collected" if collected else "already collected, nothing to do"
    print(
        f"{store} ({state}): {meta['questions']} questions x {meta['branches_per_question']} "
        f"branches, {counts['generated_tokens']:,} generated tokens "
        f"(+{counts['probe_generated_tokens']:,} in {counts['probes']:,} probes), token mode "
        f"{meta['settings']['token_mode']}, split {meta['split']}. Use: --data-dir "
        f"{Path(args.out)} --model {config.store_model} --benchmark {config.benchmark}"
    )
    return 0
