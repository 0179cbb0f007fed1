"""How a result was made: one dict written into every JSON output and report.

:func:`provenance` gives the package version, the git commit of the checkout the package runs
from (``git rev-parse HEAD`` with a short timeout; None when not a checkout, without git, or on
any failure: it never raises), the Python version, the stores' SHA-256 digests, the seeds, the
cost mode and the executor. ``eval --json``, ``sweep --json``, ``table --json``, ``compare
--json`` and the discovery report's ``summary.json`` carry it under ``"provenance"``.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

GIT_TIMEOUT_S = 2.0
"""Seconds ``git rev-parse`` may take before the commit is recorded as unknown (None)."""


@functools.cache
def git_commit() -> str | None:
    """The commit of the checkout this package is imported from, or None (an installed wheel,
    no ``git``, a timeout, any error)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():  # a directory, or a file in a worktree
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
            timeout=GIT_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or len(commit) != 40:
        return None
    return commit


def provenance(
    *,
    stores: Iterable[Any] = (),
    seeds: int | Sequence[int] | None = None,
    cost_mode: str | None = "reference",
    executor: str | None = "local",
    **extra: Any,
) -> dict[str, Any]:
    """The provenance record of a result.

    Args:
        stores: The stores scored (objects with ``name`` and ``sha256``, e.g.
            :class:`~tts_gym.store.ReplayStore`), or ``(name, sha256)`` pairs.
        seeds: Shuffle seeds: a count (``0..n-1``, the protocol) or the list.
        cost_mode: ``"reference"`` or ``"exact"`` (None: not applicable).
        executor: ``"local"`` or ``"ray"``.
        **extra: More fields (e.g. ``sandboxed``), added as given.

    Returns:
        ``{"package", "version", "git_commit", "python", "stores": {name: sha256}, "seeds",
        "cost_mode", "executor", **extra}``; ``seeds`` as ``{"count": n, "first": 0}`` for a
        count or the explicit list.
    """
    from tts_gym import __version__

    digests: dict[str, str] = {}
    for s in stores:
        name, sha = (s if isinstance(s, tuple) else (s.name, s.sha256))
        digests[str(name)] = str(sha)
    if seeds is None or isinstance(seeds, int):
        seed_info: Any = None if seeds is None else {"count": int(seeds), "first": 0}
    else:
        seed_info = [int(x) for x in seeds]
    return {
        "package": "tts-gym",
        "version": __version__,
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "stores": dict(sorted(digests.items())),
        "seeds": seed_info,
        "cost_mode": cost_mode,
        "executor": executor,
        **extra,
    }


def provenance_lines(record: dict[str, Any]) -> list[str]:
    """A :func:`provenance` record as a markdown section (for reports).

    >>> provenance_lines({"version": "0.1.0", "git_commit": None, "python": "3.11.7",
    ...                   "stores": {"M/b": "ab" * 32}, "seeds": {"count": 4, "first": 0},
    ...                   "cost_mode": "reference", "executor": "local"})[2][:61]
    'tts-gym 0.1.0 (not a git checkout), Python 3.11.7; seeds 0..3'
    """
    commit = record.get("git_commit")
    seeds = record.get("seeds")
    if isinstance(seeds, dict):
        seed_text = f"seeds 0..{int(seeds['count']) - 1}"
    elif seeds:
        seed_text = f"seeds {', '.join(map(str, seeds[:10]))}" + (" ..." if len(seeds) > 10 else "")
    else:
        seed_text = "seeds not recorded"
    lines = ["## How this was made", "",
             f"tts-gym {record.get('version')} "
             f"({'commit ' + commit if commit else 'not a git checkout'}), Python "
             f"{record.get('python')}; {seed_text}; cost mode {record.get('cost_mode')}; "
             f"executor {record.get('executor')}.", ""]
    lines += [f"- store `{name}` sha256 `{sha}`" for name, sha in record.get("stores", {}).items()]
    return [*lines, ""]
