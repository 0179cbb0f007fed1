"""``tts-gym`` command line.

Built-in commands live one per module in this package, named ``*_cmd.py`` (found automatically);
other
packages add commands through the entry-point group ``tts_gym.commands``: each entry point is a
``register(subparsers)`` function that adds one sub-parser whose ``func(args) -> int`` runs it.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from importlib.metadata import entry_points

from tts_gym.extras import MissingExtraError

COMMAND_GROUP = "tts_gym.commands"


class CliError(Exception):
    """A user error: printed as one sentence, exit code 2."""


def builtin_commands() -> list[str]:
    """Module names of the built-in commands (``tts_gym/cli/*_cmd.py``), sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith("_cmd"))


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every built-in and plug-in command."""
    parser = argparse.ArgumentParser(
        prog="tts-gym",
        description="Replay environment and controllers for test-time scaling "
        "(AutoTTS). Data: --data-dir, else TTS_GYM_DATA, else the download cache.",
    )
    from tts_gym import __version__

    parser.add_argument("--version", action="version", version=f"tts-gym {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in builtin_commands():
        importlib.import_module(f"tts_gym.cli.{name}").register(sub)
    for ep in entry_points(group=COMMAND_GROUP):
        try:
            ep.load()(sub)
        except Exception as exc:  # a broken plug-in must not take the other commands down
            print(f"tts-gym: warning: command {ep.name!r} from {ep.value} is unavailable "
                  f"({type(exc).__name__}: {exc}); reinstall or fix that package.",
                  file=sys.stderr)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tts-gym`` console script."""
    from tts_gym.executor.base import ExecutorError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except BrokenPipeError:  # `tts-gym ... | head -3`: the reader left; end quietly
        _silence_stdout()
        return 0
    except (CliError, ExecutorError, OSError, ValueError, MissingExtraError) as exc:
        print(f"tts-gym {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tts-gym {args.command}: interrupted", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout replaced by a non-file object
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
