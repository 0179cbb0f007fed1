"""Turn a finished journal into the store, its raw-answer sidecar and its metadata.

Three files beside each other in ``DIR/<model>/``::

    <benchmark>.json       the store (AutoTTS JSON, canonical answer labels)
    <benchmark>.raw.json   per question: the raw answers and their labels, per branch its raw
                           probe answers, raw final, how the final was found, truncation
    <benchmark>.meta.json  how the store was made (model, servers, sampling, protocol, counts)

The store is written to a temporary file, validated with tts-gym's own loader, then the sidecar
and the metadata (which records the store's SHA-256) are written, and the store is renamed into
place last: a crash leaves either no store or a complete one that its metadata vouches for.
Memory: one question's branch records at a time (the journal is read through an offset index).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tts_gym.collect.canonical import canonical_labels
from tts_gym.collect.config import CollectConfig
from tts_gym.collect.errors import CollectError
from tts_gym.collect.extract import cut_answer
from tts_gym.collect.journal import Journal
from tts_gym.collect.meta import META_FORMAT, RAW_FORMAT, meta_path, raw_path
from tts_gym.collect.problems import Problem
from tts_gym.io import _umask, write_json_atomic


@dataclass
class Counts:
    """Accounting over every journaled request (goes to the metadata)."""

    generated_tokens: int = 0
    probe_generated_tokens: int = 0
    prompt_tokens: int = 0
    requests: int = 0
    failed_attempts: int = 0
    truncated_branches: int = 0
    final_by_probe: int = 0
    unclosed_probes: int = 0
    probes: int = 0
    servers: Counter[int] = field(default_factory=Counter)
    exact_checked: int = 0
    exact_matching: int = 0

    def add(self, rec: dict[str, Any]) -> None:
        """Account one journal record."""
        kind = rec.get("kind")
        if kind in ("gen", "probe"):
            self.requests += rec["attempts"]
            self.failed_attempts += rec["attempts"] - 1
            self.prompt_tokens += rec["prompt_tokens"]
            self.servers[rec["server"]] += 1
        if rec.get("exact") is not None:  # inexact modes: measured per request
            self.exact_checked += 1
            self.exact_matching += bool(rec["exact"])
        if kind == "gen":
            self.generated_tokens += rec["generated"]
        elif kind == "probe":
            self.probe_generated_tokens += rec["completion_tokens"]
            self.probes += 1
            self.unclosed_probes += not rec["closed"]
        elif kind == "branch":
            self.truncated_branches += rec["truncated"]
            self.final_by_probe += rec["final_source"] == "probe"


def _index(journal: Journal, n_questions: int) -> tuple[list[list[int]], Counts]:
    offsets: list[list[int]] = [[] for _ in range(n_questions)]
    counts = Counts()
    for offset, rec in journal.records():
        counts.add(rec)
        if rec.get("kind") == "branch":
            offsets[rec["q"]].append(offset)
    return offsets, counts


def _branches(fh: Any, offsets: list[int]) -> list[dict[str, Any]]:
    out = []
    for off in offsets:
        fh.seek(off)
        out.append(json.loads(fh.readline()))
    return sorted(out, key=lambda r: r["b"])


def _question(problem: Problem, probe_freq: int, recs: list[dict[str, Any]]
              ) -> tuple[dict[str, Any], dict[str, Any], int]:
    for r in recs:  # the store format bounds answer strings: cut (the raw sidecar says so)
        r["probes"] = [cut_answer(a) for a in r["probes"]]
        r["final"] = cut_answer(r["final"])
    counts: Counter[str] = Counter()
    for r in recs:
        counts.update(r["probes"])
        counts[r["final"]] += 1
    labels = canonical_labels(counts, problem.answer)
    each = [[[labels[p] for p in r["probes"]], r["tokens"], labels[r["final"]]] for r in recs]
    item = {
        "question": problem.problem,
        "gold_answer": problem.answer,
        "probe_freq": probe_freq,
        "each_branch": each,
        "final_answers_trace": [b[2] for b in each],
    }
    raw = {
        "id": problem.id,
        "gold": problem.answer,
        "labels": dict(sorted(labels.items())),
        "branches": [
            {
                "probes": r["probes"],
                "final": r["final"],
                "final_source": r["final_source"],
                "truncated": r["truncated"],
                "finish_reason": r["finish"],
                "generated_tokens": r["tokens"],
                "thinking_tokens": r["thinking"],
                "unclosed_probe_outputs": r["unclosed"],
            }
            for r in recs
        ],
    }
    return item, raw, len(set(labels.values()))


def _temp_beside(path: Path) -> tuple[int, str]:
    """A temporary file in ``path``'s folder with the usual ``open()`` permissions."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def build(
    journal: Journal,
    problems: Sequence[Problem],
    config: CollectConfig,
    store: Path,
    run_info: dict[str, Any],
) -> dict[str, Any]:
    """Write the store, the raw sidecar and the metadata from a complete journal.

    Args:
        journal: The finished journal (every branch has its "branch" record).
        problems: The problems, in store order.
        config: The run's settings.
        store: Final path ``DIR/<model>/<benchmark>.json``.
        run_info: Extra metadata (servers, versions, token-mode details, start time).

    Returns:
        The metadata written.

    Raises:
        CollectError: A branch is missing, or the built store fails tts-gym's validation.
    """
    from tts_gym.store import StoreFormatError, load_store_file

    offsets, counts = _index(journal, len(problems))
    for q, offs in enumerate(offsets):
        if len(offs) != config.branches:
            raise CollectError(
                f"The journal holds {len(offs)} of {config.branches} branches of question "
                f"{problems[q].id!r}; rerun the same command to finish them."
            )
    store.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = _temp_beside(store)
    n_labels = n_raw = 0
    try:
        with os.fdopen(fd, "wb") as out, open(journal.path, "rb") as fh, \
                _RawWriter(raw_path(store)) as raw_out:
            for q, problem in enumerate(problems):
                item, raw, labels = _question(problem, config.interval, _branches(fh, offsets[q]))
                n_labels += labels
                n_raw += len(raw["labels"])
                chunk = (b"[\n" if q == 0 else b",\n") + _dump(item)
                out.write(chunk)
                digest.update(chunk)
                raw_out.add(raw)
            out.write(b"\n]\n")
            digest.update(b"\n]\n")
            out.flush()
            os.fsync(out.fileno())
            try:
                load_store_file(tmp, model=config.store_model, benchmark=config.benchmark,
                                use_cache=False)
            except StoreFormatError as exc:
                raise CollectError(f"The collected store does not validate ({exc}).") from None
            raw_out.commit()
        meta = _metadata(config, problems, counts, digest.hexdigest(), store, run_info,
                         n_raw, n_labels)
        write_json_atomic(meta_path(store), meta)
        os.replace(tmp, store)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return meta


