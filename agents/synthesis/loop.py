"""The discovery loop: round 0 (seeds), R proposal rounds, selection, held-out, report.

Before round 0 the loop checks that candidate code can be isolated here (every required layer
of :mod:`tts_gym.sandbox`, unless ``--unsafe-no-isolation``). Resumable: finished rounds are
read back from the history and never redone; an unfinished round restarts from its saved
prompt, and from its saved LLM response when there is one (a paid reply is never requested
twice). On ``--resume`` nothing on disk is believed unchecked: a round record whose signature
(keyed outside the run folder) does not verify is recomputed, its code linted and run again.
The budget is checked before every LLM call; when it is reached the loop stops and still
writes the report. With ``candidates_per_round`` K > 1 a round asks for K sibling proposals
from the same history (:func:`run_population_round`); one round, single or population, lives in
this module.

Population rounds (``tts-gym discover --candidates-per-round K``). The AutoTTS loop evaluates one
candidate per round; here a round asks the LLM for K proposals at once, each prompted with the
same history (the finished rounds before this one), and records all K as siblings
(``"sibling": k`` of ``"siblings": K``; files ``round_003.json``, ``round_003_k1.json``, ...).
Phases:

1. Prompts: every sibling's prompt is built and saved before any request is sent.
2. Requests: the K requests go out concurrently (one thread each). Each checks the budget just
   before it is sent, counting every reply received so far; the K requests of a round are in
   flight together, so a round can spend up to K replies past the point where a one-at-a-time
   loop would have stopped (the budget is then reached and no further request is sent). Every
   reply is saved the moment it arrives, so a paid reply is never requested twice: a resumed
   round asks only for the siblings that have no saved reply.
3. Evaluation: every saved reply is linted, run and scored (:func:`evaluate_proposal`). On a
   distributed executor (Ray) the K candidates run together, so all their units share the
   cluster; on the local pool they take turns, each using every worker.
4. Records: appended in sibling order. The round is finished once all K are recorded; a round
   stopped early (budget, endpoint failure) keeps what it recorded and finishes on ``--resume``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agents.synthesis.aliases import AnswerLabels
from agents.synthesis.candidate import SweepSettings, evaluate_reply
from agents.synthesis.extract import ExtractionError, extract_code
from agents.synthesis.facts import facts_text
from agents.synthesis.feedback import grid_of
from agents.synthesis.history import History, RunFolderError, read_json, run_key
from agents.synthesis.llm import Budget, LLMClient, LLMConfig, LLMError, Pricing, token_count
from agents.synthesis.probe_facts import probe_facts_text
from agents.synthesis.prompt import build_messages
from agents.synthesis.seeds import PAPER_SEEDS, check_seed_names, seed_round
from tts_gym.evaluation.curves import BudgetGrid
from tts_gym.executor import current
from tts_gym.io import write_json_atomic
from tts_gym.paths import HELDOUT_BENCHMARKS, MODELS, SEARCH_BENCHMARKS
from tts_gym.sandbox.layers import require
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.sandbox.sanitize import clean_text
from tts_gym.store import ReplayStore, load_store
from tts_gym.store.load import metadata_split

DEFAULT_BETAS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))
"""The paper's sweep: 0.0, 0.1, ..., 1.0."""

# settings that must not change between a run and its resume (the history depends on them)
_FROZEN = ("models", "search_benchmarks", "betas", "seeds", "no_beta", "no_traces",
           "candidates_per_round", "seed_controllers")
# what a setting meant in a config.json written before the setting existed
_FROZEN_BEFORE = {"seed_controllers": list(PAPER_SEEDS)}
_NO_LOCK = contextlib.nullcontext()


