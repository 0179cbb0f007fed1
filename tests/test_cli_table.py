"""The static command table (tts_gym/cli/commands.py) against what it drives: a fast front door
(``--version`` / ``--help`` import no numba and no command module), dispatch, the extras check
(one sentence per command, before its module is imported), plug-ins, every sub-parser's help
(each default once, required flags marked, every flag explained) and the command lists and flag
lists of docs/cli.md and README."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from tts_gym import cli
from tts_gym.cli.commands import BY_NAME, COMMANDS
from tts_gym.cli.help_format import STATES_DEFAULT, has_default, shown
from tts_gym.extras import EXTRAS

ROOT = Path(__file__).resolve().parents[1]
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|(\s+)(\S+)$")


def imported(argv: list[str]) -> tuple[set[str], subprocess.CompletedProcess]:
    """Module names ``python -X importtime -m tts_gym ARGV`` imports, and the process."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "tts_gym", *argv],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    names = {m[2] for line in proc.stderr.splitlines() if (m := IMPORT_LINE.match(line))}
    assert "tts_gym.cli" in names, proc.stderr[-2000:]  # the lines were parsed
    return names, proc


def loaded(argv: list[str]) -> set[str]:
    """``sys.modules`` after ``tts-gym ARGV`` in a fresh interpreter (``importlib.import_module``
    imports do not show in ``-X importtime``, so dispatch is checked here)."""
    code = (
        "import sys\n"
        "from tts_gym.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(proc.stdout.splitlines()[-1].split())


@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_the_front_door_imports_no_numba_and_no_command(argv):
    names, proc = imported(argv)
    assert proc.returncode == 0
    for n in (names, loaded(argv)):
        heavy = sorted(m for m in n if m.split(".")[0] in ("numba", "numpy", "gymnasium",
                                                           "agents", "scipy", "tqdm"))
        assert heavy == []
        assert not n & {c.module for c in COMMANDS}
    if argv == ["--version"]:
        from tts_gym import __version__

        assert proc.stdout.strip() == f"tts-gym {__version__}"
    else:
        listed = re.findall(r"^    (\S+)", proc.stdout, re.M)
        assert listed[: len(COMMANDS)] == [c.name for c in COMMANDS]


def test_running_a_command_imports_only_its_module():
    names = loaded(["inspect", "--help"])
    assert "tts_gym.cli.inspect_cmd" in names
    assert not names & {c.module for c in COMMANDS if c.name != "inspect"}


def test_import_tts_gym_still_registers_and_sets_the_cache_before_kernels():
    code = (
        "import sys, tts_gym\n"
        "assert 'numba' not in sys.modules and 'gymnasium' not in sys.modules\n"
        "import gymnasium as gym\n"
        "assert 'tts_gym/Replay-v0' in gym.registry and 'tts_gym/Synthetic-v0' in gym.registry\n"
        "from tts_gym.kernels import transitions  # a kernel module: numba loads now\n"
        "import numba, os\n"
        "from tts_gym.numba_cache import source_digest\n"
        "assert numba.config.CACHE_DIR.endswith(source_digest()), numba.config.CACHE_DIR\n"
        "assert tts_gym.make_controller and tts_gym.ReplayEnv and callable(tts_gym.warmup)\n"
        "print('ok')\n"
    )
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "TTS_GYM_NUMBA_CACHE_SET")}
    numba_first = (  # numba imported before tts_gym: the folder is set before any kernel
        "import numba, tts_gym\n"
        "from tts_gym.numba_cache import source_digest\n"
        "assert numba.config.CACHE_DIR.endswith(source_digest()), numba.config.CACHE_DIR\n"
        "print('ok')\n"
    )
    for script in (code, numba_first):
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=300, cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)})
        assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


# --- the table ---------------------------------------------------------------------------------
def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


@pytest.fixture(scope="module")
def full_parser() -> argparse.ArgumentParser:
    return cli.build_parser()


def test_every_command_module_is_in_the_table_and_registers_its_row(full_parser):
    files = {f"tts_gym.cli.{p.stem}" for p in (ROOT / "tts_gym" / "cli").glob("*_cmd.py")}
    assert files <= {c.module for c in COMMANDS}
    sub = _subparsers(full_parser)
    assert list(sub.choices)[: len(COMMANDS)] == [c.name for c in COMMANDS]
    helps = {a.dest: a.help for a in sub._choices_actions}
    for c in COMMANDS:
        assert helps[c.name] == c.help, c.name  # the register function says what the table says
        for extra, modules in c.extras:
            assert set(modules) <= set(EXTRAS[extra]), (c.name, extra)


def test_plugin_rows_match_the_entry_points():
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split('[project.entry-points."tts_gym.commands"]', 1)[1].split("\n[", 1)[0]
    declared = dict(re.findall(r'^([\w-]+) = "([^"]+)"$', section, re.M))
    assert declared == {c.name: f"{c.module}:{c.register}" for c in COMMANDS if c.plugin}


def _hide(monkeypatch, modules):
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)  # what Python does for a missing module


