"""Population rounds: K sibling proposals per round (``tts-gym discover --candidates-per-round K``).

The AutoTTS loop evaluates one candidate per round; here a round asks the LLM for K proposals
at once, each prompted with the same history (the finished rounds before this one), and records
all K as siblings (``"sibling": k`` of ``"siblings": K``; files ``round_003.json``,
``round_003_k1.json``, ...). Phases:

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

import threading
from collections.abc import Callable, Sequence
from typing import Any

from agents.synthesis.history import History
from agents.synthesis.llm import Budget, LLMClient
from agents.synthesis.loop import DiscoveryConfig, ask, evaluate_proposal, round_prompt
from tts_gym.executor import current
from tts_gym.store import ReplayStore


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
    """Do round ``r`` with ``cfg.candidates_per_round`` siblings (see the module docstring).

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
