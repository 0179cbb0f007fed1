"""No answer string of a search store in any prompt: per-question aliases and scrubbing.

What the LLM is shown about answers (traces, a failed round's reason and traceback, notes) never
holds an answer string of a store. Two tools do it:

- :class:`EpisodeAliases`: one episode's answers as aliases ``A``, ``B``, ... in the order the
  episode first revealed them; noise answers (:data:`~agents.synthesis.facts.NOISE_LEGEND`)
  shown as noise (``~ERR``), never aliased; an answer the controller returned without revealing
  it gets the next alias (the trace marks it unrevealed). Text the candidate produced (notes'
  event names, keys and values) is scrubbed: a value equal to an answer label of the episode's
  question becomes its alias, a string equal to a label of another question becomes
  :data:`NEUTRAL`, and labels inside a longer string are replaced (``‹A›`` or :data:`NEUTRAL`).
  A number is aliased when its ``str()`` is an answer the episode revealed or returned (so
  ``int(answer)`` is caught), and left as it is otherwise: on the published stores most small
  integers are some question's answer, and counts would be lost.
- :class:`AnswerLabels`: every answer label of every question of the run's stores (gold or not:
  a scrub or lint rule that singled out gold strings would tell the LLM which strings are gold),
  and :meth:`AnswerLabels.scrub` for free text (exception text, tracebacks).

Labels under 4 characters and numbers are replaced where they stand as whole tokens (no word
character, ``\\w``, touches a side where the label starts or ends with one: ``12`` in ``x=12,``
but not in ``123``); longer labels wherever they occur. Verdicts (right/wrong)
may be shown; answer strings never. An answer a candidate *encodes* (digits spelled out, code
points, a line number chosen by its own control flow) cannot be recognised: the held-out split
is the real guard (docs/safety.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from agents.synthesis.facts import NOISE_LEGEND
from agents.synthesis.trace_steps import ANSWER_OPS, SKIP
from tts_gym.store import ReplayStore

NOISE = frozenset(NOISE_LEGEND)
"""Noise answers: shown as noise (``~ERR``), never aliased, never scrubbed from free text."""

NEUTRAL = "‹answer›"
"""What a label that is not the episode's own becomes in free text."""

_LONG = 200
"""Labels longer than this are matched by a plain substring search (not in the trie pattern)."""


def alias_name(i: int) -> str:
    """The ``i``-th alias: ``A`` .. ``Z``, then ``AA``, ``AB``, ..."""
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(65 + r) + out
    return out


def noise_mark(label: str) -> str:
    """How a noise answer is shown (``~ERR``)."""
    return f"~{label}"


# --- finding labels as whole tokens ------------------------------------------------------------
def _word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _trie_pattern(labels: Iterable[str], guarded: bool) -> str:
    """One regex alternation of ``labels`` as a character trie (longest match first); with
    ``guarded``, each label only as a whole token."""
    trie: dict[str, Any] = {}
    for label in labels:
        node = trie
        for c in label:
            node = node.setdefault(c, {})
        node[""] = True

    def emit(node: dict[str, Any], last: str) -> str:
        alts = [re.escape(c) + emit(child, c) for c, child in sorted(node.items()) if c]
        if "" in node:
            alts.append(r"(?!\w)" if guarded and _word(last) else "")
        if len(alts) == 1:
            return alts[0]
        return "(?:" + "|".join(alts) + ")"

    heads = []
    for c, child in sorted(trie.items()):
        guard = r"(?<!\w)" if guarded and _word(c) else ""
        heads.append(guard + re.escape(c) + emit(child, c))
    return "|".join(heads)


_NUMBER = re.compile(r"[-+]?[\d.,]+")


def token_only(label: str) -> bool:
    """Match ``label`` only as a whole token: it is short (under 4 characters) or a number
    (``12`` inside ``123`` or a token count is not that answer). Other labels are matched
    anywhere (``<answer>x`` still hides nothing)."""
    return len(label) < 4 or bool(_NUMBER.fullmatch(label))


class TokenFinder:
    """Finds a fixed set of labels in text (compiled once): short and numeric labels as whole
    tokens, others anywhere (:func:`token_only`)."""

    def __init__(self, labels: Iterable[str]):
        labels = {x for x in labels if x and x not in NOISE}
        self.long = sorted((x for x in labels if len(x) > _LONG), key=len, reverse=True)
        short = [x for x in labels if len(x) <= _LONG]
        parts = [p for p in (_trie_pattern([x for x in short if not token_only(x)], False),
                             _trie_pattern([x for x in short if token_only(x)], True)) if p]
        self.pattern = re.compile("|".join(parts)) if parts else None

    def sub(self, text: str, repl: Callable[[str], str]) -> str:
        """``text`` with every occurrence of a label replaced by ``repl(label)``."""
        for label in self.long:
            if label in text:
                text = text.replace(label, repl(label))
        if self.pattern is None:
            return text
        return self.pattern.sub(lambda m: repl(m.group(0)), text)


