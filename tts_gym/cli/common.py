"""Argument helpers shared by the CLI commands."""

from __future__ import annotations

import argparse
from typing import Any

from tqdm import tqdm

from tts_gym.controller import parse_param
from tts_gym.reporting.cells import default_workers  # noqa: F401 (re-exported for commands)


def add_store_args(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--model``, ``--benchmark``, ``--data-dir``."""
    parser.add_argument(
        "--model", required=required, help="a model folder of the data directory, e.g. Qwen3-8B"
    )
    parser.add_argument(
        "--benchmark", required=required, help="a store of that model, e.g. aime24, aime25, hmmt25"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder with <model>/<benchmark>.json (default: TTS_GYM_DATA, "
        "else the download cache)",
    )


def add_param_args(parser: argparse.ArgumentParser) -> None:
    """Repeatable ``--param key=value``."""
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="controller parameter, repeatable (e.g. --param n=64)",
    )


def params_from(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--param`` values as a dict."""
    return dict(parse_param(p) for p in args.param)


def progress_bar(total: int, desc: str, enabled: bool = True) -> tqdm:
    """A tqdm bar on stderr (hidden when not a terminal unless forced)."""
    return tqdm(total=total, desc=desc, unit="seed", disable=not enabled, leave=False)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (seeds, workers)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_episode_cpu_arg(parser: argparse.ArgumentParser) -> None:
    """``--episode-cpu SECONDS``: the per-episode CPU budget of ``file:`` controllers (the same
    flag as ``discover``'s)."""
    from tts_gym.sandbox.limits import SandboxLimits

    parser.add_argument(
        "--episode-cpu", type=positive_float, default=SandboxLimits.episode_cpu_s,
        metavar="SECONDS",
        help="file: controllers: CPU seconds an episode (and the file's top-level code and "
        "constructor) may compute without calling a primitive; past it the episode is "
        "stopped and the line it was running is named (default: %(default)s)")


def positive_float(text: str) -> float:
    """argparse type: a number > 0 (seconds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value
