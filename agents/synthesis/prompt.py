"""The proposal prompt: environment, primitives, objective, constraints, then the history.

History is compact and latest-first (shared/spec/discovery.md): each earlier round shows its
status (with the rejection reason), its scaling curve, the monotone-spending and schedule
checks, the per-question comparison with the best seed, the failure summary and a sampled,
size-capped trace; full code only for the best candidate so far and the latest one. The seed
controllers (round 0) come last with their ``solve`` source. The whole user message is capped
at ``max_chars`` by dropping the oldest candidate rounds first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agents.synthesis.contract import CONSTRAINTS, OBJECTIVE, QUESTION_API

SKELETON = """\
```python
import math
from collections import Counter


class Controller:
    def __init__(self, beta):
        self.beta = min(1.0, max(0.0, float(beta)))
        self.cfg = self.schedule(self.beta)

    def schedule(self, beta):
        return {"max_branches": max(1, round(4 + 60 * beta))}

    def solve(self, question):
        ...  # spawn / probe / stop using question.probe_new, probe_more, full_read
        question.note("stop", reason="...", answer=answer)
        return answer
```"""

SYSTEM = f"""You design test-time scaling controllers for a replay environment of pre-recorded \
LLM reasoning traces (AutoTTS). For each math question there are up to 64 recorded \
reasoning branches; a controller decides how many branches to open, how far to read each, \
when to abandon one and when to stop and answer.

{QUESTION_API}

{OBJECTIVE}

{CONSTRAINTS}

Reply with a short rationale (a few sentences) and then exactly one python code block with \
the full file, shaped like:
{SKELETON}"""


def _curve_text(curve: Sequence[dict[str, Any]], knob: str) -> str:
    return ", ".join(
        f"{p[knob]:g}->{p['accuracy']:.2f}%/{p['avg_tokens'] / 1000:.1f}k" for p in curve
    )


def _candidate_text(rec: dict[str, Any], with_code: bool) -> str:
    sibling = (f" (proposal {rec['sibling'] + 1} of {rec['siblings']})"
               if rec.get("siblings", 1) > 1 else "")
    head = f"## Round {rec['round']}{sibling}: {rec['status']}"
    lines = [head]
    if rec.get("status") != "ok":
        lines.append(f"Rejected/failed ({rec.get('failure_kind')}): {rec.get('reason')}")
        if rec.get("code") and with_code:
            lines.append(f"```python\n{rec['code']}```")
        return "\n".join(lines)
    m = rec["metrics"]
    b = m["best"]
    lines.append(
        f"Best beta {b['beta']:g}: accuracy {b['accuracy']:.2f}%, {b['avg_tokens']:.0f} tokens "
        f"(best seed {m.get('seed_name')}: {m.get('seed_accuracy')}%, "
        f"{m.get('seed_tokens')} tokens)."
    )
    lines.append(f"Scaling curve (beta->acc/tokens): {_curve_text(m['curve'], 'beta')}")
    mono = m.get("monotone_violations") or []
    lines.append(
        "Spending monotone in beta: yes" if not mono else "NOT monotone: " + "; ".join(mono[:4])
    )
    if m.get("schedule_issues"):
        lines.append("Schedule: " + "; ".join(m["schedule_issues"][:4]))
    cmp = m.get("vs_best_seed") or {}
    if cmp:
        lines.append(
            f"Vs best seed per question: lost {cmp['n_lost']}, won {cmp['n_won']}; "
            f"lost [store, q, seed acc, this acc]: {json.dumps(cmp['lost'][:5])}"
        )
    if m.get("failures"):
        lines.append(f"Failure summary at best beta: {json.dumps(m['failures'])}")
    if m.get("trace_check"):
        lines.append(f"Trace check: {json.dumps(m['trace_check'])}")
    checks = m.get("checks") or {}
    missing = [k for k in ("adaptive_width", "adaptive_depth") if checks.get(k) is False]
    if missing:
        lines.append(f"Not adaptive: {', '.join(missing)} (the spec asks for both).")
    for t in rec.get("trace_samples", [])[:2]:
        lines.append(f"Trace {t['store']} q{t['question']} (answer {t['verdict']}): {t['text']}")
    if with_code:
        lines.append(f"```python\n{rec['code']}```")
    return "\n".join(lines)


def _seeds_text(rec: dict[str, Any]) -> str:
    lines = ["## Round 0: seed controllers (search split)"]
    for e in rec["seeds"]:
        if e["status"] != "ok":
            lines.append(f"### {e['name']}: unavailable")
            continue
        knob = e["knob"]
        lines.append(
            f"### {e['name']} (knob {knob}; fixed {e['fixed']}): {_curve_text(e['curve'], knob)}"
        )
        lines.append(f"Trace q0: {e['trace']['text']}")
        if e.get("source"):
            lines.append(f"```python\n{e['source']}```")
    return "\n".join(lines)


def _best_round(entries: Sequence[dict[str, Any]]) -> int | None:
    ok = [e for e in entries if e.get("kind") == "candidate" and e.get("status") == "ok"]
    if not ok:
        return None
    b = min(
        ok, key=lambda e: (-e["metrics"]["best"]["accuracy"], e["metrics"]["best"]["avg_tokens"])
    )
    return int(b["round"])


def build_messages(
    round_no: int,
    total_rounds: int,
    entries: Sequence[dict[str, Any]],
    setting: str,
    max_chars: int = 60000,
    proposal: tuple[int, int] | None = None,
) -> list[dict[str, str]]:
    """The chat messages asking for round ``round_no``'s candidate.

    Args:
        round_no: The round being proposed (1-based; round 0 is the seeds).
        total_rounds: Rounds planned in this run.
        entries: Finished rounds (any order); round 0 must be among them.
        setting: One line naming the search stores, betas and seeds.
        max_chars: Cap on the user message (oldest candidate rounds dropped first).
        proposal: ``(k, K)`` when the round asks for K sibling proposals (k from 0), all from
            the same history.

    Returns:
        ``[{"role": "system", ...}, {"role": "user", ...}]``.
    """
    seeds = [e for e in entries if e.get("kind") == "seeds"]
    cands = sorted(
        (e for e in entries if e.get("kind") == "candidate"), key=lambda e: -int(e["round"])
    )
    best = _best_round(cands)
    latest_ok = next((int(e["round"]) for e in cands if e.get("status") == "ok"), None)
    sibling = ("" if proposal is None else f"Proposal {proposal[0] + 1} of {proposal[1]} this "
               "round (the other proposals see the same history; make yours differ).\n")
    head = (
        f"Round {round_no} of {total_rounds}. {setting}\n{sibling}"
        "History, latest first. Propose a NEW controller that beats the best so far "
        "(accuracy first, then tokens), learning from the failures and traces below."
    )
    blocks = [_candidate_text(e, with_code=int(e["round"]) in (best, latest_ok)) for e in cands]
    tail = _seeds_text(seeds[0]) if seeds else ""
    while blocks and len(head) + len(tail) + sum(len(b) + 2 for b in blocks) > max_chars:
        blocks.pop()
    dropped = len(cands) - len(blocks)
    if dropped:
        blocks.append(f"({dropped} older round(s) omitted for length.)")
    user = "\n\n".join([head, *blocks, tail]).strip()
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
