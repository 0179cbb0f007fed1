"""Accuracy vs tokens (log x) per (model, benchmark), one curve per controller, Pareto frontier
marked: the style of the AutoTTS paper's Figure 3; trained RL policies (``rl:PATH`` rows) as
curves over their training cost weight. Needs matplotlib (the ``plot`` extra)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tts_gym.reporting.pareto import pareto_mask

STYLE = {
    "sc": ("SC@n", "#7f7f7f", "s"),
    "asc": ("ASC", "#1f77b4", "o"),
    "esc": ("ESC", "#2ca02c", "^"),
    "parallel-probe": ("Parallel-Probe", "#ff7f0e", "D"),
    "cmc": ("CMC (discovered)", "#d62728", "*"),
}
"""controller -> (legend label, colour, marker)."""
RL_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
"""Colours of RL curves, in order of appearance."""


def curve_of(row: dict[str, Any]) -> str:
    """The curve a row belongs to: its controller, or for an ``rl:PATH`` row ``"RL " + label``
    (the ``--rl NAME``), so several models trained at different cost weights form one curve.

    >>> curve_of({"controller": "rl:runs/a/model.zip", "label": "mppo"})
    'RL mppo'
    """
    controller = str(row["controller"])
    if controller.startswith("rl:"):
        return "RL " + str(row.get("label") or controller[3:])
    return controller


def curves(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows of one (model, benchmark) by curve (first-seen order), each sorted by tokens."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(curve_of(r), []).append(r)
    return {k: sorted(v, key=lambda r: float(r["avg_tokens"])) for k, v in out.items()}


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("tts-gym plot needs matplotlib: pip install 'tts-gym[plot]'.") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_group(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str], title: str) -> Path:
    """One figure: every controller's curve over its budget, the Pareto frontier marked.

    Args:
        rows: Sweep rows of ONE (model, benchmark): ``controller``, ``avg_tokens``,
            ``accuracy``, optionally ``budget`` and ``label`` (see :func:`curves`; RL points
            are annotated with their cost weight).
        path: PNG to write.
        title: Figure title.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.2), dpi=110)
    n_rl = 0
    for name, pts in curves(rows).items():
        if str(pts[0]["controller"]).startswith("rl:"):
            label, colour, marker = name, RL_COLOURS[n_rl % len(RL_COLOURS)], "P"
            n_rl += 1
            for r in pts:
                if r.get("budget") not in (None, ""):
                    ax.annotate(
                        f"{float(r['budget']):g}",
                        (float(r["avg_tokens"]), float(r["accuracy"])),
                        textcoords="offset points",
                        xytext=(4, -10),
                        fontsize=6,
                        color=colour,
                    )
        else:
            label, colour, marker = STYLE.get(name, (name, None, "o"))
        ax.plot(
            [float(r["avg_tokens"]) for r in pts],
            [float(r["accuracy"]) for r in pts],
            marker=marker,
            color=colour,
            label=label,
            linewidth=2.2 if name == "cmc" else 1.4,
            markersize=9 if marker == "*" else 5.5,
            zorder=3 if name == "cmc" else 2,
        )
    tokens = [float(r["avg_tokens"]) for r in rows]
    acc = [float(r["accuracy"]) for r in rows]
    mask = pareto_mask(tokens, acc)
    front = sorted((t, a) for t, a, m in zip(tokens, acc, mask, strict=True) if m)
    if front:
        ax.step(
            [t for t, _ in front],
            [a for _, a in front],
            where="post",
            color="black",
            linestyle="--",
            linewidth=0.9,
            alpha=0.7,
            label="Pareto frontier",
            zorder=1,
        )
        ax.scatter(
            [t for t, _ in front],
            [a for _, a in front],
            s=90,
            facecolors="none",
            edgecolors="black",
            linewidths=1.0,
            zorder=4,
        )
    ax.set_xscale("log")
    ax.set_xlabel("average tokens per question (log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    ax.legend(loc="best", fontsize=8, frameon=True, framealpha=0.85)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_sweep(rows: Sequence[dict[str, Any]], out_dir: str | os.PathLike[str]) -> list[Path]:
    """One PNG per (model, benchmark): ``<out_dir>/<model>_<benchmark>.png``.

    Returns:
        The written paths, sorted.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((str(r["model"]), str(r["benchmark"])), []).append(r)
    if not groups:
        raise ValueError("No sweep rows to plot.")
    out = []
    for (model, bench), group in sorted(groups.items()):
        split = group[0].get("split", "")
        title = f"{model} · {bench.upper()}" + (" (held out)" if split == "heldout" else "")
        out.append(plot_group(group, Path(out_dir) / f"{model}_{bench}.png", title))
    return out