@dataclass
class DiscoveryConfig:
    """Everything one run needs (the CLI fills it from flags).

    Attributes:
        out: Run folder (history, report, chosen controller).
        rounds: Proposal rounds after round 0.
        llm: Endpoint settings.
        models: Models whose search stores are used (default: all four).
        search_benchmarks: Search split benchmarks (AIME24); a held-out name is refused.
        heldout_benchmarks: Scored only after selection, for the chosen controller and seeds.
        data_dir: Store folder (None = TTS_GYM_DATA / download cache).
        betas: The beta sweep.
        seeds: Protocol seeds during search.
        final_seeds: Seeds for the held-out numbers (the paper's 100).
        limits: Sandbox limits.
        pricing: USD per million tokens.
        budget_usd, max_tokens_total: Hard budget (None = unlimited).
        resume: Continue an existing run folder.
        prompt_chars: Cap of the prompt's history part.
        run_id: Identifies the run's signing key (outside the run folder); set on creation.
        no_traces: The paper's ablation: no execution traces in the history.
        no_beta: The paper's ablation: no single beta knob; each candidate declares its own
            grid of settings, which is swept instead.
        finalists: Candidates re-scored with ``finalist_seeds`` seeds before the choice.
        finalist_seeds: Seeds of that re-scoring (search split).
        heldout_curve_seeds: Seeds of the chosen controller's held-out curve (its chosen
            point and the seeds' use ``final_seeds``).
        candidates_per_round: Sibling proposals per round (K), asked concurrently with the same
            history and evaluated in parallel on the executor.
        seed_controllers: The seeds round 0 scores and round 1 shows (default the paper's
            four; ``"cmc"`` starts from the state of the art). The score's budget grid comes
            from the paper's four whatever this says.
    """

    out: Path
    rounds: int
    llm: LLMConfig
    models: tuple[str, ...] = MODELS
    search_benchmarks: tuple[str, ...] = SEARCH_BENCHMARKS
    heldout_benchmarks: tuple[str, ...] = HELDOUT_BENCHMARKS
    data_dir: str | None = None
    betas: tuple[float, ...] = DEFAULT_BETAS
    seeds: int = 10
    final_seeds: int = 100
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    pricing: Pricing = field(default_factory=Pricing)
    budget_usd: float | None = None
    max_tokens_total: int | None = None
    resume: bool = False
    prompt_chars: int = 60000
    run_id: str = ""
    no_traces: bool = False
    no_beta: bool = False
    finalists: int = 3
    finalist_seeds: int = 30
    heldout_curve_seeds: int = 10
    candidates_per_round: int = 1
    seed_controllers: tuple[str, ...] = PAPER_SEEDS

    def to_dict(self) -> dict[str, Any]:
        """JSON form (saved as ``config.json``)."""
        d = asdict(self)
        d["out"] = str(self.out)
        return d


def check_search_split(benchmarks: Sequence[str], heldout: Sequence[str] = ()) -> None:
    """Refuse the paper's held-out benchmarks, and any benchmark also held out, during search.

    Raises:
        ValueError: The message names the benchmarks and says what is allowed.
    """
    both = sorted(set(benchmarks) & set(heldout))
    if both:
        raise ValueError(f"{both} are listed both for search and as held out; a benchmark used "
                         "to choose a controller cannot also test it.")
    bad = [b for b in benchmarks if b in HELDOUT_BENCHMARKS]
    if bad:
        raise ValueError(
            f"{bad} may not be used during search (held-out split of the paper); search on "
            f"{list(SEARCH_BENCHMARKS)} or on stores of your own. Held-out numbers come after "
            "selection."
        )


def load_search_stores(cfg: DiscoveryConfig) -> dict[str, ReplayStore]:
    """``"<model>/<benchmark>" -> store`` for the search split.

    The split comes from the options (``search_benchmarks``) and the stores' metadata, never
    from a name alone: a store whose ``.meta.json`` declares it held out is refused, and the
    paper's held-out benchmarks stay held out unless their metadata says search.
    """
    both = sorted(set(cfg.search_benchmarks) & set(cfg.heldout_benchmarks))
    if both:
        check_search_split(cfg.search_benchmarks, cfg.heldout_benchmarks)
    stores = {}
    for m in cfg.models:
        for b in cfg.search_benchmarks:
            s = load_store(m, b, cfg.data_dir)
            declared = metadata_split(Path(s.source)) if Path(s.source).is_file() else None
            if declared == "heldout":
                raise ValueError(f"{s.name} is declared held out by its metadata "
                                 f"({Path(s.source).with_suffix('.meta.json').name}); it cannot "
                                 "be searched.")
            if declared is None:
                check_search_split([s.benchmark])
            stores[s.name] = dataclasses.replace(s, split="search")
    return stores