# --- the labels of a run's stores --------------------------------------------------------------
class AnswerLabels:
    """Every answer label of every question of some stores (gold or not; noise excluded).

    Args:
        stores: ``key -> store`` (the run's search stores).
    """

    def __init__(self, stores: Mapping[str, ReplayStore]):
        self.by_question: dict[tuple[str, int], frozenset[str]] = {
            (key, q): frozenset(a for a in s.answers[q] if a not in NOISE)
            for key, s in stores.items() for q in range(s.n_questions)}
        self.all: frozenset[str] = frozenset().union(*self.by_question.values())
        self._finder: TokenFinder | None = None

    @property
    def finder(self) -> TokenFinder:
        """The compiled finder over :attr:`all` (built on first use, shared per label set)."""
        if self._finder is None:
            self._finder = _finder(self.all)
        return self._finder

    def own(self, store: Any, question: Any) -> frozenset[str]:
        """The labels of one question (empty when it is not known)."""
        if not isinstance(store, str) or not isinstance(question, int):
            return frozenset()
        return self.by_question.get((store, question), frozenset())

    def scrub(self, text: str, aliases: EpisodeAliases | None = None) -> str:
        """Free text with every label replaced (short and numeric ones as whole tokens,
        :func:`token_only`): by ``‹alias›`` when ``aliases`` knows it as its episode's, else by
        :data:`NEUTRAL`. A text cut short (ending in ``...``) also loses a trailing fragment
        that starts a label."""
        def repl(label: str) -> str:
            if aliases is not None and aliases.owns(label):
                return f"‹{aliases.alias(label)}›"
            return NEUTRAL

        out = self.finder.sub(text, repl)
        return _scrub_cut_end(out, self.all)


@lru_cache(maxsize=8)
def _finder(labels: frozenset[str]) -> TokenFinder:
    return TokenFinder(labels)


def _scrub_cut_end(text: str, labels: frozenset[str]) -> str:
    """A text truncated as ``...`` may end inside a label: drop such a fragment."""
    if not text.endswith("..."):
        return text
    body = text[:-3]
    m = re.search(r"(\S+)$", body)
    if m is None:
        return text
    frag = m.group(1)
    for start in range(len(frag) - 1):
        if start and _word(frag[start - 1]) and _word(frag[start]):
            continue  # a label starts at a token boundary
        piece = frag[start:]
        if any(x.startswith(piece) and x != piece for x in labels):
            return body[: m.start(1) + start] + NEUTRAL + "..."
    return text


def _scrub_cut_start(text: str, labels: frozenset[str]) -> str:
    """A text whose start was cut off may begin inside a label: drop such a fragment."""
    m = re.match(r"\S+", text)
    if m is None:
        return text
    frag = m.group(0)
    for end in range(len(frag), 1, -1):
        if end < len(frag) and _word(frag[end - 1]) and _word(frag[end]):
            continue  # a label ends at a token boundary
        piece = frag[:end]
        if any(x.endswith(piece) and x != piece for x in labels):
            return NEUTRAL + text[end:]
    return text


# --- one episode -------------------------------------------------------------------------------
class EpisodeAliases:
    """Aliases of one episode's answers (see the module docstring).

    Args:
        own: The answer labels of the episode's question.
        labels: Every label of the run (for other questions' labels in free text); None: only
            ``own`` and the revealed answers are recognised.
    """

    def __init__(self, own: Iterable[str] = (), labels: AnswerLabels | None = None):
        self.own = frozenset(own)
        self.labels = labels
        self.map: dict[str, str] = {}

    def owns(self, label: str) -> bool:
        """``label`` is an answer of this episode (its question's, or revealed in it)."""
        return label in self.map or label in self.own

    def alias(self, answer: str) -> str:
        """The alias of ``answer`` (a new one in order of first use); noise as ``~X``."""
        if answer in NOISE:
            return noise_mark(answer)
        if answer not in self.map:
            self.map[answer] = alias_name(len(self.map))
        return self.map[answer]

    def shown(self, answer: Any) -> str:
        """An answer as shown: its alias, ``~X`` for noise, ``None`` for no answer."""
        return "None" if answer is None else self.alias(str(answer))

    def value(self, v: Any) -> Any:
        """A note value (JSON-like) with every answer label replaced (see the module doc)."""
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, (int, float)):
            text = str(v)  # only answers the episode revealed: counts stay readable
            return self.alias(text) if text in self.map else v
        if isinstance(v, str):
            if v in NOISE:
                return v
            if self.owns(v):
                return self.alias(v)
            if self.labels is not None and v in self.labels.all:
                return NEUTRAL
            return self.text(v)
        if isinstance(v, (list, tuple)):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            return {str(self.value(str(k))): self.value(x) for k, x in v.items()}
        return self.text(str(v))

    def text(self, text: str) -> str:
        """Free text: whole-token labels replaced (``‹A›``, :data:`NEUTRAL`)."""
        if self.labels is not None:
            return self.labels.scrub(text, self)
        finder = TokenFinder(self.own | set(self.map))
        return finder.sub(text, lambda x: f"‹{self.alias(x)}›")


