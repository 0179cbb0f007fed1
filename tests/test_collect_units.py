"""``tts_gym.collect`` parts checked one at a time against plain-Python references."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tts_gym.collect.api import Completion, parse_completion
from tts_gym.collect.canonical import canonical_labels, normal_form
from tts_gym.collect.client import BadReply
from tts_gym.collect.config import DEFAULT_PROBE_SUFFIX
from tts_gym.collect.dispatch import Dispatcher
from tts_gym.collect.errors import CollectError
from tts_gym.collect.extract import last_boxed, open_braces, probe_answer
from tts_gym.collect.journal import Journal
from tts_gym.collect.problems import Fields, read_problems
from tts_gym.collect.protocol import branch_seed, probe_positions, thinking_length
from tts_gym.collect.templates import load_template
from tts_gym.collect.trajectory import ProbeBodies, Prompt, Trajectory
from tts_gym.retry import RetryPolicy

# --- problems -----------------------------------------------------------------------------------


def test_problems_jsonl_csv_and_numbers(tmp_path: Path) -> None:
    jl = tmp_path / "p.jsonl"
    jl.write_text('{"id": "a", "problem": "1+1?", "answer": 2}\n\n{"id": 7, "problem": "x", '
                  '"answer": " 5 "}\n')
    got = read_problems(jl)
    assert [(p.id, p.problem, p.answer) for p in got] == [("a", "1+1?", "2"), ("7", "x", "5")]
    csv = tmp_path / "p.csv"
    csv.write_text("question,gold\n\"What, exactly?\",42\n")
    got = read_problems(csv, Fields(problem="question", answer="gold"))
    assert [(p.id, p.problem, p.answer) for p in got] == [("0", "What, exactly?", "42")]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"id": "a", "problem": "x"}\n', "line 1: field 'answer' is missing"),
        ('{"id": "a", "problem": "", "answer": "1"}\n', "line 1: field 'problem' is empty"),
        ('{"id": "a", "problem": "x", "answer": "1"}\n{"id": "a", "problem": "y", "answer": "2"}\n',
         "line 2: id 'a' already appears at line 1"),
        ('{"id": "a", "problem": "x", "answer": "1"}\n{oops\n', "line 2: not valid JSON"),
        ("[1, 2]\n", "line 1: expected an object"),
        ("\n", "holds no rows"),
    ],
)
def test_problems_bad_input_names_line_and_field(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(CollectError, match="bad.jsonl") as info:
        read_problems(path)
    assert needle in str(info.value)


def test_parquet_without_pyarrow_is_one_sentence(tmp_path: Path) -> None:
    try:
        import pyarrow  # noqa: F401

        pytest.skip("pyarrow is installed: the message shown without it cannot be seen")
    except ImportError:
        pass
    path = tmp_path / "p.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(CollectError, match="pip install pyarrow"):
        read_problems(path)


# --- templates ----------------------------------------------------------------------------------


def test_templates_builtin_and_file(tmp_path: Path) -> None:
    q = load_template("qwen3")
    assert q.render("Find $\\frac{a}{b}$.").startswith("<|im_start|>user\nFind $\\frac{a}{b}$.\n")
    assert q.think_end == "</think>" and q.render("x").endswith("<|im_start|>assistant\n")
    d = load_template("deepseek-r1")
    assert d.render("x").endswith("<｜Assistant｜><think>\n") and d.think_end == "</think>"
    raw = load_template("raw")
    assert raw.render("as {is}") == "as {is}" and raw.think_end == ""
    f = tmp_path / "t.txt"
    f.write_text("Q: {problem} {x}\nA:")
    t = load_template(str(f), think_end="END")
    assert (t.name, t.render("2+2"), t.think_end) == ("file:t.txt", "Q: 2+2 {x}\nA:", "END")
    f.write_text("no placeholder")
    with pytest.raises(CollectError, match="no \\{problem\\} placeholder"):
        load_template(str(f))
    with pytest.raises(CollectError, match="neither a built-in template"):
        load_template("qwen9")


# --- extraction and protocol --------------------------------------------------------------------


def test_extraction_balanced_braces() -> None:
    got = last_boxed(r"try \boxed{1} then \boxed{\frac{\sqrt{3}}{2}} done")
    assert got == r"\frac{\sqrt{3}}{2}"
    assert last_boxed(r"\boxed{\{1,2\}}") == r"\{1,2\}"
    assert last_boxed(r"\boxed{1} and \boxed{2") == "1"  # an unclosed last box is skipped
    assert last_boxed(r"\fbox{7}") == "7"
    assert open_braces(DEFAULT_PROBE_SUFFIX) == 1
    assert probe_answer(r" \frac{1}{2} } \]", 1) == (r"\frac{1}{2}", True)
    assert probe_answer("}", 1) == ("", True)
    assert probe_answer(r"\frac{1}{", 1) == (r"\frac{1}{", False)
    assert probe_answer(r"x = \boxed{4}.", 0) == ("4", True)


def test_probe_positions_match_the_published_shape() -> None:
    # k·Δ < t, then the final answer: ceil(t/Δ) entries per branch, at least one
    for t in range(0, 2000, 37):
        n = len(probe_positions(t, 500)) + 1
        assert n == max(1, -(-t // 500))
    assert probe_positions(40000, 500)[-1] == 39500 and len(probe_positions(40000, 500)) == 79
    assert thinking_length([1, 2, 3, 2, 3], [2, 3]) == 1 and thinking_length([1], [1, 2]) is None


def test_branch_seeds_are_stable_and_distinct() -> None:
    seeds = {branch_seed(0, q, b) for q in ("a", "b") for b in range(200)}
    assert len(seeds) == 400 and all(0 <= s < 2**31 - 1 for s in seeds)
    assert branch_seed(0, "a", 3) == branch_seed(0, "a", 3) != branch_seed(1, "a", 3)


# --- canonicalisation ---------------------------------------------------------------------------


def test_equivalent_answers_share_one_label_and_gold_keeps_its_string() -> None:
    counts = {"0.5": 5, r"\frac{1}{2}": 2, "1/2": 1, r"\dfrac12": 1, "7": 3, "7.0": 1, "ERR": 2}
    labels = canonical_labels(counts, "1/2")
    assert {labels[s] for s in ("0.5", r"\frac{1}{2}", "1/2", r"\dfrac12")} == {"1/2"}
    assert labels["7"] == labels["7.0"] == "7"  # most frequent form of a non-gold class
    assert labels["ERR"] == "ERR"
    assert canonical_labels({"0.5": 1}, r"\frac{1}{2}") == {"0.5": r"\frac{1}{2}"}


def test_non_math_answers() -> None:
    labels = canonical_labels({"(B)": 1, "B": 1, r"\textbf{B}": 1, "A.": 2, "b": 1}, "B")
    assert labels == {"(B)": "B", "B": "B", r"\textbf{B}": "B", "A.": "A.", "b": "B"}
    labels = canonical_labels({"Yes": 1, "yes.": 2, r"\text{Yes}": 1, "No": 1, "no way": 1}, "yes")
    assert labels == {"Yes": "yes", "yes.": "yes", r"\text{Yes}": "yes", "No": "No",
                      "no way": "no way"}
    # words are text, not products of symbols; truncated probe output is not a number
    assert normal_form("No").kind == "text" and normal_form("[Boxed Answer]").kind == "text"
    assert normal_form(r"12\sqrt{21} + 12\sqrt{345} + ...").kind == "text"
    assert normal_form(r"10 \text{ cm}") == normal_form("10")


def test_gold_fallback_catches_forms_with_other_normal_forms() -> None:
    labels = canonical_labels({"x=2": 1, "2": 1, "3": 1}, "2")
    assert labels == {"x=2": "2", "2": "2", "3": "3"}
    assert canonical_labels({r"2\sqrt{2}": 1, r"\sqrt{8}": 1}, r"\sqrt{8}") == {
        r"2\sqrt{2}": r"\sqrt{8}", r"\sqrt{8}": r"\sqrt{8}"}


def test_fast_paths_agree_with_the_latex_parser() -> None:
    from tts_gym.collect import canonical as c

    strings = ["160 + 3 + 10", "2^{10}", "(3 + 1) \\cdot 2", "1/2 + 1/3", "0.5*4", "-3 - -2",
               "10/4", "1 + 2 * 3", "2^{64}", "(1)", "3.25", "7 \\times 6", "1.5^2", "204",
               "-12", "0.125", "\\frac{3}{4}", "-\\dfrac{10}{4}", "7/21", "2^-1", "1/0",
               "2^{1000}", "12(3)"]
    fast = 0
    for s in strings:
        t = c._unwrap(s)
        quick = c._fast_number(t) or c._fast_arith(t)
        if quick is not None:
            fast += 1
            assert quick == c._parse_key(t)[0], s
    assert fast == 19  # the last four are left to the parser


def test_grouping_does_not_depend_on_arrival_order() -> None:
    base = {"0.5": 2, r"\frac{1}{2}": 2, "1/2": 1, "3": 2, "3.0": 2, "x=3": 1, "?": 1,
            r"\sqrt{8}": 1, r"2\sqrt{2}": 1, "No": 1}
    items = list(base.items())
    want = canonical_labels(dict(items), "3")
    rng = random.Random(0)
    for _ in range(20):
        rng.shuffle(items)
        assert canonical_labels(dict(items), "3") == want
    # a tie between two forms of a class is broken by the string, not by order
    assert canonical_labels({"3.0": 2, "3": 2}, "9")["3.0"] == "3"


# --- dispatch and retries -----------------------------------------------------------------------


def test_dispatcher_least_loaded_fifo_and_cooling() -> None:
    now = [0.0]
    d = Dispatcher(3, 2, clock=lambda: now[0])

    async def scenario() -> list[int]:
        got = [await d.acquire() for _ in range(3)]
        assert got == [0, 1, 2]  # spread before stacking
        assert await d.acquire(prefer=2) == 2  # ties go to the preferred server
        d.cool(0, 10.0)
        assert await d.acquire() == 1  # 0 is cooling: the other free slot wins
        assert await d.acquire() == 0  # only the cooling server has a slot left
        waiter = asyncio.ensure_future(d.acquire())
        await asyncio.sleep(0)
        assert not waiter.done()  # all six slots busy
        d.release(1)
        return [await waiter] + d.in_flight

    assert asyncio.run(scenario()) == [1, 2, 2, 2]


def test_dispatcher_serves_every_waiter_under_churn() -> None:
    picks: list[tuple[list[int], int | None]] = []

    class Recording(Dispatcher):
        def _pick(self, prefer):  # the loads each grant saw, and what it chose
            i = super()._pick(prefer)
            picks.append((list(self.in_flight), i))
            return i

    d = Recording(2, 3)
    order: list[int] = []

    async def worker(i: int) -> None:
        s = await d.acquire()
        assert d.in_flight[s] <= 3
        await asyncio.sleep(0.001 * (i % 3))
        order.append(i)
        d.release(s)

    async def main() -> None:
        await asyncio.gather(*(worker(i) for i in range(50)))

    asyncio.run(main())
    assert sorted(order) == list(range(50)) and d.in_flight == [0, 0]
    assert sum(d.served) == 50
    # every grant went to a least-loaded server (checked when it was granted: by the time a
    # waiter resumes, other requests may have finished and unbalanced the loads legitimately)
    granted = [(loads, i) for loads, i in picks if i is not None]
    assert len(granted) == 50
    assert all(loads[i] == min(loads) for loads, i in granted)


def test_retry_policy_matches_discovery_defaults() -> None:
    p = RetryPolicy()
    assert (p.max_attempts, p.backoff_s, p.max_backoff_s) == (6, 2.0, 60.0)
    assert [p.delay(a) for a in range(1, 7)] == [2, 4, 8, 16, 32, 60]
    assert p.delay(1, retry_after=30) == 30 and p.delay(1, retry_after=600) == 60


# --- replies ------------------------------------------------------------------------------------


def _reply(**choice) -> dict:
    base = {"text": "ab", "finish_reason": "stop"}
    n = len(choice.get("token_ids", [1, 2]))
    return {"choices": [{**base, **choice}], "usage": {"prompt_tokens": 5, "completion_tokens": n}}


def test_completion_checks() -> None:
    got = parse_completion(_reply(token_ids=[3, 4]), 10)
    assert got == Completion("ab", "stop", [3, 4], None, 2, 5)
    lp = {"tokens": ["token_id:3", "token_id:4"], "text_offset": [0, 1]}
    assert parse_completion(_reply(logprobs=lp), 10).token_ids == [3, 4]
    bad = [
        ({"choices": []}, "no choices"),
        (_reply(finish_reason="abort"), "finish_reason"),
        (_reply(token_ids=[1, 2, 3], finish_reason="length"), "fewer tokens than asked"),
        ({**_reply(token_ids=[1]), "usage": {"completion_tokens": 2}}, "disagree"),
        (_reply(token_ids=[1, 2, 3]), "more than the 2"),
        (_reply(token_ids=[1, -2]), "not non-negative"),
    ]
    for data, needle in bad:
        with pytest.raises(BadReply, match=needle if needle != "disagree" else "usage"):
            parse_completion(data, 2 if "more than" in needle else 10)


# --- journal ------------------------------------------------------------------------------------


def test_journal_resume_cuts_a_torn_last_line(tmp_path: Path) -> None:
    j = Journal(tmp_path / "w")
    j.create({"config": {}, "created": "now"})
    j.append({"kind": "gen", "q": 0, "b": 0, "generated": 10})
    j.append({"kind": "probe", "q": 0, "b": 0, "at": 4, "completion_tokens": 3})
    j.append({"kind": "branch", "q": 0, "b": 1})
    j.close()
    with open(j.path, "ab") as fh:
        fh.write(b'{"kind": "probe", "q": 0, "b": 0, "at')  # a write cut by a power loss
    r = j.resume()
    assert r.done == {(0, 1)} and list(r.pending) == [(0, 0)] and r.spent == 13
    assert list(r.pending[(0, 0)].probes) == [4]
    assert j.path.read_bytes().endswith(b"}\n")  # the torn tail is gone
    j.open()  # the branch is sampled again (say its blob was lost): old probes do not count
    j.append({"kind": "gen", "q": 0, "b": 0, "generated": 7})
    j.close()
    r = j.resume()
    assert r.pending[(0, 0)].probes == {} and r.pending[(0, 0)].gen["generated"] == 7
    lines = j.path.read_bytes().splitlines()
    j.path.write_bytes(b"\n".join(lines[:2] + [b"garbage"] + lines[2:]) + b"\n")
    with pytest.raises(CollectError, match="damaged at line 3"):
        j.resume()


# --- probe bodies -------------------------------------------------------------------------------


def test_probe_bodies_are_the_exact_token_prefix() -> None:
    rng = np.random.default_rng(0)
    prompt = Prompt("p", rng.integers(0, 200_000, 37))
    traj = Trajectory(generated=90, thinking=80, finish_reason="stop", truncated=False,
                      final_raw="1", ids=rng.integers(0, 200_000, 90))
    head = b'{"model":"m","max_tokens":8,"prompt":'
    for suffix in ([5, 6, 7], []):
        bodies = ProbeBodies(head, prompt, traj, suffix, "")
        for p in (0, 1, 16, 89, 90):
            body = json.loads(bodies.body(p))
            assert body["prompt"] == prompt.ids.tolist() + traj.ids[:p].tolist() + suffix
            assert body["model"] == "m" and body["max_tokens"] == 8


def test_probe_bodies_text_mode_cut_at_offsets_or_ratio() -> None:
    text = "ab" + "cde" + "f"
    with_offsets = Trajectory(3, 3, "stop", False, None, text=text,
                              offsets=np.array([0, 2, 5]))
    ratio = Trajectory(3, 3, "stop", False, None, text=text)
    for traj, cuts in ((with_offsets, ["", "ab", "abcde", text]),
                       (ratio, ["", "ab", "abcd", text])):
        bodies = ProbeBodies(b'{"prompt":', Prompt("P:", None), traj, None, "|S")
        assert [json.loads(bodies.body(p))["prompt"] for p in range(4)] == \
            ["P:" + c + "|S" for c in cuts]


def test_combinations_of_modes_are_consistent() -> None:
    from tts_gym.collect.engines import Engine

    for tok, prompts, dialect in itertools.product((None, "openai"), (False, True),
                                                   (None, "vllm-token-ids")):
        e = Engine("u", "vllm", tokenize_format=tok, token_prompts=prompts, dialect=dialect)
        assert e.supports("text")
        assert e.supports("ids") == (tok is not None and prompts and dialect is not None)
        assert not e.supports("ids") or e.supports("tokenize")
        assert e.supports("ids") or e.lacks().startswith("offers no ")


# --- engine dialects (formats from the engines' sources; see tests/fake_engine_servers.py) -----

def _llama_native(**over: Any) -> dict[str, Any]:
    reply = {"content": "ab", "tokens": [5, 6, 7], "tokens_predicted": 3, "tokens_evaluated": 4,
             "stop_type": "eos", "truncated": False}
    return {**reply, **over}


def _sglang(**over: Any) -> dict[str, Any]:
    meta = {"finish_reason": {"type": "length", "length": 3}, "prompt_tokens": 4,
            "completion_tokens": 3, **over.pop("meta", {})}
    return {"text": "ab", "output_ids": [5, 6, 7], "meta_info": meta, **over}


def test_native_replies_are_read_exactly_or_refused() -> None:
    from tts_gym.collect.client import BadReply
    from tts_gym.collect.dialects import parse_reply

    done = parse_reply("llama.cpp-native", _llama_native(), 8)
    assert (done.token_ids, done.finish_reason, done.completion_tokens, done.prompt_tokens) == \
        ([5, 6, 7], "stop", 3, 4)
    assert parse_reply("llama.cpp-native", _llama_native(stop_type="limit"), 3).finish_reason \
        == "length"
    done = parse_reply("sglang-native", _sglang(), 3)
    assert (done.token_ids, done.finish_reason, done.completion_tokens) == ([5, 6, 7], "length", 3)
    refused = [
        ("llama.cpp-native", _llama_native(tokens=[]), 8),  # return_tokens ignored
        ("llama.cpp-native", _llama_native(tokens_predicted=4), 8),  # count disagrees
        ("llama.cpp-native", _llama_native(truncated=True), 8),  # prompt cut by the context
        ("llama.cpp-native", _llama_native(stop_type="none"), 8),
        ("llama.cpp-native", _llama_native(stop_type="limit"), 8),  # short of max_tokens
        ("llama.cpp-native", {"tokens": []}, 8),  # a /tokenize-like reply
        ("sglang-native", _sglang(meta={"finish_reason": {"type": "abort"}}), 3),
        ("sglang-native", _sglang(output_ids=[5, 6]), 3),
        ("llama.cpp-logprobs", {"choices": [{"text": "ab", "finish_reason": "stop", "logprobs": {
            "content": [{"id": 5}, {"id": 6}]}}], "usage": {"completion_tokens": 3}}, 8),
        ("vllm-token-ids", {"choices": [{"text": "ab", "finish_reason": "stop"}],
                            "usage": {"completion_tokens": 2}}, 8),  # no ids at all
    ]
    for dialect, data, max_tokens in refused:
        with pytest.raises(BadReply):
            parse_reply(dialect, data, max_tokens)


def test_sampling_fields_are_complete_in_each_engine() -> None:
    from tts_gym.collect.dialects import Sampling, mismatched_settings

    s = Sampling(0.7, 0.95)
    llama = s.fields("llama.cpp")
    assert (llama["top_k"], llama["min_p"], llama["repeat_penalty"], llama["typical_p"]) == \
        (0, 0.0, 1.0, 1.0)
    assert s.fields("sglang")["top_k"] == -1 and s.fields("vllm")["top_k"] == 0
    assert Sampling(0.7, 0.95, top_k=20).fields("sglang")["top_k"] == 20
    assert mismatched_settings(llama, {**llama, "min_p": 0.05000000074505806}) == ["min_p"]
    assert mismatched_settings(llama, {**llama, "top_p": 0.949999988079071}) == []  # float32