def _prepare_out(cfg: DiscoveryConfig, history: History) -> None:
    cfg_path = cfg.out / "config.json"
    if history.finished() or cfg_path.exists():
        if not cfg.resume:
            raise ValueError(
                f"{cfg.out} already holds a discovery run; pass --resume to continue it or "
                "choose a new --out."
            )
        old = read_json(cfg_path, "the run's settings") if cfg_path.exists() else {}
        if not isinstance(old, dict):
            raise RunFolderError(f"{cfg_path} is not the run's settings (a JSON object); "
                                 "restore it from a copy, or start a new --out.")
        new = json.loads(json.dumps(cfg.to_dict()))
        changed = [k for k in _FROZEN if (k in old or (old and k in _FROZEN_BEFORE))
                   and old.get(k, _FROZEN_BEFORE.get(k)) != new[k]]
        if changed:
            raise ValueError(
                f"--resume with different {changed} than the saved run ({cfg_path}); "
                "the history would be inconsistent. Use the original settings."
            )
        run_id = old.get("run_id")
        cfg.run_id = run_id if isinstance(run_id, str) and run_id else ""
        if not cfg.run_id and old:  # a folder written before records were signed
            cfg.run_id = uuid.uuid4().hex
            write_json_atomic(cfg_path, {**old, "run_id": cfg.run_id})
    else:
        cfg.run_id = uuid.uuid4().hex
        write_json_atomic(cfg_path, cfg.to_dict())


def run_context(cfg: DiscoveryConfig, stores: dict[str, ReplayStore]) -> dict[str, Any]:
    """What every round record's signature also covers: the settings a resume must keep
    (:data:`_FROZEN`) and the digests of the run's search stores, so a record copied from
    another run (another store, other settings) does not verify here even under a borrowed
    run id."""
    settings = json.loads(json.dumps(cfg.to_dict()))
    return {"settings": {k: settings[k] for k in _FROZEN if k in settings},
            "stores": {k: s.sha256 for k, s in sorted(stores.items())}}


def _setting_line(cfg: DiscoveryConfig, stores: dict[str, ReplayStore]) -> str:
    sweep = ("your own SETTINGS grid (--no-beta)" if cfg.no_beta
             else f"beta sweep {list(cfg.betas)}")
    return (
        f"Search stores: {', '.join(stores)} ({sum(s.n_questions for s in stores.values())} "
        f"questions); {sweep}; {cfg.seeds} shuffle seeds"
        + ("; execution traces are not shown in this run (--no-traces)." if cfg.no_traces
           else ".")
    )


def run_grid(history: History) -> BudgetGrid | None:
    """The score's budget grid, fixed by round 0 (the paper's four seeds)."""
    return grid_of(history.get(0)) if history.has(0) else None


def _evaluate(cfg: DiscoveryConfig, history: History, stores: dict[str, ReplayStore],
              text: str, r: int, name: str | None = None) -> dict[str, Any]:
    return evaluate_reply(clean_text(text, 200_000), stores, _settings(cfg),
                          [e for e in history.entries() if int(e.get("round", 0)) < r],
                          name or f"round{r}", answer_labels(stores), run_grid(history))


def _spent(history: History) -> tuple[float, int]:
    """Dollars and LLM tokens recorded so far (values that are not believable count 0)."""
    usd, tok = 0.0, 0
    for rec in history.entries():
        resp = rec.get("response")
        u = resp.get("usage") if isinstance(resp, dict) else None
        if not isinstance(u, dict):
            continue
        cost = u.get("cost_usd", 0.0)
        if isinstance(cost, (int, float)) and not isinstance(cost, bool) and (
                math.isfinite(cost) and 0 <= cost < 1e9):
            usd += float(cost)
        tok += token_count(u.get("total_tokens", 0)) or 0
    return usd, tok


