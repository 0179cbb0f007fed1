"""How every ``tts-gym`` sub-command prints its flags: each default exactly once, required flags
marked (standard library only)."""

from __future__ import annotations

import argparse
import re
from typing import Any

STATES_DEFAULT = re.compile(r"\(default\b|\bdefault:", re.IGNORECASE)
"""A help text that already states its default: ``"(default 100)"``, ``"(default: every core)"``,
``"default: sc asc"`` (not a mere mention such as "torch's default")."""


def shown(value: Any) -> str:
    """A default as the help prints it: lists space-separated, like the command line takes them.

    >>> shown(["Qwen3-8B", "Qwen3-4B"]), shown(0.5), shown("auto")
    ('Qwen3-8B Qwen3-4B', '0.5', 'auto')
    """
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return str(value)


def has_default(action: argparse.Action) -> bool:
    """Whether ``action`` has a default worth printing: not None, not an off switch, not an
    empty list, not ``--help`` / ``--version``."""
    default = action.default
    if default is None or default is argparse.SUPPRESS or isinstance(default, bool):
        return False
    if isinstance(default, (list, tuple)) and not default:
        return False
    return not isinstance(action, (argparse._HelpAction, argparse._VersionAction))


class HelpFormatter(argparse.HelpFormatter):
    """Adds ``(required)`` to a required flag and ``(default: X)`` to a flag whose help does not
    state its default already; nothing to a flag without a default (None, off, empty)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings:  # positionals are required by their place
            return text
        if action.required:
            return text if "required" in text else f"{text} (required)"
        if has_default(action) and not STATES_DEFAULT.search(text):
            return f"{text} (default: {shown(action.default).replace('%', '%%')})"
        return text


class Parser(argparse.ArgumentParser):
    """The parser class of every sub-command: prints flags with :class:`HelpFormatter` (also for
    a plug-in that asked for argparse's plain or defaults formatter)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("formatter_class") in (None, argparse.HelpFormatter,
                                             argparse.ArgumentDefaultsHelpFormatter):
            kwargs["formatter_class"] = HelpFormatter
        super().__init__(*args, **kwargs)
