"""``tts-gym download``: fetch the 12 published replay stores, verified by SHA-256."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tts_gym.download import (
    DEFAULT_BASE_URL,
    URL_ENV,
    DownloadError,
    base_url_from,
    download_stores,
)
from tts_gym.paths import BENCHMARKS, MODELS, default_download_dir


def _names(values: list[str] | None) -> list[str] | None:
    """Repeatable and comma-separated option values, flattened (None when not given)."""
    if not values:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``download`` sub-command."""
    p = sub.add_parser(
        "download",
        help="fetch the 12 published replay stores (SHA-256 verified)",
        description="Download the AutoTTS replay stores (zhengkid/AutoTTS at the pinned commit) "
        "into the download cache or --data-dir, verifying each file's SHA-256. Files already "
        "present with the right digest are skipped, so an interrupted run can simply be "
        "repeated.",
    )
    p.add_argument(
        "--model",
        action="append",
        metavar="M",
        help=f"only this model (repeatable or comma-separated; {', '.join(MODELS)})",
    )
    p.add_argument(
        "--benchmark",
        action="append",
        metavar="B",
        help=f"only this benchmark (repeatable or comma-separated; {', '.join(BENCHMARKS)})",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help=f"target folder (default: the download cache, {default_download_dir()})",
    )
    p.add_argument(
        "--base-url",
        default=None,
        help=f"folder URL holding <model>/<benchmark>.json (default: {URL_ENV}, "
        f"else {DEFAULT_BASE_URL})",
    )
    p.add_argument(
        "--timeout", type=float, default=60.0, help="seconds without progress (default 60)"
    )
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        help="extra attempts after a dropped connection (default 2)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Download, printing one progress line per file on stderr; exit 1 on failure."""
    target = Path(args.data_dir).expanduser() if args.data_dir else default_download_dir()
    base = base_url_from(args.base_url)
    print(f"tts-gym download: from {base} into {target}", file=sys.stderr)
    try:
        results = download_stores(
            _names(args.model),
            _names(args.benchmark),
            target,
            base_url=base,
            timeout=args.timeout,
            retries=max(0, args.retries),
            log=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except DownloadError as exc:
        print(f"tts-gym download: error: {exc}", file=sys.stderr)
        return 1
    fetched = sum(r.status != "present" for r in results)
    print(
        f"{len(results)} stores verified in {target} "
        f"({fetched} downloaded, {len(results) - fetched} already present)."
    )
    env = os.environ.get("TTS_GYM_DATA")
    if env and Path(env).expanduser().resolve() != target.resolve():
        print(
            f"note: TTS_GYM_DATA={env} is set and is searched before {target}; unset it "
            f"or pass --data-dir {target} to use these files.",
            file=sys.stderr,
        )
    return 0
