"""``tts-gym toy-server``: a deterministic toy model behind an engine's protocol on 127.0.0.1, so
``collect`` -> ``inspect`` -> ``eval`` -> ``gym.make`` can be tried in a minute without a GPU.
See ``docs/collect.md``."""

from __future__ import annotations

import argparse
import sys

ENGINE_NAMES = ("vllm", "sglang", "llama.cpp")
"""Protocols the toy server speaks (keys of :data:`tts_gym.collect.toy_engines.ENGINES`)."""

DEFAULT_MODEL = "toy/Toy-1B"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 0..65535, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``toy-server`` sub-command."""
    p = sub.add_parser(
        "toy-server",
        help="serve a deterministic toy model on 127.0.0.1, to try collect without a GPU",
        description="Serve a toy reasoning model (deterministic, a few hundred tokens per "
        "trajectory; its answers follow [toy gold | wrong | ...] tags in the problem text) "
        "behind vLLM's, SGLang's or llama.cpp's protocol on 127.0.0.1 until Ctrl-C. Prints the "
        "URL and a collect command to try. The same server tests tts-gym collect.",
    )
    p.add_argument("--port", type=_port, default=8000,
                   help="port on 127.0.0.1 (0: any free port, printed)")
    p.add_argument("--engine", choices=ENGINE_NAMES, default="vllm",
                   help="whose protocol to speak")
    p.add_argument("--model-name", default=DEFAULT_MODEL, help="the served model's name")
    p.add_argument("--problems", metavar="FILE", default=None,
                   help="also write a problem file for the toy model (JSON lines) to FILE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (exit 130 on Ctrl-C, after closing the socket)."""
    from tts_gym.collect.toy_engines import ENGINES
    from tts_gym.collect.toy_model import write_toy_problems

    problems = write_toy_problems(args.problems) if args.problems else None
    try:
        server = ENGINES[args.engine](model=args.model_name, port=args.port)
    except OSError as exc:
        raise OSError(f"cannot listen on 127.0.0.1:{args.port} ({exc.strerror or exc}); "
                      "choose another --port (0: any free one).") from None
    print(f"toy model {args.model_name} ({args.engine} protocol) at {server.base_url}; "
          "Ctrl-C stops it.", flush=True)
    if problems is not None:
        print(f"problems: {problems}. Try: tts-gym collect {problems} --base-url "
              f"{server.base_url} --model-name {args.model_name} --out toy-stores --branches 16 "
              "--interval 16 --max-tokens 200", flush=True)
    try:
        server.server.serve_forever()
    finally:
        server.server.server_close()
        print("toy server stopped.", file=sys.stderr, flush=True)
    return 0
