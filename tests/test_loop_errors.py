"""Errors for the bugs people write: a looping controller is stopped by the per-episode CPU
budget and named by file and line (sandboxed and --trusted), a bad return points at its
``return``, eval's text says how many answers were never revealed, a closed pipe ends quietly."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tts_gym.cli import main
from tts_gym.controller import load_file_controller
from tts_gym.cpu_watchdog import EpisodeCpuExceeded, cpu_budget
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.source_lines import return_lines, where_returned

LOOPS = {
    # where the loop sits -> (source, lines of the loop (the `while` or its body), words)
    "module": ("x = 0\nwhile True:\n    x += 1\n\n\nclass Controller:\n"
               "    def solve(self, question):\n        return None\n", (2, 3), "running at line"),
    "init": ("class Controller:\n    def __init__(self):\n        x = 0\n        while True:\n"
             "            x += 1\n\n    def solve(self, question):\n        return None\n", (4, 5),
             "in __init__()"),
    "solve": ("class Controller:\n    def solve(self, question):\n        label = "
              "question.probe_new()[0]\n        n = 0\n        while label:\n            n += 1"
              "\n        return label\n", (5, 6), "in solve()"),
}


@pytest.fixture
def tiny_dir(tmp_path):
    from tts_gym.testing import tiny_questions, write_store_json

    write_store_json(tmp_path / "data" / "tiny" / "aime24.json", tiny_questions())
    return tmp_path / "data"


def _eval(path, data, *extra):
    return ["eval", f"file:{path}", "--model", "tiny", "--benchmark", "aime24", "--seeds", "1",
            "--data-dir", str(data), "--workers", "1", *extra]


@pytest.mark.parametrize("trusted", [False, True])
@pytest.mark.parametrize("where", sorted(LOOPS))
def test_a_looping_controller_is_stopped_by_the_budget_and_named(
        tmp_path, tiny_dir, capsys, where, trusted):
    source, lines, words = LOOPS[where]
    path = tmp_path / "loop.py"
    path.write_text(source)
    import time

    start = time.monotonic()
    code = main(_eval(path, tiny_dir, "--episode-cpu", "0.5", *(["--trusted"] if trusted else [])))
    took = time.monotonic() - start
    err = capsys.readouterr().err
    assert code == 2, err
    first = err.strip().splitlines()[0]
    assert any(f"loop.py:{n}: " in first for n in lines) and words in first, err
    assert "0.5 s of CPU" in first and "budget" in first, err
    assert "Traceback" not in err
    assert took < 120, took  # the budget acts (no hang), with room for a loaded machine


def test_the_trusted_watchdog_reads_the_innermost_frame_of_the_file(tmp_path):
    path = tmp_path / "deep.py"
    path.write_text("def spin():\n    while True:\n        pass\n\n\ndef outer():\n"
                    "    spin()\n")
    ns: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), ns)
    with pytest.raises(EpisodeCpuExceeded) as got, cpu_budget(0.2, str(path)):
        ns["outer"]()
    assert (got.value.line, got.value.function) == (3, "spin") or got.value.line == 2
    assert str(path) in str(got.value) and "0.2 s of CPU" in str(got.value)


def test_the_trusted_watchdog_is_not_swallowed_by_except_exception(tmp_path):
    path = tmp_path / "swallow.py"
    path.write_text("def spin():\n    while True:\n        try:\n            sum(range(100))\n"
                    "        except Exception:\n            pass\n")
    ns: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), ns)
    with pytest.raises(EpisodeCpuExceeded), cpu_budget(0.2, str(path)):
        ns["spin"]()


def test_no_budget_leaves_the_timer_alone(tmp_path):
    import signal

    before = signal.getsignal(signal.SIGVTALRM)
    with cpu_budget(None, "x.py"):
        pass
    with cpu_budget(5.0, "x.py"):
        assert signal.getitimer(signal.ITIMER_VIRTUAL)[0] > 0
    assert signal.getitimer(signal.ITIMER_VIRTUAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGVTALRM) == before


def test_load_file_controller_budget_names_the_top_level_line(tmp_path):
    path = tmp_path / "top.py"
    path.write_text(LOOPS["module"][0])
    with pytest.raises(ValueError, match=r"top\.py:[23]: stopped after 0\.3 s of CPU"):
        load_file_controller(path, {}, episode_cpu_s=0.3)


@pytest.mark.parametrize("source, def_line, expected", [
    ("def solve(q):\n    return 7\n", 1, [2]),
    ("def solve(q):\n    if q:\n        return 'a'\n    return len(q)\n", 1, [4]),
    ("def solve(q):\n    if q:\n        return q[0]\n    return None\n", 1, [3]),
    ("def solve(q):\n    def inner():\n        return 3\n    return str(inner())\n", 1, []),
    ("def solve(q):\n    if q:\n        return 1\n    return 2\n", 1, [3, 4]),
    ("@staticmethod\ndef solve(q):\n    return f'{q}'\n", 1, []),
])
def test_return_lines_against_a_hand_reading(source, def_line, expected):
    assert return_lines(source, def_line) == expected


def test_where_returned_falls_back_to_the_def_line():
    assert where_returned("f.py", "def solve(q):\n    return q\n", 1) == ("f.py:2", 2)
    assert where_returned("f.py", "def solve(q):\n    return 'x'\n", 1) == ("f.py:1", 1)
    assert where_returned("f.py", "def solve(q):\n    if q:\n        return 1\n    return 2\n",
                          1) == ("f.py:3 or 4", None)


TWO_RETURNS = '''class Controller:
    def solve(self, question):
        answer = question.full_read()
        if answer is None:
            return None
        return int(answer)
'''


@pytest.mark.parametrize("trusted", [False, True])
def test_a_bad_return_points_at_the_return_line(tmp_path, tiny_dir, capsys, trusted):
    path = tmp_path / "bad.py"
    path.write_text(TWO_RETURNS)
    assert main(_eval(path, tiny_dir, *(["--trusted"] if trusted else []))) == 2
    first = capsys.readouterr().err.strip().splitlines()[0]
    assert "bad.py:6: solve() returned int" in first, first


GUESSER = '''class Controller:
    def solve(self, question):
        question.probe_new()
        return "42"
'''


def test_eval_text_says_how_many_answers_were_never_revealed(tmp_path, tiny_dir, capsys):
    path = tmp_path / "guess.py"
    path.write_text(GUESSER)
    assert main([*_eval(path, tiny_dir, "--trusted"), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)["unrevealed_answers"]
    assert main(_eval(path, tiny_dir, "--trusted")) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "unrevealed answers" in x)
    assert expected > 0 and f"unrevealed answers: {expected} of " in line, out
    assert "scored wrong" in line


def test_episode_cpu_is_one_setting_on_every_command():
    from tts_gym.cli import build_parser

    parser = build_parser()
    for argv in (["eval", "sc", "--model", "m", "--benchmark", "b"], ["sweep"], ["table"],
                 ["compare", "a", "b"]):
        args = parser.parse_args([*argv, "--episode-cpu", "2.5"])
        assert args.episode_cpu == 2.5
    assert parser.parse_args(["table"]).episode_cpu == SandboxLimits.episode_cpu_s
    limits = SandboxLimits.per_episode(2.5, workers=3)
    assert (limits.episode_cpu_s, limits.watchdog_s, limits.workers) == (2.5, 2.5, 3)
    with pytest.raises(ValueError, match="--episode-cpu"):
        SandboxLimits.per_episode(0.0)


def test_a_closed_pipe_ends_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "tts_gym", "controllers"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader left before anything was written (`| head -0`)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Broken pipe" not in err


def test_the_trusted_episode_budget_counts_cpu_without_progress_only(tmp_path):
    """Work between primitives that adds up past the budget is fine; a stretch without any
    progress is not (the sandbox's rule)."""
    import time

    path = tmp_path / "busy.py"
    path.write_text("def busy(seconds):\n    end = __import__('time').process_time() + seconds\n"
                    "    while __import__('time').process_time() < end:\n        pass\n")
    ns: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), ns)
    steps = [0]
    start = time.process_time()
    with cpu_budget(0.5, str(path), lambda: steps[0]):
        for _ in range(6):  # 6 x 0.2 s of CPU, a primitive in between: 1.2 s in all
            ns["busy"](0.2)
            steps[0] += 1
    assert time.process_time() - start >= 1.2
    with pytest.raises(EpisodeCpuExceeded) as got, cpu_budget(0.5, str(path), lambda: steps[0]):
        ns["busy"](5.0)
    assert got.value.line in (3, 4) and got.value.function == "busy"


@pytest.mark.parametrize("kind", ["cpu_limit", "stalled"])
def test_stops_from_outside_the_process_say_no_line_is_known(kind):
    from tts_gym.sandbox.evaluate import describe_error

    text = describe_error({"kind": kind, "summary": "the candidate process exceeded its CPU "
                           "limit", "store": "M/b", "seed": 3, "question": None})
    assert "no line is known" in text and "(M/b, seed 3)" in text
    watchdog = describe_error({"kind": "watchdog", "summary": "f.py:4: stopped", "seed": 0})
    assert "no line is known" not in watchdog
