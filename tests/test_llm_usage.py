"""An endpoint's reply cannot crash the loop nor shrink what the budget sees: every token count
of ``usage`` is checked (an int in ``[0, MAX_REPLY_TOKENS]``) and otherwise ignored with a
warning and estimated from the text; a content that is not text counts as empty.

The real ``openai`` client talks to the scripted server (tests/fake_openai_server.py), which
sends the hostile JSON verbatim (``1e400`` decodes to infinity, which ``json.dumps`` could not
write)."""

from __future__ import annotations

import math

import pytest

from agents.synthesis.history import History
from agents.synthesis.llm import (
    CHARS_PER_TOKEN,
    MAX_REPLY_TOKENS,
    Budget,
    LLMClient,
    LLMConfig,
    Pricing,
    token_count,
)
from agents.synthesis.loop import DiscoveryConfig, run_discovery
from tests import synthesis_candidates as C
from tests.fake_openai_server import FakeOpenAI
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.testing import tiny_questions, write_store_json

MESSAGES = [{"role": "system", "content": "s" * 400}, {"role": "user", "content": "Round 1 of 1"}]
PROMPT_ESTIMATE = sum(len(m["content"]) for m in MESSAGES) // CHARS_PER_TOKEN
REPLY = "r" * 80
REPLY_ESTIMATE = len(REPLY) // CHARS_PER_TOKEN

# usage JSON -> (prompt_tokens, completion_tokens, ignored) the client must record
CASES = {
    '{"prompt_tokens": 7, "completion_tokens": 9}': (7, 9, []),
    '{"prompt_tokens": 7.0, "completion_tokens": 1000000000}': (7, MAX_REPLY_TOKENS, []),
    '{"prompt_tokens": 1e400, "completion_tokens": 9}': (PROMPT_ESTIMATE, 9, ["prompt_tokens"]),
    '{"prompt_tokens": 7, "completion_tokens": -1e400}': (7, REPLY_ESTIMATE, ["completion_tokens"]),
    '{"prompt_tokens": NaN, "completion_tokens": -3}':
        (PROMPT_ESTIMATE, REPLY_ESTIMATE, ["prompt_tokens", "completion_tokens"]),
    '{"prompt_tokens": "12", "completion_tokens": {"a": [1]}}':
        (PROMPT_ESTIMATE, REPLY_ESTIMATE, ["prompt_tokens", "completion_tokens"]),
    '{"prompt_tokens": true, "completion_tokens": 2.5}':
        (PROMPT_ESTIMATE, REPLY_ESTIMATE, ["prompt_tokens", "completion_tokens"]),
    '{"prompt_tokens": 1000000001, "completion_tokens": [1, 2]}':
        (PROMPT_ESTIMATE, REPLY_ESTIMATE, ["prompt_tokens", "completion_tokens"]),
    '"lots"': (PROMPT_ESTIMATE, REPLY_ESTIMATE, ["usage"]),
    '[1, 2, 3]': (PROMPT_ESTIMATE, REPLY_ESTIMATE, ["usage"]),
    '1e400': (PROMPT_ESTIMATE, REPLY_ESTIMATE, ["usage"]),
    'null': (PROMPT_ESTIMATE, REPLY_ESTIMATE, []),
}


def test_token_count_accepts_exactly_the_believable_counts():
    good = [0, 1, MAX_REPLY_TOKENS, 3.0]
    bad = [-1, MAX_REPLY_TOKENS + 1, 2.5, math.inf, -math.inf, math.nan, True, "5", None, [1],
           {"a": 1}, 10**400]
    assert [token_count(v) for v in good] == [0, 1, MAX_REPLY_TOKENS, 3]
    assert [token_count(v) for v in bad] == [None] * len(bad)


@pytest.fixture(scope="module")
def replies():
    """Every case of CASES through the real client; ``(usage, warnings)`` per case."""
    script = {1: [{"reply": REPLY, "usage_json": raw} for raw in CASES]}
    out = {}
    with FakeOpenAI(script) as srv:
        for raw in CASES:
            warnings: list[str] = []
            client = LLMClient(LLMConfig(model="m", base_url=srv.base_url, max_attempts=1),
                               Pricing(3.0, 15.0), warn=warnings.append)
            reply = client.complete(MESSAGES)
            assert reply.text == REPLY
            out[raw] = (reply.usage, warnings)
    return out


