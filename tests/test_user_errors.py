"""Bad user input on the CLI: one sentence on stderr, exit code 2, no traceback."""

from __future__ import annotations

import pytest

from tts_gym.cli import main
from tts_gym.paths import store_path

BAD_FILES = {
    "syntax": ("class Controller:\n    def solve(self, q)\n        return None\n", "syntax error"),
    "import": ("import tts_gym_no_such_module\n", "cannot be imported"),
    "nosolve": ("class Controller:\n    pass\n", "no solve(self, question)"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_broken_controller_file_is_one_sentence(tmp_path, capsys, kind):
    source, expected = BAD_FILES[kind]
    path = tmp_path / f"{kind}.py"
    path.write_text(source)
    code = main(["eval", f"file:{path}", "--model", "m", "--benchmark", "b", "--seeds", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err and str(path) in err and "Traceback" not in err


def test_missing_store_hint_names_the_searched_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_GYM_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"tts-gym download --data-dir "):
        store_path("Qwen3-8B", "aime24")
    with pytest.raises(FileNotFoundError, match=r"data directory from argument data_dir"):
        store_path("Qwen3-8B", "aime24", tmp_path)


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    import os

    from tts_gym.io import write_json_atomic

    mask = os.umask(0o022)
    try:
        path = write_json_atomic(tmp_path / "r.json", {"a": 1})
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("bad.json", "{bad", "is not valid JSON"),
        ("list.json", "[1, 2]", "row 0: not a sweep row"),
        ("rows.csv", "model,benchmark,label\nQwen3-8B,aime24,sc\n", "missing controller"),
    ],
)
def test_plot_from_a_bad_report_is_one_sentence(tmp_path, capsys, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    assert main(["plot", "--from", str(path), "--out", str(tmp_path / "png")]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_handle_slot_out_of_range_and_unknown_reset_option(tiny):
    from tts_gym import QuestionHandle
    from tts_gym.env import ReplayEnv

    env = ReplayEnv(store=tiny, max_branches=4)
    with pytest.raises(ValueError, match="unknown key"):
        env.reset(options={"questoin": 0})
    env.reset(options={"question": 0, "shuffle_seed": 0})
    h = QuestionHandle(env)
    for op in (h.probe_more, h.prune):
        with pytest.raises(ValueError, match=r"slot 9 is out of range: this env has 4 slots"):
            op(9)


def test_discover_that_cannot_load_its_stores_leaves_out_unclaimed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TTS_GYM_DATA", str(tmp_path / "empty"))
    out = tmp_path / "run"
    args = ["discover", "--rounds", "1", "--model-name", "x", "--out", str(out)]
    assert main(args) == 2
    assert "No replay store" in capsys.readouterr().err
    assert not (out / "config.json").exists()  # a corrected rerun needs no --resume


def test_vector_env_refuses_unknown_reset_options(tiny):
    """The vector env starts episodes with the single env's rule, typos included."""
    from tts_gym.env.vector_env import ReplayVectorEnv

    venv = ReplayVectorEnv(num_envs=2, store=tiny, max_branches=4)
    with pytest.raises(ValueError, match=r"\(env 0\) got unknown key\(s\) \['questoin'\]"):
        venv.reset(options={"questoin": 0})
    with pytest.raises(ValueError, match=r"options\['question'\]=7 \(env 0\) is out of range"):
        venv.reset(options={"question": 7})


RAISES = '''class Controller:
    def solve(self, question):
        question.full_read()
        return {}["missing"]
'''
ILLEGAL = '''class Controller:
    def solve(self, question):
        got = question.probe_new()
        question.prune(got[1])
        question.probe_more(got[1])
        return got[0]
'''
NOT_STR = '''class Controller:
    def solve(self, question):
        answer = question.full_read()
        return 7
'''


@pytest.fixture
def tiny_dir(tmp_path):
    from tts_gym.testing import tiny_questions, write_store_json

    write_store_json(tmp_path / "data" / "tiny" / "aime24.json", tiny_questions())
    return tmp_path / "data"


@pytest.mark.parametrize("trusted", [False, True])
@pytest.mark.parametrize("source, line, words", [
    (RAISES, 4, "KeyError: 'missing'"),
    (ILLEGAL, 5, "probe_more"),
    (NOT_STR, 4, "returned int"),  # the return line, not the def line
])
def test_controller_failures_name_file_line_seed_and_question(
        tmp_path, tiny_dir, capsys, trusted, source, line, words):
    path = tmp_path / "mine.py"
    path.write_text(source)
    argv = ["eval", f"file:{path}", "--model", "tiny", "--benchmark", "aime24", "--seeds", "2",
            "--data-dir", str(tiny_dir), "--workers", "1"] + (["--trusted"] if trusted else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    first = err.strip().splitlines()[0]
    assert f"mine.py:{line}" in first and words in first, err
    assert "seed 0" in first and "question 0" in first and "Traceback" not in err
    assert main([*argv, "--debug"]) == 2
    err = capsys.readouterr().err
    if source is not NOT_STR:  # --debug adds the traceback of the exception
        assert "mine.py" in err and (f"line {line}" in err or f"mine.py:{line}" in err)
        assert len(err.strip().splitlines()) > 2
