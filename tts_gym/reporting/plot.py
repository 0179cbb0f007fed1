"""Accuracy vs tokens (log x) per (model, benchmark), one curve per controller, Pareto frontier
marked: the style of the AutoTTS paper's Figure 3; trained RL policies (``rl:PATH`` rows) as
curves over their training cost weight. Needs matplotlib (the ``plot`` extra)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
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
OTHER_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79", "#637939",
                 "#843c39")
OTHER_MARKERS = ("v", "X", "p", "h", "<", ">", "d", "8")
"""Colours and markers of other curves (discovered rounds, files), none of :data:`STYLE`'s."""


def other_style(i: int) -> tuple[str, str]:
    """``(colour, marker)`` of the ``i``-th other curve: distinct pairs for the first 64.

    >>> len({other_style(i) for i in range(64)})
    64
    """
    n = len(OTHER_COLOURS)
    return OTHER_COLOURS[i % n], OTHER_MARKERS[(i + i // n) % len(OTHER_MARKERS)]


def curve_of(row: Mapping[str, Any]) -> str:
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
    from tts_gym.extras import require_extra

    require_extra("plot", "Plotting (tts_gym.reporting.plot)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def cost_weight_text(value: float) -> str:
    """A cost weight as a short label.

    >>> cost_weight_text(1e-07), cost_weight_text(2e-08), cost_weight_text(0.0)
    ('1e-7', '2e-8', '0')
    """
    text = f"{value:.3g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"


def wrap_title(title: str, width: int = 48) -> str:
    """Break a long title into lines of at most ``width`` characters (so it is never clipped).

    >>> print(wrap_title("Qwen3-8B on aime24 — SYNTHETIC twin, not real data (100 seeds)"))
    Qwen3-8B on aime24 — SYNTHETIC twin, not real
    data (100 seeds)
    """
    import textwrap

    return "\n".join(
        textwrap.fill(line, width) if len(line) > width else line for line in title.splitlines()
    )


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
    fig = group_figure(rows, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


LABEL_OFFSETS = ((0, 14), (0, -14), (14, 0), (-14, 0), (12, 12), (12, -12), (-12, 12), (-12, -12))
"""Where a cost-weight label may go, in points from its marker, in order of preference."""
MARKER_CLEARANCE = 7.0
"""Pixels around a marker (and its Pareto circle) that a label must leave free."""


def text_box(annotation: Any, renderer: Any) -> Any:
    """Display-space box of an annotation's text alone (``Annotation.get_window_extent``
    includes the leader line, which ends at the point)."""
    from matplotlib.text import Text

    annotation.update_positions(renderer)  # as Annotation.get_window_extent does first
    return Text.get_window_extent(annotation, renderer)


def _boxes_overlap(a: Any, b: Any) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _label_cost_weights(fig: Any, ax: Any, labels: list[tuple[float, float, str, str]]) -> None:
    """Label RL points with their cost weights, clear of every marker and of each other.

    For each label, the first of :data:`LABEL_OFFSETS` whose text box keeps
    :data:`MARKER_CLEARANCE` pixels from every plotted point, stays inside the axes and misses
    the labels already placed (else the one with the fewest conflicts), drawn on a white box
    with a thin leader line. Call after the axes limits and the layout are final.
    """
    renderer = fig.canvas.get_renderer()
    points = [
        ax.transData.transform(xy)
        for line in ax.get_lines()
        for xy in line.get_xydata()
        if line.get_marker() not in (None, "", "None")
    ]
    inside = ax.get_window_extent(renderer)
    placed: list[Any] = []
    for x, y, text, colour in labels:
        best, best_conflicts = None, None
        for dx, dy in LABEL_OFFSETS:
            ann = ax.annotate(
                text,
                (x, y),
                textcoords="offset points",
                xytext=(dx, dy),
                ha="center" if dx == 0 else ("left" if dx > 0 else "right"),
                va="center" if dy == 0 else ("bottom" if dy > 0 else "top"),
                fontsize=7,
                color=colour,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
                arrowprops={"arrowstyle": "-", "color": colour, "lw": 0.6, "shrinkB": 5},
                zorder=5,
            )
            box = text_box(ann, renderer)
            near = box.expanded(1.0, 1.0)
            conflicts = sum(
                near.x0 - MARKER_CLEARANCE < px < near.x1 + MARKER_CLEARANCE
                and near.y0 - MARKER_CLEARANCE < py < near.y1 + MARKER_CLEARANCE
                for px, py in points
            )
            conflicts += sum(_boxes_overlap(box, other) for other in placed)
            conflicts += 0 if inside.contains(box.x0, box.y0) and inside.contains(
                box.x1, box.y1
            ) else 1
            if best_conflicts is None or conflicts < best_conflicts:
                if best is not None:
                    best[0].remove()
                best, best_conflicts = (ann, box), conflicts
            else:
                ann.remove()
            if conflicts == 0:
                break
        assert best is not None  # the first position tried is kept
        placed.append(best[1])


def group_figure(rows: Sequence[dict[str, Any]], title: str) -> Any:
    """The matplotlib figure :func:`plot_group` saves (see there)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.2), dpi=110)
    n_rl = n_other = 0
    labels: list[tuple[float, float, str, str]] = []
    for name, pts in curves(rows).items():
        if str(pts[0]["controller"]).startswith("rl:"):
            label, colour, marker = name, RL_COLOURS[n_rl % len(RL_COLOURS)], "P"
            n_rl += 1
            labels += [
                (float(r["avg_tokens"]), float(r["accuracy"]), cost_weight_text(float(b)), colour)
                for r in pts
                if (b := r.get("budget")) not in (None, "")
            ]
        elif name in STYLE:
            label, colour, marker = STYLE[name]
        else:
            label, (colour, marker) = name, other_style(n_other)
            n_other += 1
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
    ax.set_title(wrap_title(title), fontsize=11)
    ax.margins(y=0.14 if labels else 0.05)  # room for cost-weight labels above the top points
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    ax.legend(loc="best", fontsize=8, frameon=True, framealpha=0.85)
    fig.tight_layout()
    if labels:
        _label_cost_weights(fig, ax, labels)
    return fig


def unplottable(row: dict[str, Any]) -> str | None:
    """Why a row cannot be drawn on the log-token axes (None when it can).

    >>> unplottable({"accuracy": 50.0, "avg_tokens": 0})
    'avg_tokens 0 is not a positive number (the token axis is logarithmic)'
    """
    for key in ("accuracy", "avg_tokens"):
        try:
            value = float(row[key])
        except (KeyError, TypeError, ValueError):
            return f"{key} {row.get(key)!r} is not a number"
        if not math.isfinite(value):
            return f"{key} {value} is not finite"
    if float(row["avg_tokens"]) <= 0:
        return f"avg_tokens {row['avg_tokens']} is not a positive number (the token axis is " \
            "logarithmic)"
    return None


def split_plottable(rows: Sequence[dict[str, Any]]
                    ) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
    """``(rows to draw, [(row, why not)])``: nothing is left out without its reason."""
    kept, dropped = [], []
    for r in rows:
        why = unplottable(r)
        if why is None:
            kept.append(r)
        else:
            dropped.append((r, why))
    return kept, dropped


def plot_sweep(rows: Sequence[dict[str, Any]], out_dir: str | os.PathLike[str]) -> list[Path]:
    """One PNG per (model, benchmark): ``<out_dir>/<model>_<benchmark>.png``.

    Rows that cannot be drawn (:func:`unplottable`) are refused, not skipped: filter them with
    :func:`split_plottable` first and say why.

    Returns:
        The written paths, sorted.

    Raises:
        ValueError: No rows, or a row that cannot be drawn.
    """
    for r in rows:
        why = unplottable(r)
        if why is not None:
            raise ValueError(f"sweep row of {r.get('controller')} on {r.get('model')}/"
                             f"{r.get('benchmark')} cannot be plotted: {why}.")
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