def alias_trace(trace: Sequence[dict[str, Any]], aliases: EpisodeAliases) -> list[dict[str, Any]]:
    """A copy of one episode's trace with every answer aliased and every note scrubbed.

    Revealed answers get aliases in order of first revelation (a ``"..."`` marker of
    :func:`~agents.synthesis.sweep.cap_trace` reveals the answers of its ``revealed`` map, in
    its order); the finish answer gets one too (``"unrevealed"`` stays set when the episode
    never revealed it).
    """
    for ev in trace:  # first the revealed answers, in order, then the finish answer
        if ev.get("op") in ANSWER_OPS and ev.get("answer") is not None:
            aliases.shown(ev["answer"])
        elif ev.get("op") == SKIP:
            for a in ev.get("revealed") or {}:
                aliases.shown(a)
    for ev in trace:
        if ev.get("op") == "finish" and ev.get("answer") is not None:
            aliases.shown(ev["answer"])
    out = []
    for ev in trace:
        op = ev.get("op")
        if op in ANSWER_OPS:
            ev = dict(ev)
            if "answer" in ev:
                ev["answer"] = aliases.shown(ev["answer"])
        elif op == SKIP:
            ev = dict(ev)
            ev["revealed"] = {aliases.shown(a): n for a, n in (ev.get("revealed") or {}).items()}
            ev["slots"] = {s: aliases.shown(a) for s, a in (ev.get("slots") or {}).items()}
        elif op == "finish":
            ev = dict(ev)
            ev["answer"] = aliases.shown(ev.get("answer"))
        elif op == "note":
            ev = {"op": "note", "event": aliases.value(str(ev.get("event", ""))),
                  **{str(aliases.value(str(k))): aliases.value(v) for k, v in ev.items()
                     if k not in ("op", "event")}}
        out.append(ev)
    return out


# --- a failed unit's error ---------------------------------------------------------------------
_FRAME = re.compile(r'\s*File "(?P<file>[^"\n]*)", line (?P<line>\d+), in (?P<name>[A-Za-z_]\w*|'
                    r"<\w+>)")
_CANDIDATE_TEXT_KINDS = frozenset({"exception", "bad_return", "load", "schedule", "watchdog",
                                   "step_limit", "memory", "protocol"})
"""Error kinds whose summary or traceback may hold text of the candidate's making (the others,
timeouts, crashes and isolation failures, are written by the broker)."""


def _code_line(code_lines: Sequence[str], n: int) -> str | None:
    return code_lines[n - 1].strip() if 1 <= n <= len(code_lines) else None


def scrub_traceback(text: str, labels: AnswerLabels, aliases: EpisodeAliases | None,
                    source: str, filename: str) -> str:
    """A candidate's traceback with every answer label scrubbed (:meth:`AnswerLabels.scrub`),
    except the frame headers ``File "<filename>", line N, in name`` and the source line under
    each: those are kept as they are when they match the candidate's own file (line N exists
    and the source line is its text), because line numbers are structural and the code is the
    LLM's own. A header that does not match (forged in an exception message) is scrubbed."""
    code = source.splitlines()
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _FRAME.fullmatch(lines[i])
        if m and m.group("file") == filename:
            want = _code_line(code, int(m.group("line")))
            nxt = lines[i + 1].strip() if i + 1 < len(lines) else None
            if want is not None and nxt == want:
                out += [lines[i], lines[i + 1]]
                i += 2
                continue
        out.append(labels.scrub(lines[i], aliases))
        i += 1
    if out and not _FRAME.fullmatch(lines[0]):  # the child keeps a traceback's END
        out[0] = _scrub_cut_start(out[0], labels.all)
    return "\n".join(out)


def scrub_summary(text: str, labels: AnswerLabels, aliases: EpisodeAliases | None,
                  source: str, filename: str) -> str:
    """A one-line error summary scrubbed, keeping its ``<filename>:<line>: `` prefix when the
    line exists in the candidate's file."""
    prefix = ""
    m = re.match(re.escape(filename) + r":(\d+): ", text)
    if m and _code_line(source.splitlines(), int(m.group(1))) is not None:
        prefix, text = m.group(0), text[m.end():]
    return prefix + labels.scrub(text, aliases)


def scrub_error(error: Mapping[str, Any], labels: AnswerLabels, source: str,
                filename: str) -> dict[str, Any]:
    """A unit error (:class:`~tts_gym.sandbox.broker.UnitResult`) with its ``summary`` and
    ``traceback`` scrubbed. When the failing (store, question) is known, that question's labels
    become aliases in order of appearance in the text (``‹A›``; no trace of the episode is
    kept, so the order is the text's own); every other label becomes :data:`NEUTRAL`. The
    structural fields (kind, store, question, seed, line, beta) are left as they are."""
    err = dict(error)
    if err.get("kind") not in _CANDIDATE_TEXT_KINDS:
        return err
    own = labels.own(err.get("store"), err.get("question"))
    aliases = EpisodeAliases(own, labels) if own else None
    if isinstance(err.get("summary"), str):
        err["summary"] = scrub_summary(err["summary"], labels, aliases, source, filename)
    if isinstance(err.get("traceback"), str):
        err["traceback"] = scrub_traceback(err["traceback"], labels, aliases, source, filename)
    return err
