"""Fidelity of the synthetic model: controllers on a real store vs its calibrated twin.

The twin is drawn from the parameters calibrated on the real store (or a shipped preset) with
more questions than the real store (3,000 in ``tts-gym fidelity``) so that its numbers estimate
the *model's* expectation rather than one 30-question draw; it is scored with fewer shuffle seeds
(its many questions already average the branch orders out).

Targets (issue 6): SC@64 accuracy within 5 points, and the token saving of CMC beta=0.5 vs SC@64
within 10 points, of the real store's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tts_gym.controller import available_controllers, make_controller
from tts_gym.evaluation import evaluate
from tts_gym.reporting.table import TABLE_ROWS
from tts_gym.store import ReplayStore

PUBLISHED = TABLE_ROWS
"""The published controllers' headline configurations: (label, registry name, params)."""

SC_TARGET_POINTS = 5.0
SAVING_TARGET_POINTS = 10.0


def registered_controllers(
    specs: tuple[tuple[str, str, dict[str, Any]], ...] = PUBLISHED,
) -> list[tuple[str, Any]]:
    """(label, controller) for every spec whose controller is registered and importable."""
    names = available_controllers()
    out = []
    for label, name, params in specs:
        if name not in names:
            continue
        try:
            out.append((label, make_controller(name, params)))
        except (ImportError, ValueError, AttributeError):
            continue
    return out


@dataclass
class Row:
    """One controller's numbers on the real store and on the twin."""

    label: str
    real_accuracy: float | None
    real_tokens: float | None
    twin_accuracy: float
    twin_tokens: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable numbers, with differences (twin − real)."""
        d: dict[str, Any] = {
            "controller": self.label,
            "real_accuracy": self.real_accuracy,
            "real_tokens": self.real_tokens,
            "twin_accuracy": self.twin_accuracy,
            "twin_tokens": self.twin_tokens,
        }
        if self.real_accuracy is not None and self.real_tokens is not None:
            d["accuracy_diff"] = round(self.twin_accuracy - self.real_accuracy, 2)
            d["tokens_ratio"] = round(self.twin_tokens / max(self.real_tokens, 1.0), 3)
        return d


def compare(
    real: ReplayStore | None,
    twin: ReplayStore,
    *,
    real_seeds: int = 100,
    twin_seeds: int = 3,
    controllers: list[tuple[str, Any]] | None = None,
) -> dict[str, Any]:
    """Score every controller on ``real`` (if given) and ``twin``; compute the two targets.

    Returns:
        ``{"rows": [...], "sc64_accuracy_diff": ..., "cmc_saving_real": ...,
        "cmc_saving_twin": ..., "saving_diff": ..., "targets_met": {...}}`` (percent points;
        a saving is ``100 × (1 − tokens(CMC β=0.5) / tokens(SC@64))``).
    """
    controllers = controllers if controllers is not None else registered_controllers()
    rows = []
    for label, ctrl in controllers:
        t = evaluate(ctrl, twin, twin_seeds)
        r = evaluate(ctrl, real, real_seeds) if real is not None else None
        rows.append(
            Row(
                label,
                r.accuracy if r else None,
                round(r.avg_tokens, 1) if r else None,
                t.accuracy,
                round(t.avg_tokens, 1),
            )
        )
    by = {row.label: row for row in rows}
    out: dict[str, Any] = {"rows": [row.as_dict() for row in rows]}
    sc, cmc = by.get("SC@64"), by.get("CMC β=0.5")
    if sc is not None and cmc is not None:
        out["cmc_saving_twin"] = round(100 * (1 - cmc.twin_tokens / sc.twin_tokens), 2)
        if real is not None and cmc.real_tokens is not None and sc.real_tokens is not None:
            out["cmc_saving_real"] = round(100 * (1 - cmc.real_tokens / sc.real_tokens), 2)
            out["saving_diff"] = round(out["cmc_saving_twin"] - out["cmc_saving_real"], 2)
    if sc is not None and real is not None and sc.real_accuracy is not None:
        out["sc64_accuracy_diff"] = round(sc.twin_accuracy - sc.real_accuracy, 2)
    met = {}
    if "sc64_accuracy_diff" in out:
        met["sc64_within_5_points"] = abs(out["sc64_accuracy_diff"]) <= SC_TARGET_POINTS
    if "saving_diff" in out:
        met["cmc_saving_within_10_points"] = abs(out["saving_diff"]) <= SAVING_TARGET_POINTS
    out["targets_met"] = met
    return out


def format_table(report: dict[str, Any], title: str = "") -> str:
    """A fixed-width text table of a :func:`compare` report."""
    lines = [title] if title else []
    lines.append(
        f"{'controller':<16}{'real acc':>9}{'twin acc':>9}{'Δacc':>7}"
        f"{'real tok':>11}{'twin tok':>11}{'ratio':>7}"
    )
    for r in report["rows"]:
        real_acc = "—" if r["real_accuracy"] is None else f"{r['real_accuracy']:.2f}"
        real_tok = "—" if r["real_tokens"] is None else f"{r['real_tokens'] / 1000:.1f}k"
        lines.append(
            f"{r['controller']:<16}{real_acc:>9}{r['twin_accuracy']:>9.2f}"
            f"{r.get('accuracy_diff', float('nan')):>+7.2f}{real_tok:>11}"
            f"{r['twin_tokens'] / 1000:>10.1f}k{r.get('tokens_ratio', float('nan')):>7.2f}"
        )
    if "saving_diff" in report:
        lines.append(
            f"CMC β=0.5 saving vs SC@64: real {report['cmc_saving_real']:.1f} %, twin "
            f"{report['cmc_saving_twin']:.1f} % (Δ {report['saving_diff']:+.1f} points)"
        )
    for k, v in report.get("targets_met", {}).items():
        lines.append(f"target {k}: {'met' if v else 'MISSED'}")
    return "\n".join(lines)