@pytest.mark.parametrize("name", [c.name for c in COMMANDS if c.extras])
def test_a_missing_extra_is_one_sentence_before_the_module_loads(name, monkeypatch, capsys):
    command = BY_NAME[name]
    for extra, modules in command.extras:
        _hide(monkeypatch, modules or EXTRAS[extra])
    monkeypatch.delitem(sys.modules, command.module, raising=False)
    assert cli.main([name, "--help"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    extra = command.extras[0][0]
    assert lines[0].startswith(f"tts-gym {name}: error: tts-gym {name} needs ")
    assert f'`pip install "tts-gym[{extra}]"`' in lines[0]
    assert command.module not in sys.modules


def test_commands_without_extras_need_none_of_them():
    """Every command without a table extra shows its help in a process where no extra's package
    can be imported (the modules are fresh there, not cached by other tests)."""
    hidden = sorted({m for modules in EXTRAS.values() for m in modules})
    names = [c.name for c in COMMANDS if not c.extras]
    code = (
        "import sys\n"
        f"for m in {hidden!r}:\n"
        "    sys.modules[m] = None\n"
        "from tts_gym.cli import main\n"
        f"for name in {names!r}:\n"
        "    try:\n"
        "        main([name, '--help'])\n"
        "    except SystemExit as stop:\n"
        "        assert stop.code == 0, name\n"
        "    else:\n"
        "        raise AssertionError(name)\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1] == "ok", proc.stderr[-2000:]


def test_install_hints_are_quoted_everywhere():
    """``pip install tts-gym[x]`` breaks in zsh: every hint in code and docs is quoted."""
    unquoted = re.compile(r"pip install (-e )?(tts-gym|\.)\[")
    for path in [*ROOT.glob("tts_gym/**/*.py"), *ROOT.glob("agents/**/*.py"),
                 *ROOT.glob("docs/*.md"), ROOT / "README.md"]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not unquoted.search(line), f"{path.relative_to(ROOT)}:{n}: {line.strip()}"


# --- plug-ins outside the table ----------------------------------------------------------------
def register_hello(sub: argparse._SubParsersAction) -> None:
    """A third-party command (used through a fake entry point)."""
    p = sub.add_parser("hello", help="say hello")
    p.add_argument("--name", default="world", help="whom to greet")
    p.set_defaults(func=lambda args: print(f"hello {args.name}") or 0)


def test_a_third_party_command_loads_only_when_run(monkeypatch, capsys):
    eps = [EntryPoint("hello", f"{__name__}:register_hello", cli.COMMAND_GROUP),
           EntryPoint("broken", "tts_gym_no_such_module:register", cli.COMMAND_GROUP),
           EntryPoint("discover", "tts_gym_no_such_module:register", cli.COMMAND_GROUP)]
    monkeypatch.setattr(cli, "entry_points", lambda group: eps)
    assert cli.main(["hello", "--name", "tts"]) == 0
    assert capsys.readouterr().out == "hello tts\n"
    with pytest.raises(SystemExit) as stop:  # listed by name, nothing loaded, nothing broken
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0
    assert "plug-in command (tts_gym_no_such_module:register)" in out
    assert re.search(r"^    discover\s+discover controllers", out, re.M)  # the table wins
    assert cli.main(["broken"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "command 'broken' from tts_gym_no_such_module:register" in err[0]
    assert cli.main(["inspect", "--model", "m", "--benchmark", "b", "--data-dir",
                     str(ROOT / "no-such-folder")]) == 2  # the other commands still run


# --- every sub-parser's help -------------------------------------------------------------------
def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def _help_line(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    formatter = parser._get_formatter()
    return " ".join(formatter._expand_help(action).split()) if action.help else ""


def test_every_flag_has_help_and_its_default_once(full_parser):
    for name, parser in _subparsers(full_parser).choices.items():
        for action in _actions(parser):
            where = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help, f"{where} has no help"
            text = _help_line(parser, action)
            assert "(default: None)" not in text, where
            assert len(STATES_DEFAULT.findall(text)) + text.count("by default") <= 1, (where, text)
            if action.required and action.option_strings:
                assert "(required)" in text and not STATES_DEFAULT.search(text), (where, text)
            elif has_default(action) and action.option_strings:
                assert STATES_DEFAULT.search(text), (where, text)
                value = re.escape(shown(action.default))
                assert not re.search(rf"\({value}\)\s*\(default", text), (where, text)


# --- docs/cli.md and README --------------------------------------------------------------------
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
INHERITS = re.compile(r"every flag of \[`([\w-]+)`\]")


def _section(text: str, name: str) -> str:
    parts = re.split(rf"^## {re.escape(name)}\n", text, flags=re.M)
    assert len(parts) == 2, f"docs/cli.md has no single '## {name}' section"
    return parts[1].split("\n## ", 1)[0]


def _prose(section: str) -> str:
    return re.sub(r"^```.*?^```", "", section, flags=re.M | re.S)


def test_docs_cli_lists_every_command_and_every_flag(full_parser):
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| \[`([\w-]+)`\]\(#[\w-]+\) \|", text, re.M)
    assert listed == [c.name for c in COMMANDS]
    for name, parser in _subparsers(full_parser).choices.items():
        if name not in BY_NAME:
            continue
        prose = _prose(_section(text, name))
        documented = set(FLAG.findall(prose))
        for other in INHERITS.findall(prose):  # "every flag of [`table`](#table)"
            documented |= set(FLAG.findall(_prose(_section(text, other))))
        options = {o for a in _actions(parser) for o in a.option_strings}
        assert documented <= options, f"docs/cli.md '{name}' names {documented - options}"
        for action in _actions(parser):
            if action.option_strings:
                assert documented & set(action.option_strings), \
                    f"docs/cli.md '{name}' does not document {action.option_strings[0]}"


def test_readme_lists_every_command():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    cells = re.findall(r"^\| (`tts-gym [^|]+?) \|", section, re.M)
    named = [m for cell in cells for m in re.findall(r"`(?:tts-gym )?([\w-]+)[^`]*`", cell)]
    assert sorted(named) == sorted(c.name for c in COMMANDS)
