"""``tts-gym collect`` against each engine's own protocol (test doubles in
``tests/fake_vllm_server.py`` and ``tests/fake_engine_servers.py``, formats read from the
engines' sources): detection, token exactness probe by probe, sampling sent and read back,
context, refusals, the pre-flight, and resuming a run started before these fields existed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.collect_helpers import (
    ARGS,
    MODEL,
    PROBLEMS,
    cli_args,
    expected_store,
    read_store,
    seed_of,
    write_problems,
)
from tests.fake_engine_servers import FakeLlamaCpp, FakeSGLang
from tests.fake_vllm_server import CHAR_BASE, TOK, FakeVLLM, ToyModel
from tts_gym.cli import main
from tts_gym.collect.config import DEFAULT_PROBE_SUFFIX
from tts_gym.collect.templates import BUILTIN
from tts_gym.retry import RetryPolicy

TOY = ToyModel(interval_hint=16)
ENGINES = {"vllm": FakeVLLM, "llama.cpp": FakeLlamaCpp, "sglang": FakeSGLang}
DIALECT = {"vllm": "vllm-token-ids", "llama.cpp": "llama.cpp-native", "sglang": "sglang-native"}


@pytest.fixture
def problems(tmp_path: Path) -> Path:
    return write_problems(tmp_path / "toy.jsonl")


def run(problems: Path, urls: list[str], out: Path, **over: Any) -> int:
    return main(cli_args(problems, urls, out, **over))


def meta_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "Toy-1B" / "toy.meta.json").read_text())


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ": error: " in ln]
    assert len(errors) == 1, errors
    return errors[0]


def is_check(body: dict[str, Any]) -> bool:
    """A 2-token start-up check (in any engine's length field), not the run's work."""
    n = body.get("max_tokens", body.get("n_predict",
                                        (body.get("sampling_params") or {}).get("max_new_tokens")))
    return n == 2


def prompt_of(body: dict[str, Any]) -> list[int]:
    """The token-id prompt of a probe or generation body, in any engine's field."""
    return body.get("input_ids") or body["prompt"]


def probe_exactness(srv: FakeVLLM) -> tuple[int, int]:
    """``(exact, total)`` probe prompts: exact when a probe's prompt is the question's prompt
    ids + the first p ids the toy sampled for one of the branches + the suffix ids, for the
    p of a probe position (computed here from the toy's plans, not from the collector)."""
    suffix = TOK.encode(DEFAULT_PROBE_SUFFIX)
    text, _ = BUILTIN["qwen3"]
    wanted = set()
    for prob in PROBLEMS:
        prompt = text.replace("{problem}", prob["problem"])
        pids = TOK.encode(prompt)
        for b in range(ARGS["branches"]):
            plan = TOY.plan(prompt, seed_of(ARGS["seed"], prob["id"], b), ARGS["max_tokens"])
            for p in [*range(ARGS["interval"], plan.thinking, ARGS["interval"]), plan.thinking]:
                wanted.add(tuple(pids + plan.ids[:p] + suffix))
    probes = [c for c in srv.served("probe") if not is_check(c.body)]
    return sum(tuple(prompt_of(c.body)) in wanted for c in probes), len(probes)


@pytest.mark.parametrize("engine", list(ENGINES))
def test_each_engine_gets_ids_mode_and_every_probe_is_token_exact(
    problems: Path, tmp_path: Path, engine: str
) -> None:
    with ENGINES[engine](toy=TOY) as srv:
        assert run(problems, [srv.base_url], tmp_path / "o") == 0
        exact, total = probe_exactness(srv)
        gens = [c.body for c in srv.served("gen") if not is_check(c.body)]
    assert total > 0 and exact == total
    assert read_store(tmp_path / "o") == expected_store(TOY)
    meta = meta_of(tmp_path / "o")
    assert meta["settings"]["token_mode"] == "ids" and meta["token_ids_via"] == DIALECT[engine]
    assert meta["engines"][0]["engine"] == engine and meta["engines"][0]["context"] == 100_000
    assert meta["token_exactness"] == {"mode": "ids", "exact": True}
    # every distribution-changing parameter is sent, "off" unless set, in the engine's API
    sent = gens[0].get("sampling_params") or gens[0]
    penalty = "repeat_penalty" if engine == "llama.cpp" else "repetition_penalty"
    assert sent["temperature"] == 0.7 and sent["top_p"] == 0.95 and sent["min_p"] == 0.0
    assert sent["top_k"] == (-1 if engine == "sglang" else 0) and sent[penalty] == 1.0
    assert meta["sampling_sent"] == {k: v for k, v in sent.items() if k in meta["sampling_sent"]}


def test_llama_cpp_tokenize_answers_a_vllm_body_with_an_empty_list(tmp_path: Path) -> None:
    from tts_gym.collect.client import ServerPool
    from tts_gym.collect.engines import tokenize

    async def both(url: str) -> tuple[Any, Any]:
        async with ServerPool([url], 2, RetryPolicy(max_attempts=3, backoff_s=0.01)) as pool:
            return (await tokenize(pool, MODEL, "Hello", 5.0, "openai", server=0),
                    await tokenize(pool, MODEL, "Hello", 5.0, "llama.cpp", server=0))

    with FakeLlamaCpp(toy=TOY) as srv:
        vllm_style, own = asyncio.run(both(srv.base_url))
        replies = [c for c in srv.calls if c.kind == "tokenize"]
    assert vllm_style is None and own == TOK.encode("Hello")
    assert replies[0].fault is None  # the server said 200 {"tokens": []}: not this format


def test_an_unknown_owner_is_still_recognised_by_its_props(problems: Path, tmp_path: Path
                                                          ) -> None:
    class Renamed(FakeLlamaCpp):
        def models_reply(self) -> dict[str, Any]:
            reply = super().models_reply()
            reply["data"][0]["owned_by"] = "someone"
            return reply

    with Renamed(toy=TOY) as srv:
        assert run(problems, [srv.base_url], tmp_path / "o") == 0
    assert meta_of(tmp_path / "o")["engines"][0]["engine"] == "llama.cpp"
    assert read_store(tmp_path / "o") == expected_store(TOY)


def test_llama_cpp_effective_sampling_is_read_back_and_checked(
    problems: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeLlamaCpp(toy=TOY) as srv:
        assert run(problems, [srv.base_url], tmp_path / "o", top_k=20, min_p=0.1) == 0
    engine = meta_of(tmp_path / "o")["engines"][0]
    assert engine["server_sampling_defaults"]["top_k"] == 40  # the server's own defaults...
    assert engine["effective_sampling"]["top_k"] == 20  # ...overridden by what was sent
    assert engine["effective_sampling"]["min_p"] == 0.1
    assert engine["effective_sampling"]["temperature"] == 0.7
    capsys.readouterr()
    with FakeLlamaCpp(toy=TOY, ignore=("top_k",)) as srv:  # a server keeping its top_k 40
        assert run(problems, [srv.base_url], tmp_path / "bad") == 2
        assert all(is_check(c.body) for c in srv.served("gen"))  # refused before any work
    line = error_line(capsys)
    assert "top_k=40" in line and "llama.cpp" in line
    assert not (tmp_path / "bad").exists()


def test_llama_cpp_logprob_ids_are_used_and_a_missing_entry_is_refused(
    problems: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeLlamaCpp(toy=TOY, native=False) as srv:
        assert run(problems, [srv.base_url], tmp_path / "o") == 0
    assert meta_of(tmp_path / "o")["token_ids_via"] == "llama.cpp-logprobs"
    assert read_store(tmp_path / "o") == expected_store(TOY)
    capsys.readouterr()
    # "x" gets no content[] entry (as a token ending inside a UTF-8 character): the count
    # disagrees with completion_tokens, so the reply is refused, never stored approximately
    with FakeLlamaCpp(toy=TOY, native=False, no_entry_ids=frozenset({CHAR_BASE + ord("x")})
                      ) as srv:
        assert run(problems, [srv.base_url], tmp_path / "x", retries=1) == 2
    line = error_line(capsys)
    assert "token ids but usage.completion_tokens" in line
    assert not (tmp_path / "x" / "Toy-1B" / "toy.json").exists()


def test_auto_refuses_an_engine_without_an_exact_mode_in_one_sentence(
    problems: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeSGLang(toy=TOY, tokenize=False) as srv:
        assert run(problems, [srv.base_url], tmp_path / "o") == 2
    line = error_line(capsys)
    assert "sglang 0.5.10.post1" in line and "offers no working /tokenize" in line
    assert "--token-mode text" in line and line.count(". ") == 0


def test_text_mode_is_consent_and_warns_in_inspect_and_eval(
    problems: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeLlamaCpp(toy=TOY) as srv:
        assert run(problems, [srv.base_url], tmp_path / "o", token_mode="text",
                   keep_work=True) == 0
    exact = meta_of(tmp_path / "o")["token_exactness"]
    # llama.cpp has no text_offset: cuts at the mean characters per token; a probe counts as
    # matching when the server's prompt token count is prompt + p + suffix tokens (the prompt
    # and suffix lengths computed here with the toy tokenizer)
    text, _ = BUILTIN["qwen3"]
    lengths = [len(TOK.encode(text.replace("{problem}", p["problem"]))) for p in PROBLEMS]
    suffix = len(TOK.encode(DEFAULT_PROBE_SUFFIX))
    journal = tmp_path / "o" / "Toy-1B" / ".toy.collect" / "journal.jsonl"
    recs = [json.loads(ln) for ln in journal.read_text().splitlines()[1:]]
    probes = [r for r in recs if r["kind"] == "probe"]
    want = sum(r["prompt_tokens"] == lengths[r["q"]] + r["at"] + suffix for r in probes)
    assert exact["mode"] == "text" and exact["checked"] == len(probes)
    assert exact["matching"] == want < len(probes)  # inexact, and measured as such
    capsys.readouterr()
    base = ["--data-dir", str(tmp_path / "o"), "--model", "Toy-1B", "--benchmark", "toy"]
    assert main(["inspect", *base]) == 0
    err = capsys.readouterr().err
    assert "warning: toy.json was collected in token mode text" in err
    assert f"{exact['matching']}/{exact['checked']}" in err
    assert main(["eval", "cmc", *base, "--seeds", "1", "--json"]) == 0
    assert "warning: toy.json was collected in token mode text" in capsys.readouterr().err


def test_an_exact_store_gets_no_warning(problems: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    with FakeVLLM(toy=TOY) as srv:
        assert run(problems, [srv.base_url], tmp_path / "o") == 0
    capsys.readouterr()
    assert main(["inspect", "--data-dir", str(tmp_path / "o"), "--model", "Toy-1B",
                 "--benchmark", "toy"]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("engine", ["llama.cpp", "sglang"])
def test_context_of_every_engine_is_checked_before_the_first_generation(
    problems: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], engine: str
) -> None:
    kwargs = {"n_ctx": 150} if engine == "llama.cpp" else {"max_model_len": 150}
    with ENGINES[engine](toy=TOY, **kwargs) as srv:
        assert run(problems, [srv.base_url], tmp_path / "o", max_tokens=140) == 2
        big = [c for c in srv.calls if c.kind == "gen" and c.prompt_len > 2]
    assert "the server's context is 150 tokens" in error_line(capsys)
    assert not [c for c in big if (c.body.get("n_predict") or c.body.get("max_tokens")) == 140]


def test_check_prints_the_preflight_and_writes_nothing(
    problems: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeLlamaCpp(toy=TOY) as srv:
        assert run(problems, [srv.base_url], tmp_path / "o", check=True) == 0
        runs = [c for c in srv.served("gen") if c.body.get("n_predict") == ARGS["max_tokens"]]
    out = capsys.readouterr().out
    assert not (tmp_path / "o").exists() and not runs
    for needle in ("engine: llama.cpp b1-0c1e570", "token mode: ids", "context: 100000",
                   "top_k=0", "min_p=0.0", "estimate: at most 2,880 generated", "tok/s"):
        assert needle in out, needle


def test_a_run_journaled_before_the_new_fields_resumes(problems: Path, tmp_path: Path) -> None:
    """A journal header without top_k/min_p/repetition_penalty (written before they existed)
    counts as the same settings: the run resumes instead of refusing."""
    out = tmp_path / "o"
    with FakeVLLM(toy=TOY, delay_s=0.0) as srv:
        assert run(problems, [srv.base_url], out, keep_work=True,
                   max_tokens_total=400) == 3  # stopped by the budget: journal kept
    journal = out / "Toy-1B" / ".toy.collect" / "journal.jsonl"
    lines = journal.read_text().splitlines()
    header = json.loads(lines[0])
    for key in ("top_k", "min_p", "repetition_penalty"):
        header["config"].pop(key)
    journal.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with FakeVLLM(toy=TOY) as srv:
        assert run(problems, [srv.base_url], out) == 0
    assert read_store(out) == expected_store(TOY)


def test_answers_over_the_store_bound_are_cut(tmp_path: Path) -> None:
    """A final answer longer than the store format's bound is cut to it when the store is
    written (the loader would refuse the store otherwise); shorter answers are untouched."""
    from tts_gym.collect.extract import MAX_ANSWER_CHARS
    from tts_gym.store import load_store_file

    long_form = "9" * (MAX_ANSWER_CHARS + 500)
    problems = write_problems(tmp_path / "toy.jsonl", [
        {"id": "long", "problem": f"Say it. [toy 3 | {long_form}]", "answer": "3"}])
    toy = ToyModel(think_range=(5, 20), p_no_box=0.0, p_no_think_end=0.0)
    with FakeVLLM(toy=toy) as srv:
        assert run(problems, [srv.base_url], tmp_path / "o", max_tokens=4 * len(long_form),
                   branches=8) == 0
    store = read_store(tmp_path / "o")
    finals = store[0]["final_answers_trace"]
    assert long_form[:MAX_ANSWER_CHARS] in finals and "3" in finals  # both classes were drawn
    assert max(len(a) for a in finals) == MAX_ANSWER_CHARS
    load_store_file(tmp_path / "o" / "Toy-1B" / "toy.json", use_cache=False)
