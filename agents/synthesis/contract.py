"""The candidate contract of controller discovery (AutoTTS, 2026).

A candidate is ONE Python file defining ``class Controller`` with ``__init__(self, beta)``,
``schedule(self, beta) -> dict`` (every internal hyper-parameter as a deterministic function of
beta) and ``solve(self, question) -> str | None`` using only the question primitives. This module
holds the rules the lint (:mod:`agents.synthesis.validate`) checks and the prompt states. The
boundary itself is the operating system (:mod:`tts_gym.sandbox`): what the lint misses still
runs in an isolated process that holds nothing it has not paid for.
"""

from __future__ import annotations

ALLOWED_IMPORTS: frozenset[str] = frozenset(
    {
        "math",
        "statistics",
        "collections",
        "itertools",
        "functools",
        "heapq",
        "bisect",
        "typing",
        "dataclasses",
        "random",
        "numpy",
        "tts_gym.candidate",
    }
)
"""Modules a candidate may import (``tts_gym.candidate`` by its full name only)."""

FORBIDDEN_NAMES: frozenset[str] = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "__import__",
        "open",
        "globals",
        "locals",
        "vars",
        "dir",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "breakpoint",
        "input",
        "exit",
        "quit",
        "help",
        "memoryview",
    }
)
"""Names a candidate may not mention (I/O, dynamic code, string-built attribute access)."""

FORBIDDEN_ATTRS: frozenset[str] = frozenset(
    {
        # string-built attribute access through format strings
        "format",
        "format_map",
        # class / frame / code introspection (no underscore, still a way out)
        "mro",
        "f_back",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_code",
        "f_trace",
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "ag_frame",
        "ag_code",
        "tb_frame",
        "tb_next",
        "co_code",
        "co_consts",
        "get_type_hints",
        "ForwardRef",
        # numpy I/O, raw memory and escape hatches
        "load",
        "loads",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "loadtxt",
        "genfromtxt",
        "fromfile",
        "fromregex",
        "tofile",
        "dump",
        "dumps",
        "memmap",
        "DataSource",
        "ctypes",
        "ctypeslib",
        "as_strided",
        "stride_tricks",
        "lib",
        "f2py",
        "distutils",
        "testing",
        "os",
        "sys",
    }
)
"""Attribute (and ``from x import``) names a candidate may not use."""

SAFE_BUILTINS: tuple[str, ...] = (
    "abs",
    "all",
    "any",
    "bool",
    "callable",
    "chr",
    "classmethod",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "frozenset",
    "hash",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "object",
    "ord",
    "pow",
    "property",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "staticmethod",
    "str",
    "sum",
    "super",
    "tuple",
    "type",
    "zip",
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "Exception",
    "IndexError",
    "KeyError",
    "LookupError",
    "NotImplementedError",
    "OverflowError",
    "RuntimeError",
    "StopIteration",
    "TypeError",
    "ValueError",
    "ZeroDivisionError",
    "NotImplemented",
    "Ellipsis",
)
"""Builtins the sandbox gives candidate code (``print`` is a no-op; nothing else exists)."""

MAX_BRANCHES: int = 64
"""The branch ceiling every candidate must respect (as for the baselines)."""