class _RawWriter:
    """Streams the raw sidecar to a temporary file; renamed only by :meth:`commit`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd, self.tmp = _temp_beside(path)
        self.fh = os.fdopen(fd, "wb")
        self.fh.write(_dump({"format": RAW_FORMAT})[:-1] + b',"questions":[\n')
        self.first = True
        self.done = False

    def __enter__(self) -> _RawWriter:
        return self

    def add(self, raw: dict[str, Any]) -> None:
        self.fh.write((b"" if self.first else b",\n") + _dump(raw))
        self.first = False

    def commit(self) -> None:
        self.fh.write(b"\n]}\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.replace(self.tmp, self.path)
        self.done = True

    def __exit__(self, *exc: Any) -> None:
        if not self.done:
            self.fh.close()
            Path(self.tmp).unlink(missing_ok=True)


def _metadata(config: CollectConfig, problems: Sequence[Problem], counts: Counts, sha256: str,
              store: Path, run_info: dict[str, Any], n_raw: int, n_labels: int
              ) -> dict[str, Any]:
    from importlib.metadata import version

    import math_verify  # noqa: F401 (its version is recorded)

    from tts_gym import __version__

    settings = config.to_dict()
    settings.pop("template_text")
    return {
        "format": META_FORMAT,
        "collected_by": f"tts-gym collect {__version__}",
        "store": store.name,
        "store_sha256": sha256,
        "raw_answers": raw_path(store).name,
        "model": config.model_name,
        "store_model": config.store_model,
        "benchmark": config.benchmark,
        "split": config.split,
        "questions": len(problems),
        "branches_per_question": config.branches,
        "settings": settings,
        "template_text": config.template_text,
        **run_info,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "counts": {
            "generated_tokens": counts.generated_tokens,
            "probe_generated_tokens": counts.probe_generated_tokens,
            "prompt_tokens_reported": counts.prompt_tokens,
            "requests": counts.requests,
            "failed_attempts": counts.failed_attempts,
            "probes": counts.probes,
            "truncated_branches": counts.truncated_branches,
            "final_by_probe": counts.final_by_probe,
            "unclosed_probes": counts.unclosed_probes,
            "requests_per_server": [
                counts.servers[i] for i in range(max(counts.servers, default=-1) + 1)
            ],
            "distinct_raw_answers": n_raw,
            "answer_labels": n_labels,
        },
        "canonicalisation": f"math-verify {version('math-verify')}",
        "token_exactness": token_exactness(config.token_mode, counts),
    }


def token_exactness(mode: str, counts: Counts) -> dict[str, Any]:
    """How exact the probe cuts are: ``ids`` is exact by construction; ``tokenize`` counts the
    trajectories whose re-tokenised text has as many tokens as were generated; ``text`` counts
    the probes whose prompt the server counted as prompt + p + suffix tokens (a necessary
    condition of an exact cut; None when the server has no tokenizer to compare with)."""
    if mode == "ids":
        return {"mode": mode, "exact": True}
    what = ("trajectories whose re-tokenised text has the generated token count"
            if mode == "tokenize" else "probe prompts of the intended token count")
    n, m = counts.exact_checked, counts.exact_matching
    return {"mode": mode, "exact": False, "measured": what, "checked": n, "matching": m,
            "fraction": round(m / n, 4) if n else None}
