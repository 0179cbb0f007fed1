"""Optional dependencies ("extras") and the one-sentence error when one is missing.

``pip install -e .`` gives the env, the controllers and the CLI. Some commands need more:

| extra  | packages (import names)                        | needed by                           |
|--------|------------------------------------------------|-------------------------------------|
| ``rl`` | torch, stable_baselines3, sb3_contrib          | ``tts-gym train-rl``                |
| ``plot`` | matplotlib                                   | ``tts-gym plot``, the demo's PNG    |
| ``llm`` | openai                                        | ``tts-gym discover``                |
| ``ray`` | ray                                           | ``--executor ray`` (any command)    |
| ``collect`` | math_verify, latex2sympy2_extended       | ``tts-gym collect``                 |

The command table (:mod:`tts_gym.cli.commands`) names the extras each command needs, and the CLI
calls :func:`require_extra` for them before it imports the command's module; commands whose needs
depend on their flags (``train-rl --algo``, ``--executor ray``) call it again before doing any
work or creating any folder. So a missing package is one sentence naming the extra to install,
never a traceback halfway through. The pip command in it is in double quotes, which every shell
(bash, zsh, fish, PowerShell, cmd.exe) passes as one word with its brackets.
The check asks the import system whether the module can be found
(:func:`importlib.util.find_spec`): it imports nothing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

EXTRAS: dict[str, tuple[str, ...]] = {
    "rl": ("torch", "stable_baselines3", "sb3_contrib"),
    "plot": ("matplotlib",),
    "llm": ("openai",),
    "ray": ("ray",),
    "collect": ("math_verify", "latex2sympy2_extended"),
}
"""Extra name -> the import names of its packages (pyproject's ``optional-dependencies``)."""
PIP_NAMES = {"stable_baselines3": "stable-baselines3", "sb3_contrib": "sb3-contrib",
             "math_verify": "math-verify"}
"""Import name -> distribution name, where they differ."""


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported (found on the path; nothing is imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a None in sys.modules
        return False


def missing_modules(extra: str, modules: Sequence[str] | None = None) -> list[str]:
    """The modules of ``extra`` (or the given subset of them) that are not installed."""
    wanted = EXTRAS[extra] if modules is None else tuple(modules)
    return [m for m in wanted if not is_installed(m)]


def require_extra(extra: str, what: str, modules: Sequence[str] | None = None) -> None:
    """Raise :class:`MissingExtraError` if ``what`` cannot run for lack of the ``extra``.

    Args:
        extra: A key of :data:`EXTRAS` (``"rl"``, ``"plot"``, ``"llm"``, ``"ray"``,
            ``"collect"``).
        what: What needs it, as the user typed it (e.g. ``"tts-gym train-rl"``).
        modules: The import names ``what`` truly needs (default: all of the extra's).

    Raises:
        MissingExtraError: One sentence: what needs which packages, and the pip command.

    >>> require_extra("plot", "tts-gym plot", modules=["json"])  # installed: no error
    >>> try:
    ...     require_extra("rl", "tts-gym train-rl", modules=["tts_gym_no_such_module"])
    ... except MissingExtraError as exc:
    ...     print(exc)
    tts-gym train-rl needs tts_gym_no_such_module, which is not installed: install the "rl"
    extra with `pip install "tts-gym[rl]"` (from a clone: `pip install -e ".[rl]"`).
    """
    missing = missing_modules(extra, modules)
    if not missing:
        return
    names = [PIP_NAMES.get(m, m) for m in missing]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    verb = "is" if len(names) == 1 else "are"
    raise MissingExtraError(
        f'{what} needs {listed}, which {verb} not installed: install the "{extra}" extra '
        f'with `pip install "tts-gym[{extra}]"` (from a clone: `pip install -e ".[{extra}]"`).'
    )
