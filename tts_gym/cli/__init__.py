"""``tts-gym`` command line.

Every command is a row of the static table :data:`tts_gym.cli.commands.COMMANDS` (name, module,
one-line help, extras). ``main`` imports only the module of the command it runs, after checking
the command's extras, so ``tts-gym --version`` and ``tts-gym --help`` import no command module
and no numba. Other packages add commands through the entry-point group ``tts_gym.commands``:
each entry point is a ``register(subparsers)`` function that adds one sub-parser whose
``func(args) -> int`` runs it; it is loaded only when its name is run (``--help`` lists it by
name without loading it).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Collection
from typing import Any

from tts_gym.cli.commands import BY_NAME, COMMANDS, check_extras
from tts_gym.cli.help_format import Parser
from tts_gym.extras import MissingExtraError

COMMAND_GROUP = "tts_gym.commands"


class CliError(Exception):
    """A user error: printed as one sentence, exit code 2."""


class PluginError(Exception):
    """A plug-in command that cannot be loaded (one sentence)."""


def entry_points(group: str) -> Any:
    """The entry points of ``group`` (importlib.metadata, imported only when needed)."""
    from importlib.metadata import entry_points as found

    return found(group=group)


def plugins() -> dict[str, Any]:
    """Plug-in commands not in the static table: name -> entry point (nothing is loaded)."""
    return {ep.name: ep for ep in entry_points(COMMAND_GROUP) if ep.name not in BY_NAME}


def _register(sub: argparse._SubParsersAction, name: str, plugin: Any = None,
              check: bool = True) -> None:
    """Add the real sub-parser of ``name`` (its extras checked before its module is imported,
    unless ``check`` is off: the modules import without their extras, which they load when run).

    Raises:
        MissingExtraError: The command's extra is missing.
        PluginError: A plug-in's entry point cannot be loaded.
    """
    if plugin is None:
        command = BY_NAME[name]
        if check:
            check_extras(command)
        getattr(importlib.import_module(command.module), command.register)(sub)
        return
    try:
        register = plugin.load()
    except Exception as exc:  # a broken plug-in must not take the other commands down
        raise PluginError(
            f"command {name!r} from {plugin.value} cannot be loaded ({type(exc).__name__}: "
            f"{exc}); reinstall or fix that package."
        ) from None
    register(sub)


def build_parser(real: Collection[str] | None = None, *, list_plugins: bool = True
                 ) -> argparse.ArgumentParser:
    """The ``tts-gym`` parser.

    Args:
        real: Commands to register with their own sub-parsers (their modules are imported);
            the others get a help-only stub from the table. None: every command, whether its
            extras are installed or not (tests, docs tools: the parser only).
        list_plugins: Look up the plug-ins outside the table for their stubs (``--version``
            needs none of them).

    Raises:
        MissingExtraError: A command in ``real`` lacks its extra.
        PluginError: A plug-in in ``real`` cannot be loaded.
    """
    parser = argparse.ArgumentParser(
        prog="tts-gym",
        description="Replay environment and controllers for test-time scaling "
        "(AutoTTS). Data: --data-dir, else TTS_GYM_DATA, else the download cache.",
        epilog="`tts-gym COMMAND --help` prints a command's flags; every command and flag: "
        "docs/cli.md.",
    )
    from tts_gym import __version__

    parser.add_argument("--version", action="version", version=f"tts-gym {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    every = real is None
    names: Collection[str] = () if real is None else real
    for command in COMMANDS:
        if every or command.name in names:
            _register(sub, command.name, check=not every)
        else:
            sub.add_parser(command.name, help=command.help, add_help=False)
    if every or any(name not in BY_NAME for name in names):
        for name, ep in sorted(plugins().items()):
            if every:
                try:
                    _register(sub, name, ep)
                except PluginError as exc:
                    print(f"tts-gym: warning: {exc}", file=sys.stderr)
            elif name in names:
                _register(sub, name, ep)
            else:
                sub.add_parser(name, help=f"plug-in command ({ep.value})", add_help=False)
    elif list_plugins:  # top-level help: list the plug-ins without loading them
        for name, ep in sorted(plugins().items()):
            sub.add_parser(name, help=f"plug-in command ({ep.value})", add_help=False)
    return parser


def command_of(argv: list[str]) -> str | None:
    """The command ``argv`` runs: its first word that is not an option (the top-level options,
    ``--help`` and ``--version``, take no value).

    >>> command_of(["--version"]), command_of(["eval", "sc", "--seeds", "2"])
    (None, 'eval')
    """
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tts-gym`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    name = command_of(argv)
    try:
        parser = build_parser({name} if name else set(), list_plugins="--version" not in argv)
    except (MissingExtraError, PluginError) as exc:
        print(f"tts-gym {name}: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    from tts_gym.executor.base import ExecutorError

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