@pytest.mark.parametrize("raw", list(CASES))
def test_every_usage_is_recorded_as_checked_counts(replies, raw):
    usage, warnings = replies[raw]
    pt, ct, ignored = CASES[raw]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (pt, ct)
    assert usage["total_tokens"] == pt + ct
    assert usage["cost_usd"] == round((3.0 * pt + 15.0 * ct) / 1e6, 6)
    assert usage.get("ignored", []) == ignored
    assert usage["estimated"] == ((pt, ct) not in {(7, 9), (7, MAX_REPLY_TOKENS)})
    assert len(warnings) == len(ignored)  # one line per ignored field, naming it
    for field, line in zip(ignored, warnings, strict=True):
        assert line.startswith("WARNING:") and field in line and "\n" not in line


@pytest.mark.parametrize("content", ['12345', '{"code": "x"}', '["a"]'])
def test_a_content_that_is_not_text_counts_as_empty(content):
    warnings: list[str] = []
    with FakeOpenAI({1: [{"content_json": content}]}) as srv:
        client = LLMClient(LLMConfig(model="m", base_url=srv.base_url, max_attempts=1),
                           warn=warnings.append)
        reply = client.complete(MESSAGES)
    assert reply.text == "" and reply.usage["completion_tokens"] == 0
    assert len(warnings) == 1 and "not text" in warnings[0]


@pytest.mark.parametrize("body", ['"hello"', '[1, 2]', '{"choices": "x", "usage": 5}',
                                  '{"choices": [{"message": "text"}]}', '{"choices": [null]}',
                                  '{"choices": [{"message": {"content": "hi"}, '
                                  '"finish_reason": {"a": 1}}], "usage": {"prompt_tokens": '
                                  '[1e400]}}'])
def test_a_malformed_response_is_an_empty_or_partial_reply_not_a_traceback(body):
    with FakeOpenAI({1: [{"body_json": body}]}) as srv:
        client = LLMClient(LLMConfig(model="m", base_url=srv.base_url, max_attempts=1),
                           warn=lambda _m: None)
        reply = client.complete(MESSAGES)
    assert reply.text == ("hi" if '"hi"' in body else "")
    assert reply.finish_reason is None
    assert all(isinstance(reply.usage[k], int) and reply.usage[k] >= 0
               for k in ("prompt_tokens", "completion_tokens", "total_tokens"))


def test_the_budget_never_shrinks_or_overflows():
    budget = Budget(max_tokens=100)
    for usage in ({"total_tokens": -50, "cost_usd": -1.0}, {"total_tokens": math.inf},
                  {"total_tokens": "9"}, {"cost_usd": math.nan}, "junk", {"total_tokens": 40,
                                                                          "cost_usd": 0.5}):
        budget.add(usage)
    assert (budget.spent_tokens, budget.spent_usd) == (40, 0.5)


LIMITS = SandboxLimits(timeout_s=60.0, memory_mb=400, watchdog_s=2.0)


def test_a_discovery_run_with_absurd_usages_finishes(tmp_path, capfd):
    """Three rounds whose replies report infinite, negative and nested usage: the run finishes,
    writes its report, warns once per ignored field, and counts the estimated tokens."""
    data = tmp_path / "data"
    write_store_json(data / "tiny-a" / "aime24.json", tiny_questions(1, questions=3, branches=8))
    write_store_json(data / "tiny-a" / "aime25.json", tiny_questions(3, questions=2, branches=8))
    script = {
        1: [{"reply": C.reply(C.GOOD), "usage_json": '{"prompt_tokens": 1e400, '
                                                     '"completion_tokens": -1e400}'}],
        2: [{"reply": C.reply(C.PROBING), "usage_json": '{"prompt_tokens": -5, '
                                                        '"completion_tokens": {"n": [1]}}'}],
        3: [{"reply": C.reply(C.GOOD), "usage_json": '"a lot"'}],
    }
    out = tmp_path / "run"
    with FakeOpenAI(script) as srv:
        cfg = DiscoveryConfig(
            out=out, rounds=3,
            llm=LLMConfig(model="fake-model", base_url=srv.base_url, timeout_s=5,
                          max_attempts=1),
            models=("tiny-a",), heldout_benchmarks=("aime25",), data_dir=str(data),
            betas=(0.0, 1.0), seeds=2, final_seeds=2, finalist_seeds=2, heldout_curve_seeds=2,
            limits=LIMITS)
        summary = run_discovery(cfg, log=lambda m: None)
    err = capfd.readouterr().err
    assert err.count("WARNING:") == 5, err
    h = History(out)
    assert h.finished() == [0, 1, 2, 3]
    assert summary is not None and (out / "report.md").is_file()
    spent = 0
    for r in (1, 2, 3):
        usage = h.get(r)["response"]["usage"]
        assert all(isinstance(usage[k], int) and usage[k] >= 0
                   for k in ("prompt_tokens", "completion_tokens", "total_tokens"))
        assert usage["estimated"] and usage["total_tokens"] > 0
        spent += usage["total_tokens"]
    assert spent > 0