def run_round(
    r: int,
    cfg: DiscoveryConfig,
    history: History,
    stores: dict[str, ReplayStore],
    client: LLMClient,
    budget: Budget,
    log: Callable[[str], None],
) -> str | None:
    """Do round ``r`` (resuming its saved stages). Returns a stop reason, or None."""
    if cfg.candidates_per_round > 1:
        return run_population_round(r, cfg, history, stores, client, budget, log)
    messages = round_prompt(r, 0, cfg, history, history.entries(), stores)
    response, stop = ask(r, 0, messages, cfg, history, client, budget, log)
    if response is None:
        return stop
    history.append(evaluate_proposal(r, 0, messages, response, cfg, history, stores, log))
    return None


def concurrently(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` in threads and return their results in order.

    Threads are daemons: on Ctrl-C (or any exception here) the command's executor cancels the
    cluster work they wait for, and the process does not wait for a reply in flight.

    Raises:
        BaseException: The first exception a call raised, after every call ended.
    """
    out: list[Any] = [None] * len(calls)
    errors: list[BaseException | None] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            out[i] = calls[i]()
        except BaseException as exc:  # re-raised in the caller's thread
            errors[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except BaseException:
        ex = current()
        if ex is not None and hasattr(ex, "cancel_all"):
            ex.cancel_all()
        raise
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return out


def run_population_round(
    r: int,
    cfg: DiscoveryConfig,
    history: History,
    stores: dict[str, ReplayStore],
    client: LLMClient,
    budget: Budget,
    log: Callable[[str], None],
) -> str | None:
    """Do round ``r`` with ``cfg.candidates_per_round`` siblings (see "Population rounds" in the
    module docstring).

    Returns:
        Why the loop must stop (budget, endpoint failure), or None.
    """
    n = cfg.candidates_per_round
    todo = [k for k in range(n) if not history.has(r, k)]
    entries = [e for e in history.entries() if int(e.get("round", 0)) < r]
    prompts = {k: round_prompt(r, k, cfg, history, entries, stores) for k in todo}
    lock = threading.Lock()
    asked = concurrently([
        (lambda k=k: ask(r, k, prompts[k], cfg, history, client, budget, log, lock))
        for k in todo
    ])
    replies = {k: resp for k, (resp, _stop) in zip(todo, asked, strict=True) if resp is not None}
    stop = next((why for _resp, why in asked if why), None)
    calls = [(lambda k=k: evaluate_proposal(r, k, prompts[k], replies[k], cfg, history, stores,
                                            log)) for k in replies]
    ex = current()
    if ex is not None and ex.distributed:
        records = concurrently(calls)
    else:
        records = [call() for call in calls]
    for record in records:
        history.append(record, drop_partial=False)
    if all(history.has(r, k) for k in range(n)):
        history.drop_partial(r)
    return stop


_FACTS: dict[tuple[Any, ...], str] = {}


def store_facts_block(stores: dict[str, ReplayStore], seeds: int) -> str:
    """The prompt's facts: the stores' figures and their probe signal, computed once per set of
    loaded stores (the probe signal reads every probe of every branch: ~1 s for the four
    search stores)."""
    key = (seeds, *((k, id(s)) for k, s in stores.items()))
    if key not in _FACTS:
        _FACTS.clear()  # one run's stores at a time
        _FACTS[key] = facts_text(stores, seeds) + "\n" + probe_facts_text(stores)
    return _FACTS[key]


def round_prompt(r: int, k: int, cfg: DiscoveryConfig, history: History,
                 entries: list[dict[str, Any]], stores: dict[str, ReplayStore]
                 ) -> list[dict[str, str]]:
    """The saved prompt of round ``r`` (sibling ``k``), else a new one from ``entries``
    (saved before it is sent)."""
    messages = history.load_partial(r, "prompt", k)
    if messages is None:
        kk = cfg.candidates_per_round
        messages = build_messages(
            r, cfg.rounds, entries, _setting_line(cfg, stores), cfg.prompt_chars,
            facts=store_facts_block(stores, cfg.seeds), no_beta=cfg.no_beta,
            proposal=(k, kk) if kk > 1 else None,
        )
        history.save_partial(r, "prompt", messages, k)
    return messages


def ask(
    r: int,
    k: int,
    messages: list[dict[str, str]],
    cfg: DiscoveryConfig,
    history: History,
    client: LLMClient,
    budget: Budget,
    log: Callable[[str], None],
    lock: Any = _NO_LOCK,
) -> tuple[dict[str, Any] | None, str | None]:
    """The saved LLM response of round ``r`` (sibling ``k``), else a new, paid one (the budget
    is checked first; the reply is saved before anything else). Returns ``(response, None)``
    or ``(None, stop reason)``. ``lock`` guards the budget and the history (sibling threads)."""
    response = history.load_partial(r, "response", k)
    if response is not None:
        log(f"{_label(r, k, cfg)}: reusing the saved LLM response")
        return response, None
    with lock:
        stop = budget.exhausted()
    if stop:
        return None, stop
    log(f"{_label(r, k, cfg)}: asking {cfg.llm.model} "
        f"({sum(len(m['content']) for m in messages)} chars)")
    try:
        reply = client.complete(messages)
    except LLMError as exc:
        return None, f"LLM endpoint failed in {_label(r, k, cfg)}: {exc}"
    response = reply.to_dict()
    with lock:
        history.save_partial(r, "response", response, k)
        budget.add(response["usage"])
    return response, None


def evaluate_proposal(
    r: int,
    k: int,
    messages: list[dict[str, str]],
    response: dict[str, Any],
    cfg: DiscoveryConfig,
    history: History,
    stores: dict[str, ReplayStore],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Lint, run and score one reply; the round record (sibling ``k`` of ``candidates_per_round``
    when there are several)."""
    start = time.monotonic()
    if history.load_partial(r, "evaluating", k) is not None:
        log(f"{_label(r, k, cfg)}: the evaluation of its saved reply started in an earlier run "
            "and never finished; recorded as failed (not run again into the same crash)")
        return {"round": r, **_sibling(k, cfg), "kind": "candidate",
                **interrupted(response.get("text", "")), "prompt": messages,
                "response": response, "eval_seconds": 0.0}
    history.save_partial(r, "evaluating", {"started": time.time()}, k)
    log(f"{_label(r, k, cfg)}: evaluating the candidate on {len(stores)} search store(s)")
    evaluated = _evaluate(cfg, history, stores, response.get("text", ""), r, _name(r, k))
    record = {
        "round": r,
        **_sibling(k, cfg),
        "kind": "candidate",
        **evaluated,
        "prompt": messages,
        "response": response,
        "eval_seconds": round(time.monotonic() - start, 2),
    }
    log(f"{_label(r, k, cfg)}: {outcome_line(record)}")
    return record


def interrupted(text: str) -> dict[str, Any]:
    """The evaluated part of a round record for a reply whose evaluation started in an earlier
    run and has no recorded outcome: the command crashed or was killed while evaluating it."""
    try:
        code: str | None = extract_code(text)
    except ExtractionError:
        code = None
    return {"status": "failed", "failure_kind": "interrupted", "code": code,
            "reason": "the evaluation of this reply started in an earlier run and did not finish "
                      "(the command crashed or was killed); recorded as failed so that --resume "
                      "does not run it into the same crash again"}


def outcome_line(record: dict[str, Any]) -> str:
    """A round's result in one line, the score (what the loop optimises) first."""
    m = record.get("metrics") or {}
    if record.get("status") != "ok" or "score" not in m:
        reason = str(record.get("reason") or "").splitlines()[0][:200] if record.get(
            "reason") else ""
        return f"{record.get('status')} ({record.get('failure_kind')}): {reason}"
    b, knob = m["best"], m.get("knob", "beta")
    verdicts = "; ".join(f"{c['verdict']} vs {c['name']}" for c in m.get("comparisons", []))
    return (f"score {m['score']:.2f}; top point {knob}={b.get(knob)} {b['accuracy']:.2f}% at "
            f"{b['avg_tokens']:,.0f} tokens" + (f"; {verdicts}" if verdicts else ""))


def _sibling(k: int, cfg: DiscoveryConfig) -> dict[str, int]:
    kk = cfg.candidates_per_round
    return {"sibling": k, "siblings": kk} if kk > 1 else {}


def _name(r: int, k: int) -> str:
    return f"round{r}" + (f"k{k}" if k else "")


def _label(r: int, k: int, cfg: DiscoveryConfig) -> str:
    kk = cfg.candidates_per_round
    return f"round {r}" + (f" proposal {k + 1}/{kk}" if kk > 1 else "")


def _settings(cfg: DiscoveryConfig) -> SweepSettings:
    return SweepSettings(betas=tuple(cfg.betas), seeds=tuple(range(cfg.seeds)), limits=cfg.limits,
                         traces=not cfg.no_traces, knob="setting" if cfg.no_beta else "beta")


def answer_labels(stores: dict[str, ReplayStore]) -> frozenset[str]:
    """Every answer label of every question of the search stores, gold or not (a candidate may
    not hard-code one; refusing only gold strings would tell the LLM which strings are gold).
    Noise answers are left out (:data:`~agents.synthesis.aliases.NOISE`)."""
    return AnswerLabels(stores).all


def _reverify(cfg: DiscoveryConfig, history: History, stores: dict[str, ReplayStore],
              log: Callable[[str], None]) -> None:
    """Recompute every finished round whose record does not verify (see the module docstring)."""
    history.load_replacements()
    for r, k in history.keys():
        raw = history.raw(r, k)
        if (r if not k else (r, k)) in history.replaced or history.verify(raw):
            continue
        log(f"{_label(r, k, cfg)}: its record does not verify (edited, or its key is gone); "
            "recomputing")
        if r == 0:
            history.replace(0, seed_round(stores, list(range(cfg.seeds)),
                                          cfg.seed_controllers))
            continue
        code = raw.get("code") if isinstance(raw.get("code"), str) else ""
        reply = f"```python\n{code}```" if code else ""
        evaluated = _evaluate(cfg, history, stores, reply, r, _name(r, k))
        usage = (raw.get("response") or {}).get("usage") if isinstance(
            raw.get("response"), dict) else None
        history.replace(r, {"round": r, **_sibling(k, cfg), "kind": "candidate", **evaluated,
                            "prompt": [], "recomputed": True,
                            "response": {"text": reply,
                                         "usage": usage if isinstance(usage, dict) else {}}}, k)


def run_discovery(
    cfg: DiscoveryConfig,
    client: LLMClient | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) a discovery; returns the summary written to ``summary.json``."""
    from agents.synthesis.report import finalize

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    cfg.seed_controllers = check_seed_names(cfg.seed_controllers)
    stores = load_search_stores(cfg)  # first: a run that cannot start must not claim --out
    layers = require(cfg.limits)  # no isolation, no run (unless --unsafe-no-isolation)
    if not layers["ok"]:
        log(f"WARNING: candidates run WITHOUT operating-system isolation: {layers['error']}")
    if client is None:  # the real endpoint: key, reachability and model before anything else
        client = LLMClient(cfg.llm, cfg.pricing)
        try:
            log(client.preflight())
        except LLMError as exc:
            raise ValueError(str(exc)) from None
    cfg.out.mkdir(parents=True, exist_ok=True)
    history = History(cfg.out)
    _prepare_out(cfg, history)
    history.key = run_key(cfg.run_id, create=True) if cfg.run_id else None
    history.context = run_context(cfg, stores)
    if cfg.resume:
        _reverify(cfg, history, stores, log)
    if not history.has(0):
        log(f"round 0: scoring the seed controllers on {len(stores)} search store(s)")
        history.append(seed_round(stores, list(range(cfg.seeds)), cfg.seed_controllers))
    history.write_index()
    client = client or LLMClient(cfg.llm, cfg.pricing)
    usd, tok = _spent(history)
    budget = Budget(cfg.budget_usd, cfg.max_tokens_total, usd, tok)
    stop = None
    for r in range(1, cfg.rounds + 1):
        if all(history.has(r, k) for k in range(cfg.candidates_per_round)):
            continue
        stop = run_round(r, cfg, history, stores, client, budget, log)
        if stop:
            log(f"stopping: {stop}")
            break
    return finalize(cfg, history, stores, stop, budget, log)
