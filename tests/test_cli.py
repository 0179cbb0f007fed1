"""The CLI's plumbing: command discovery and plug-in failures (more in test_cli_table.py)."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from tts_gym import cli


def test_the_table_dispatches_the_builtin_commands():
    from tts_gym.cli.commands import BY_NAME

    assert {"eval", "inspect", "download", "collect", "sandbox-check"} <= set(BY_NAME)
    parser = cli.build_parser({"inspect"})
    assert parser.parse_args(["inspect", "--model", "m", "--benchmark", "b"]).command == "inspect"


def test_broken_plugin_command_is_skipped_with_a_warning(monkeypatch, capsys):
    """The full parser (docs, tools) skips a plug-in that cannot be loaded, with a warning."""
    broken = EntryPoint(name="broken", value="tts_gym_no_such_module:register",
                        group=cli.COMMAND_GROUP)
    monkeypatch.setattr(cli, "entry_points", lambda group: [broken])
    parser = cli.build_parser()
    err = capsys.readouterr().err
    assert "command 'broken'" in err and "cannot be loaded" in err
    with pytest.raises(SystemExit):
        parser.parse_args(["broken"])
    assert parser.parse_args(["inspect", "--model", "m", "--benchmark", "b"]).command == "inspect"


def test_python_dash_m_runs_the_cli():
    import subprocess
    import sys

    for module in ("tts_gym", "tts_gym.cli"):
        out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0 and "eval" in out.stdout
