"""The proposal prompt: what the LLM needs to steer, in the order it needs it.

System message: the environment, the question primitives and helpers, the objective (the whole
curve), the constraints. User message, latest first: the round and the search setting; facts
about the stores (probe interval, branch lengths, pass@1, noise answers, what one episode is
worth); the diagnostics' and the trace symbols' definitions; the BEST SO FAR (round or seed,
its curve with standard errors, its per-store rows, its code); the latest round in full (its
curve, score, paired comparison with the best so far and the best seed, per-question wins and
losses, diagnostics, labelled traces from questions it lost); older rounds one line each; the
seeds: their full candidate files in round 1, one line each afterwards. Capped at
``max_chars`` by dropping the oldest one-line rounds first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.synthesis.contract import CONSTRAINTS, CONSTRAINTS_NO_BETA, OBJECTIVE, QUESTION_API
from agents.synthesis.feedback import best_so_far
from agents.synthesis.scoring import DIAGNOSTICS
from agents.synthesis.seeds import seed_source
from tts_gym.sandbox.sanitize import redact

SKELETON = """\
```python
import math
from collections import Counter
from tts_gym.candidate import beta_conf, majority, top2


class Controller:
    def __init__(self, beta):
        self.beta = min(1.0, max(0.0, float(beta)))
        self.cfg = self.schedule(self.beta)

    def schedule(self, beta):
        return {"max_branches": max(1, round(4 + 60 * beta))}

    def solve(self, question):
        ...  # spawn / probe / prune / stop with question.probe_new, probe_more, full_read, prune
        question.note("stop", reason="...", answer=answer)
        return answer
```"""

SKELETON_NO_BETA = """\
```python
from tts_gym.candidate import majority

SETTINGS = [{"reads": 2}, {"reads": 8}, {"reads": 32}]


class Controller:
    def __init__(self, setting):
        self.reads = setting["reads"]

    def solve(self, question):
        ...
```"""

INTRO = """You design test-time scaling controllers for a replay environment of pre-recorded \
LLM reasoning traces (AutoTTS). For each math question there are up to 64 recorded \
reasoning branches; a controller decides how many branches to open, how far to read each, \
when to abandon one and when to stop and answer."""

TRACE_LEGEND = """\
Trace symbols: answers are per-episode aliases `A`, `B`, ... in the order the episode first
revealed them (never the answer strings); `~ERR`, `~?`, `~No` mark noise answers (see the facts).
`new sK=A` probe_new opened slot K and read answer A; `more sK=A` probe_more; `read sK=A`
full_read; a trailing `!` means the branch has finished (A is its final answer); `(maj A)` the
most frequent of the branches' latest answers became A; `prune sK`; `more sK refused (why)` a
call the environment refused; `NOTE event k=v ...` the controller's own note (answers in it
aliased too: `‹A›` inside text, `‹answer›` for an answer of another question); `FINISH A (T tok)`
its answer and total tokens (`unrevealed`: never returned by a primitive, scored wrong). Only
the first and last steps, the last note and the steps where the majority or a branch's answer
changed are shown; `... N steps ...` stands for the steps between them."""


def system_message(no_beta: bool = False) -> str:
    """The system message (fixed for a run)."""
    constraints = CONSTRAINTS_NO_BETA if no_beta else CONSTRAINTS
    skeleton = SKELETON_NO_BETA if no_beta else SKELETON
    return (f"{INTRO}\n\n{QUESTION_API}\n\n{OBJECTIVE}\n\n{constraints}\n\nReply with a short "
            "rationale (a few sentences) and then exactly one python code block with the full "
            f"file, shaped like:\n{skeleton}")


SYSTEM = system_message()


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def curve_text(curve: Sequence[dict[str, Any]], knob: str) -> str:
    """``knob->accuracy±se%/tokens`` per point."""
    parts = []
    for p in curve:
        se = f"±{p['se']:.1f}" if isinstance(p.get("se"), (int, float)) else ""
        parts.append(f"{_num(p[knob])}->{p['accuracy']:.1f}{se}%/{p['avg_tokens'] / 1000:.1f}k")
    return ", ".join(parts)


def _per_store(point: dict[str, Any]) -> list[str]:
    rows = ["| store | accuracy % | tokens |", "|---|---|---|"]
    for key, v in (point.get("per_store") or {}).items():
        rows.append(f"| {key} | {v['accuracy']:.2f} | {v['avg_tokens']:,.0f} |")
    return rows


def _top(curve: Sequence[dict[str, Any]], best: dict[str, Any], knob: str) -> dict[str, Any]:
    return next((p for p in curve if p.get(knob) == best.get(knob)), curve[-1])


def _best_block(best: dict[str, Any] | None, entries: Sequence[dict[str, Any]]) -> list[str]:
    if best is None:
        return ["## Best so far: none yet"]
    knob = "beta" if best["round"] else next(
        (s["knob"] for e in entries if e.get("kind") == "seeds" for s in e["seeds"]
         if f"seed {s['name']}" == best["name"]), "beta")
    top = best["best"]
    lines = [f"## Best so far: {best['name']} (score {best['score']:.2f})",
             f"Top point {knob}={_num(top.get(knob))}: {top['accuracy']:.2f}% "
             f"(±{top.get('se', float('nan')):.2f}) at {top['avg_tokens']:,.0f} tokens.",
             f"Curve ({knob}->acc±se/tokens): {curve_text(best['curve'], knob)}",
             "Per store at the top point:", *_per_store(_top(best["curve"], top, knob))]
    if best["round"]:
        rec = next(e for e in entries if e.get("round") == best["round"])
        lines.append(f"Its code:\n```python\n{rec.get('code', '')}```")
    return lines


def _compare_text(label: str, cmp: dict[str, Any] | None) -> str:
    if not cmp:
        return ""
    diff = (f"{cmp['diff']:+.2f} points (paired se {cmp['se']:.2f})" if "diff" in cmp else "")
    return (f"Vs {label} {cmp.get('name')}: {diff}; questions won {cmp['n_won']}: "
            f"{' '.join(cmp['won']) or '-'}; lost {cmp['n_lost']}: {' '.join(cmp['lost']) or '-'}")


def _latest_block(rec: dict[str, Any], with_code: bool) -> list[str]:
    lines = [f"## Latest: round {rec['round']}: {rec.get('status')}"]
    if rec.get("status") != "ok":
        lines.append(f"{rec.get('failure_kind')}: {rec.get('reason')}")
        if with_code and rec.get("code"):
            lines.append(f"```python\n{rec['code']}```")
        return lines
    m = rec["metrics"]
    knob = m.get("knob", "beta")
    b = m["best"]
    lines += [
        f"Score {m.get('score', 0):.2f}; top point {knob}={_num(b.get(knob))}: "
        f"{b['accuracy']:.2f}% (±{b.get('se', float('nan')):.2f}) at {b['avg_tokens']:,.0f} "
        "tokens.",
        f"Curve ({knob}->acc±se/tokens): {curve_text(m['curve'], knob)}",
        "Per store at the top point:", *_per_store(_top(m["curve"], b, knob)),
    ]
    for text in (_compare_text("the best so far", m.get("vs_best")),
                 _compare_text("the best seed", m.get("vs_best_seed"))):
        if text:
            lines.append(text)
    if m.get("diagnostics"):
        lines.append("Diagnostics at the top point: " + ", ".join(
            f"{k}={v}" for k, v in m["diagnostics"].items()))
    mono = m.get("monotone_violations") or []
    if knob == "beta":
        lines.append("Spending monotone in beta: yes" if not mono
                     else "NOT monotone: " + "; ".join(mono[:4]))
    if m.get("schedule_issues"):
        lines.append("Schedule: " + "; ".join(m["schedule_issues"][:4]))
    checks = m.get("checks") or {}
    missing = [k for k in ("adaptive_width", "adaptive_depth") if checks.get(k) is False]
    if missing:
        lines.append(f"Not adaptive: {', '.join(missing)} (the spec asks for both).")
    for t in rec.get("trace_samples", []):
        lines.append(f"Trace ({t.get('why', 'sample')}) {t['store']} question {t['question']} "
                     f"seed {t.get('seed', 0)} {knob}={_num(t.get('beta'))} (answer "
                     f"{t['verdict']}): {t['text']}")
    if with_code:
        lines.append(f"Its code:\n```python\n{rec.get('code', '')}```")
    return lines


def _one_line(rec: dict[str, Any]) -> str:
    if rec.get("status") != "ok":
        reason = str(rec.get("reason") or "").replace("\n", " ")[:160]
        return f"- round {rec['round']}: {rec.get('status')} ({rec.get('failure_kind')}): {reason}"
    m = rec["metrics"]
    b = m["best"]
    knob = m.get("knob", "beta")
    return (f"- round {rec['round']}: score {m.get('score', 0):.2f}, top {knob}="
            f"{_num(b.get(knob))} {b['accuracy']:.2f}%/{b['avg_tokens'] / 1000:.1f}k")


def _seeds_block(rec: dict[str, Any], full: bool) -> list[str]:
    lines = ["## Seed controllers (round 0, search split)"]
    for e in rec.get("seeds", []):
        if e.get("status") != "ok":
            lines.append(f"- {e['name']}: unavailable")
            continue
        knob = e["knob"]
        score = f"score {e['score']:.2f}; " if "score" in e else ""
        lines.append(f"- {e['name']} ({score}{knob}->acc±se/tokens): "
                     f"{curve_text(e['curve'], knob)}")
        if full:
            betas = e.get("betas") or {}
            grid = ", ".join(f"{knob}={k} at beta={v:g}" for k, v in betas.items())
            lines.append(f"Its candidate file ({grid}):\n```python\n{seed_source(e['name'])}```")
    return lines


def build_messages(
    round_no: int,
    total_rounds: int,
    entries: Sequence[dict[str, Any]],
    setting: str,
    max_chars: int = 60000,
    facts: str = "",
    no_beta: bool = False,
    proposal: tuple[int, int] | None = None,
) -> list[dict[str, str]]:
    """The chat messages asking for round ``round_no``'s candidate.

    Args:
        round_no: The round being proposed (1-based; round 0 is the seeds).
        total_rounds: Rounds planned in this run.
        entries: Finished rounds (any order); round 0 must be among them.
        setting: One line naming the search stores, the sweep and the seeds.
        max_chars: Cap on the user message (oldest one-line rounds dropped first).
        facts: The store facts block (:func:`agents.synthesis.facts.facts_text`).
        no_beta: The ``--no-beta`` contract.
        proposal: ``(k, K)`` when the round asks for K sibling proposals (k from 0), all from
            the same history.

    Returns:
        ``[{"role": "system", ...}, {"role": "user", ...}]``, secrets redacted.
    """
    entries = sorted(entries, key=lambda e: int(e.get("round", 0)))
    seeds = [e for e in entries if e.get("kind") == "seeds"]
    cands = [e for e in entries if e.get("kind") == "candidate"]
    best = best_so_far(entries)
    latest = cands[-1] if cands else None
    head = [f"Round {round_no} of {total_rounds}. {setting}",
            *([] if proposal is None else [
                f"Proposal {proposal[0] + 1} of {proposal[1]} this round (the other proposals "
                "see the same history; make yours differ)."]),
            "Propose a NEW controller whose curve beats the best so far, learning from the "
            "comparisons, diagnostics and traces below.", facts,
            "Diagnostics: " + "; ".join(f"{k}: {v}" for k, v in DIAGNOSTICS.items()) + ".",
            "Accuracy figures carry a standard error (±) from seed-to-seed variation within "
            "each question; differences between two controllers are paired on the same "
            "episodes.", TRACE_LEGEND]
    blocks = _best_block(best, entries)
    if latest is not None and (best is None or latest["round"] != best["round"]):
        blocks += _latest_block(latest, with_code=True)
    elif latest is not None:
        blocks += _latest_block(latest, with_code=False)
    older = [_one_line(e) for e in reversed(cands[:-1])] if len(cands) > 1 else []
    seed_lines = _seeds_block(seeds[0], full=not cands) if seeds else []
    fixed = "\n".join(head) + "\n\n" + "\n".join(blocks) + "\n\n" + "\n".join(seed_lines)
    kept = list(older)
    while kept and len(fixed) + sum(len(x) + 1 for x in kept) > max_chars:
        kept.pop()
    if len(kept) < len(older):
        kept.append(f"({len(older) - len(kept)} older round(s) omitted for length.)")
    middle = "\n".join(["## Earlier rounds", *kept]) if kept else ""
    user = "\n\n".join(x for x in ("\n".join(head), "\n".join(blocks), middle,
                                   "\n".join(seed_lines)) if x).strip()
    return [{"role": "system", "content": redact(system_message(no_beta))},
            {"role": "user", "content": redact(user)}]
