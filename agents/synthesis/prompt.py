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
from agents.synthesis.feedback import best_so_far, focus_points, grid_of
from agents.synthesis.scoring import DIAGNOSTICS
from agents.synthesis.seeds import seed_source
from tts_gym.evaluation.curves import (
    VERDICT_RULE,
    BudgetGrid,
    comparison_from_dict,
    format_se,
    pick_at,
)
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


def _pm(se: Any) -> str:
    return f"±{format_se(float(se))}" if isinstance(se, (int, float)) else ""


def curve_text(curve: Sequence[dict[str, Any]], knob: str) -> str:
    """``knob->accuracy±se%/tokens`` per point."""
    parts = []
    for p in curve:
        se = f"±{p['se']:.1f}" if isinstance(p.get("se"), (int, float)) else ""
        parts.append(f"{_num(p[knob])}->{p['accuracy']:.1f}{se}%/{p['avg_tokens'] / 1000:.1f}k")
    return ", ".join(parts)


def objective_text(grid: BudgetGrid | None, seeds: Sequence[dict[str, Any]]) -> str:
    """The score in numbers: the grid, what a point below it counts, and one seed's score
    worked out from its curve."""
    if grid is None:
        return ""
    lines = [
        f"The score, in numbers: {grid.describe()} (fixed by the paper's four seed controllers' "
        "search curves, so scores of different runs compare). At each budget the curve counts "
        "its best accuracy (mean over the search stores, %) among its points costing at most "
        "that budget; a budget below the curve's cheapest point counts 0, so a point (e.g. "
        f"beta=0) must cost at most {grid.lo:,.0f} tokens to score at the lowest budget. "
        "The score is the mean of the counts."]
    ex = next((e for e in seeds if e.get("status") == "ok" and "score" in e), None)
    if ex is not None:
        knob, budgets = ex["knob"], grid.budgets()
        shown = sorted({0, len(budgets) // 4, len(budgets) // 2, 3 * len(budgets) // 4,
                        len(budgets) - 1})
        parts = []
        for j in shown:
            i = pick_at(ex["curve"], float(budgets[j]))
            parts.append(f"budget {j + 1} ({budgets[j]:,.0f}): "
                         + ("no point, 0" if i is None else
                            f"{knob}={_num(ex['curve'][i][knob])} "
                            f"{ex['curve'][i]['accuracy']:.2f}"))
        lines.append(f"Worked example, seed {ex['name']} (curve below): " + "; ".join(parts)
                     + f"; the mean over all {grid.n} budgets is its score, {ex['score']:.2f}.")
    return "\n".join(lines)


def _focus_table(curve: Sequence[dict[str, Any]], knob: str) -> list[str]:
    """Per store at the cheapest, middle and top points."""
    focus = focus_points(curve)
    head = " | ".join(f"{band} {knob}={_num(curve[i][knob])}" for band, i in focus)
    rows = ["Per store (accuracy % / tokens) at the curve's focus points:",
            f"| store | {head} |", "|---|" + "---|" * len(focus)]
    keys = list(curve[focus[0][1]].get("per_store") or {})
    for key in keys:
        cells = []
        for _band, i in focus:
            v = (curve[i].get("per_store") or {}).get(key)
            cells.append(f"{v['accuracy']:.2f} / {v['avg_tokens'] / 1000:.1f}k" if v else "")
        rows.append(f"| {key} | " + " | ".join(cells) + " |")
    return rows


def _comparison_lines(cmp: dict[str, Any]) -> list[str]:
    try:
        c = comparison_from_dict(cmp)
    except (KeyError, TypeError, ValueError):
        return []
    return [f"Vs {cmp.get('label', '')} ({cmp.get('name')}), per budget band:", *c.lines()]