QUESTION_API = """\
The question handle (the ONLY way to see the problem; answers are opaque strings):
- question.probe_new() -> (answer, slot, finished) | None
    Open the next unread branch (reasoning trace) and advance it by one probe interval
    (probe_freq tokens); returns its current intermediate answer, its slot id and whether the
    branch has finished. None when no branch is left (branches are capped at 64 per question).
- question.probe_more(slot) -> (answer, finished)
    Advance an opened, unfinished, unpruned branch by one more probe interval (raises
    ValueError otherwise). Once finished, the answer is the branch's final answer.
- question.full_read() -> answer | None
    Open the next branch and read it to the end at once (charged its full token count).
- question.prune(slot)
    Abandon an opened, unfinished branch (the paper's PRUNE; free). It can no longer be read.
- question.note(event, **fields)
    Record a decision in the execution trace (fields: JSON scalars or short lists).
- question.tokens_used, question.branches_left, question.n_opened (read-only ints)
Helpers (pure functions, the ones the published controllers use):
    from tts_gym.candidate import majority, top2, beta_conf
    majority(answers) -> most frequent answer (ties: first seen), None if empty
    top2(answers) -> (winner, c1, c2): winner's count and the best other count
    beta_conf(c1, c2) -> 1 - BetaCDF(0.5; c1 + 1, c2 + 1), 0.0 if c1 == 0 (counts <= 127)
Cost: every probe interval costs probe_freq tokens; a branch that ends earlier costs what it
generated; full_read costs the whole branch. Answers of different branches agree more often
when they are right; a probe answer can change until the branch finishes. Answer with a string
some primitive returned in THIS episode: any other answer is scored wrong."""

CONSTRAINTS = """\
Constraints (a candidate that breaks one is rejected before it runs):
1. Return ONE ```python code block holding the FULL file (no diffs). It defines
   `class Controller` with `__init__(self, beta)`, `schedule(self, beta) -> dict` and
   `solve(self, question) -> str | None`.
2. `beta` in [0, 1] is the ONLY knob. Every internal hyper-parameter is a deterministic, smooth,
   monotone function of beta computed by `schedule(beta)` (a JSON-serialisable dict). Larger
   beta spends more tokens; beta = 1 is the conservative, near-full-budget end.
3. At most 64 branches per question. No peeking at gold answers or unrevealed probes, no
   hard-coded answers; each call of solve() sees one question and keeps no memory across calls.
4. Imports: only math, statistics, collections, itertools, functools, heapq, bisect, typing,
   dataclasses, random, numpy and `from tts_gym.candidate import ...`. No I/O, no
   eval/exec/compile/open/getattr/setattr/globals/vars, no attribute whose name starts with an
   underscore (write `self.count`, not `self._count`), no str.format (use f-strings), no string
   literal equal to a known answer (no hard-coded answers).
5. Call question.note(...) for every decision (spawn, probe, prune/abandon, stop) with the
   statistics that drove it; keep it compact.
6. Adaptive in both width (how many branches) and depth (how far each is read); meaningfully
   different from the seed controllers."""

OBJECTIVE = """\
Objective: the whole scaling curve, not one point. The sweep over beta in [0, 1] traces
accuracy against tokens: low beta cheap, high beta accurate. A candidate's SCORE is the mean,
over 50 budgets log-spaced across the seed controllers' token range, of the best accuracy its
curve reaches within each budget (0 below its cheapest point): accuracy first, fewer tokens
second, at every budget. The best candidates are re-scored with more seeds before one is
chosen; its top point (highest accuracy, ties to fewer tokens) is what the paper reports."""

CONSTRAINTS_NO_BETA = """\
Constraints (a candidate that breaks one is rejected before it runs):
1. Return ONE ```python code block holding the FULL file (no diffs). It defines a module-level
   `SETTINGS = [{...}, ...]`: a literal list of 1 to 11 dicts of numbers, booleans or strings
   (the grid of settings the loop sweeps; cheap to expensive), and `class Controller` with
   `__init__(self, setting)` (one dict of SETTINGS) and `solve(self, question) -> str | None`.
2. At most 64 branches per question. No peeking at gold answers or unrevealed probes, no
   hard-coded answers; each call of solve() sees one question.
3. Imports: only math, statistics, collections, itertools, functools, heapq, bisect, typing,
   dataclasses, random, numpy and `from tts_gym.candidate import ...`. No I/O, no
   eval/exec/compile/open/getattr/setattr/globals/vars, no attribute whose name starts with an
   underscore, no str.format (use f-strings), no string literal equal to a known answer.
4. Call question.note(...) for every decision (spawn, probe, prune/abandon, stop) with the
   statistics that drove it; keep it compact."""
