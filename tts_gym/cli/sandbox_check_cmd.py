"""``tts-gym sandbox-check``: which isolation layers candidate code gets on this machine."""

from __future__ import annotations

import argparse
import json

from tts_gym.sandbox.layers import check, describe
from tts_gym.sandbox.limits import SandboxLimits


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``sandbox-check`` sub-command."""
    p = sub.add_parser(
        "sandbox-check",
        help="show the isolation layers untrusted controller code gets here",
        description="Spawn one candidate process the way discover and eval file: do and print "
        "each isolation layer it got (required and optional). Exit code 0 when every required "
        "layer is on, 1 otherwise.",
    )
    p.add_argument("--netns", action="store_true",
                   help="also try the optional network/IPC namespace (default: off)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the report."""
    report = check(SandboxLimits(netns=args.netns))
    print(json.dumps(report, indent=1) if args.json else describe(report))
    return 0 if report["ok"] else 1