def _diagnostics_table(diag: dict[str, Any]) -> list[str]:
    if not diag or not all(isinstance(v, dict) for v in diag.values()):
        return []
    keys = [k for k in DIAGNOSTICS if any(k in v for v in diag.values())]
    rows = ["Diagnostics at the focus points (definitions above):",
            "| point | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for label, v in diag.items():
        rows.append(f"| {v.get('band', '')} {label} | "
                    + " | ".join(str(v.get(k, "")) for k in keys) + " |")
    return rows


def _code_of(entries: Sequence[dict[str, Any]], r: int) -> str:
    rec = next((e for e in entries if e.get("round") == r and e.get("kind") == "candidate"), {})
    return f"Its code:\n```python\n{rec.get('code', '')}```"


def _best_block(best: dict[str, Any] | None, entries: Sequence[dict[str, Any]],
                also_latest: bool) -> list[str]:
    if best is None:
        return ["## Best so far: none yet"]
    knob = best.get("knob", "beta")
    top = best["best"]
    title = f"## Best so far: {best['name']} (score {best['score']:.2f})"
    if also_latest:
        title = f"## Best so far, and the latest round: {best['name']} (score {best['score']:.2f})"
    lines = [title,
             f"Top point {knob}={_num(top.get(knob))}: {top['accuracy']:.2f}% "
             f"({_pm(top.get('se', float('nan')))}) at {top['avg_tokens']:,.0f} tokens.",
             f"Curve ({knob}->acc±se/tokens): {curve_text(best['curve'], knob)}"]
    if best["round"] and not also_latest:
        lines.append(_code_of(entries, best["round"]))
    return lines


def _latest_block(rec: dict[str, Any], with_head: bool, with_code: bool) -> list[str]:
    lines = [f"## Latest: round {rec['round']}: {rec.get('status')}"] if with_head else []
    if rec.get("status") != "ok":
        lines.append(f"{rec.get('failure_kind')}: {rec.get('reason')}")
        if with_code and rec.get("code"):
            lines.append(f"```python\n{rec['code']}```")
        return lines
    m = rec["metrics"]
    knob = m.get("knob", "beta")
    b = m["best"]
    if with_head:
        lines += [
            f"Score {m.get('score', 0):.2f}; top point {knob}={_num(b.get(knob))}: "
            f"{b['accuracy']:.2f}% ({_pm(b.get('se', float('nan')))}) at "
            f"{b['avg_tokens']:,.0f} tokens.",
            f"Curve ({knob}->acc±se/tokens): {curve_text(m['curve'], knob)}"]
    lines += _focus_table(m["curve"], knob)
    for cmp in m.get("comparisons") or []:
        lines += _comparison_lines(cmp)
    lines += _diagnostics_table(m.get("diagnostics") or {})
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
        against = f" against {t['ref_name']}" if t.get("ref_name") else ""
        lines.append(f"Trace ({t.get('why', 'sample')}{against}; {t.get('band', '')} point) "
                     f"{t['store']} question {t['question']} seed {t.get('seed', 0)} "
                     f"{knob}={_num(t.get('beta'))} (answer {t['verdict']}): {t['text']}")
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
    verdicts = "; ".join(f"{c.get('verdict')} vs {c.get('name')}"
                         for c in m.get("comparisons") or [])
    return (f"- round {rec['round']}: score {m.get('score', 0):.2f}, top {knob}="
            f"{_num(b.get(knob))} {b['accuracy']:.2f}%/{b['avg_tokens'] / 1000:.1f}k"
            + (f" ({verdicts})" if verdicts else ""))


def _seeds_block(rec: dict[str, Any], full: bool) -> list[str]:
    lines = ["## Seed controllers (round 0, search split)"]
    for e in rec.get("seeds", []):
        if not e.get("shown", True):
            continue
        if e.get("status") != "ok":
            lines.append(f"- {e['name']}: unavailable")
            continue
        knob = e["knob"]
        score = f"score {e['score']:.2f}; " if "score" in e else ""
        lines.append(f"- {e['name']} ({score}{knob}->acc±se/tokens): "
                     f"{curve_text(e['curve'], knob)}")
        if full:
            betas = e.get("betas") or {}
            grid = "" if knob == "beta" else " (" + ", ".join(
                f"{knob}={k} at beta={v:g}" for k, v in betas.items()) + ")"
            lines.append(f"Its candidate file{grid}:\n```python\n{seed_source(e['name'])}```")
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
    grid = grid_of(seeds[0]) if seeds else None
    head = [f"Round {round_no} of {total_rounds}. {setting}",
            *([] if proposal is None else [
                f"Proposal {proposal[0] + 1} of {proposal[1]} this round (the other proposals "
                "see the same history; make yours differ)."]),
            "Propose a NEW controller whose curve beats the best so far along the whole curve "
            "(every budget band, not only the top point), learning from the comparisons, "
            "diagnostics and traces below.",
            objective_text(grid, seeds[0].get("seeds", []) if seeds else []), facts,
            "Diagnostics: " + "; ".join(f"{k}: {v}" for k, v in DIAGNOSTICS.items()) + ".",
            "Accuracy figures carry a standard error (±) from seed-to-seed variation within "
            "each question. Comparisons between two curves: " + VERDICT_RULE + " Their SE is "
            "paired on the same episodes and clustered by question (it counts how much the "
            "difference varies between questions, not only between seeds).", TRACE_LEGEND]
    same = latest is not None and best is not None and latest["round"] == best["round"]
    blocks = _best_block(best, entries, also_latest=same)
    if latest is not None:
        blocks += _latest_block(latest, with_head=not same, with_code=True)
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
