"""The command table: every ``tts-gym`` command, the module that implements it, its one-line help
and the extras it needs (standard library only, so reading it costs nothing).

The table drives three things: dispatch (``tts_gym.cli.main`` imports only the module of the
command it runs), the extras check (a command whose extra is missing stops with one sentence
before its module is imported) and the docs test (``docs/cli.md`` and README list exactly these
commands). A command's module defines ``register(subparsers)``, which adds its sub-parser with a
``func(args) -> int``.

Commands of other packages come through the entry-point group ``tts_gym.commands``
(``NAME = "module:register"``). The ones this distribution registers there (``discover``,
``train-rl``) are also in the table, with their module and register function, so they too are
imported only when run. A plug-in that is not in the table is loaded only when its name is run;
``tts-gym --help`` lists it by name and entry point without importing it (a slow or broken
plug-in cannot slow down or break the help of the others).
"""

from __future__ import annotations

from typing import NamedTuple


class Command(NamedTuple):
    """One row of the table.

    Attributes:
        name: What the user types (``tts-gym NAME``).
        module: The module defining the ``register`` function.
        help: The one-line help of ``tts-gym --help`` (the sub-parser gets the same).
        extras: ``(extra, import names)`` the command always needs; an empty tuple of names means
            every package of the extra (:data:`tts_gym.extras.EXTRAS`).
        register: The name of the register function in ``module``.
        plugin: Also registered in the entry-point group ``tts_gym.commands`` (pyproject).
    """

    name: str
    module: str
    help: str
    extras: tuple[tuple[str, tuple[str, ...]], ...] = ()
    register: str = "register"
    plugin: bool = False


COMMANDS: tuple[Command, ...] = (
    Command("demo", "tts_gym.cli.demo_cmd",
            "run the published controllers on one model: table + accuracy-vs-tokens plot"),
    Command("eval", "tts_gym.cli.eval_cmd",
            "score a controller (accuracy, avg tokens) on one store"),
    Command("controllers", "tts_gym.cli.controllers_cmd",
            "list the registered controllers: parameters, ranges, defaults, source paper"),
    Command("table", "tts_gym.cli.table_cmd",
            "the paper's main table: SC@64, ASC, ESC, Parallel-Probe, CMC β=0.5/1.0"),
    Command("sweep", "tts_gym.cli.sweep_cmd",
            "budget sweeps (accuracy vs tokens) with Pareto frontiers"),
    Command("plot", "tts_gym.cli.plot_cmd",
            "accuracy-vs-tokens PNGs (log x, Pareto frontier), one per (model, benchmark)",
            extras=(("plot", ()),)),
    Command("compare", "tts_gym.cli.compare_cmd",
            "compare two controllers (or two `sweep --json` files) band by band, with the "
            "verdict"),
    Command("download", "tts_gym.cli.download_cmd",
            "fetch the 12 published replay stores (SHA-256 verified)"),
    Command("inspect", "tts_gym.cli.inspect_cmd", "summarise a replay store"),
    Command("calibrate", "tts_gym.cli.calibrate_cmd",
            "measure a real store's statistics and fit the synthetic generator to them"),
    Command("fidelity", "tts_gym.cli.fidelity_cmd",
            "compare the published controllers on a real store and its synthetic twin"),
    Command("collect", "tts_gym.cli.collect_cmd",
            "build a replay store from a served model (vLLM, SGLang, llama.cpp)",
            extras=(("collect", ()),)),
    Command("toy-server", "tts_gym.cli.toy_server_cmd",
            "serve a deterministic toy model on 127.0.0.1, to try collect without a GPU"),
    Command("sandbox-check", "tts_gym.cli.sandbox_check_cmd",
            "show the isolation layers untrusted controller code gets here"),
    Command("train-rl", "agents.rl.cli",
            "train a PPO / MaskablePPO / DQN policy on the macro-action (or atomic) env",
            extras=(("rl", ("torch", "stable_baselines3")),), plugin=True),
    Command("discover", "agents.synthesis.cli",
            "discover controllers with an LLM (any OpenAI-compatible endpoint)",
            extras=(("llm", ()),), plugin=True),
)
"""Every command of this distribution, in the order ``tts-gym --help`` lists them."""

BY_NAME: dict[str, Command] = {c.name: c for c in COMMANDS}
"""The table by command name."""


def check_extras(command: Command) -> None:
    """Refuse, in one sentence, a command whose extra is missing (imports nothing).

    Raises:
        tts_gym.extras.MissingExtraError: Names the extra and the quoted pip command.
    """
    from tts_gym.extras import require_extra

    for extra, modules in command.extras:
        require_extra(extra, f"tts-gym {command.name}", modules or None)
