"""Answer labels that compare correctly: mathematically equivalent answers share one string.

Replay stores score by exact string equality, so equivalence is settled once, at collection time,
per question (and never for the published stores, which stay as they are):

1. **One normal form per distinct string** (order-free): each distinct raw answer is normalised
   once by :func:`normal_form` to a key ``(kind, value)``:

   * ``("choice", "A")`` for a lone letter, optionally wrapped: ``A``, ``(A)``, ``A.``,
     ``\\textbf{A}`` (multiple choice);
   * ``("text", ...)`` for anything with a word in it (two letters in a row outside a LaTeX
     command: ``No``, ``ERR``, ``[Boxed Answer]``, ``\\text{yes}``): whitespace collapsed,
     case folded, outer ``\\text{}``/``$`` wrappers and a final period removed;
   * ``("num", ...)`` for a number math-verify parses (``\\frac{1}{2}``, ``0.5``, ``1/2`` and
     ``\\dfrac12`` all give ``1/2``; decimals are read exactly, so ``0.333`` is not ``1/3``);
   * ``("expr", ...)`` for other expressions math-verify parses (sets, intervals, symbols,
     equations), by sympy's printed form;
   * ``("text", ...)`` again when nothing parses, or for strings over :data:`MAX_PARSE_CHARS`.

   Answers with equal keys form one class. Equivalence tests are not transitive, so classes are
   never built by pairwise merging; keys make the grouping independent of arrival order.
2. **Gold fallback** (bounded): each math class whose key differs from the gold's (skipped
   for two exact rationals, or two numbers more than 0.1 % apart: verify could only say no) is
   checked once against the gold with math-verify's ``verify`` (e.g. ``x=2`` against ``2``), with a
   timeout of :data:`VERIFY_TIMEOUT_S`; a match joins the gold class. Wrong answers are never
   merged with each other this way (at worst two equivalent wrong answers stay two labels).
3. **Labels**: the gold's class gets the gold string exactly as given; every other class gets
   its most frequent raw string (ties: the shorter, then the smaller in code-point order).

Cost: one parse per distinct string (cached across questions) plus at most one ``verify`` per
class; measured in ``benchmarks/bench_collect.py``.
"""

from __future__ import annotations

import ast
import operator
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

MAX_PARSE_CHARS = 200
"""Longer answers are compared as text (bounds the parser's work)."""

PARSE_TIMEOUT_S = 2
"""math-verify's parse timeout per string (seconds; enforced in the main thread)."""

VERIFY_TIMEOUT_S = 2
"""math-verify's verify timeout per class (seconds)."""

_WRAPPERS = re.compile(r"^\\(?:text|textbf|mathrm|mathbf|textit|mbox)\s*\{(.*)\}$", re.S)
_TRAILING_TEXT = re.compile(r"^(.*?\S)\s*\\(?:text|mathrm|mbox)\s*\{[^{}]*\}$", re.S)
_SPACING = re.compile(r"\\[,;:! ]|~|\\(?:displaystyle|left|right)\b")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_WORD = re.compile(r"[A-Za-z]{2,}")
_CHOICE = re.compile(r"^\(?([A-Za-z])[).:]?$")


@dataclass(frozen=True)
class Key:
    """Normal form of an answer string: answers with equal keys are one class."""

    kind: str
    value: str


def _unwrap(s: str) -> str:
    """Strip math delimiters, spacing commands, a final period and whole-string wrappers."""
    s = s.strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
            s = s[len(left) : len(s) - len(right)].strip()
    s = _SPACING.sub(" ", s).strip()
    while True:
        before = s
        s = s.rstrip(".").strip()
        if (m := _WRAPPERS.match(s)) is not None:
            s = m.group(1).strip()
        if s == before:
            return s


def _is_prose(s: str) -> bool:
    return _WORD.search(_COMMAND.sub(" ", s)) is not None


def _text_key(s: str) -> Key:
    return Key("text", " ".join(s.split()).casefold())


_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$|^[+-]?\d+/\d+$")
_PLAIN_FRAC = re.compile(r"^([+-]?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$")


def _fast_number(t: str) -> Key | None:
    """Integers, decimals and digit fractions without the parser (same key as the parser's)."""
    m = _PLAIN_FRAC.match(t)
    if m is not None:
        t = f"{m.group(1)}{m.group(2)}/{m.group(3)}"
    elif _PLAIN_NUMBER.match(t) is None:
        return None
    try:
        value = Fraction(t)
    except (ValueError, ZeroDivisionError):
        return None
    return Key("num", str(value.numerator if value.denominator == 1 else value))


_ARITH_CHARS = re.compile(r"^[0-9+\-*/^(){}. ]+$")
_LOOSE_POWER = re.compile(r"\^(?![0-9{])")  # "2^-1": LaTeX reads it otherwise; leave it
_ARITH_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
              ast.Div: operator.truediv}


def _arith(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Expression):
        return _arith(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Fraction(repr(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _arith(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _arith(node.left), _arith(node.right)
        if isinstance(node.op, ast.Pow):
            if right.denominator != 1 or abs(right) > 64 or abs(left) > 10**6:
                raise ValueError("power out of the fast path's range")
            return left ** int(right)
        op = _ARITH_OPS.get(type(node.op))
        if op is not None:
            return op(left, right)
    raise ValueError("not plain arithmetic")


def _fast_arith(t: str) -> Key | None:
    """Plain arithmetic of numbers (``160 + 3 + 10``, ``2^{10}``, ``(3 + 1) \\cdot 2``),
    evaluated exactly without the LaTeX parser; the key equals the parser's (tested)."""
    t = t.replace("\\cdot", "*").replace("\\times", "*")
    if _ARITH_CHARS.match(t) is None or "**" in t or "//" in t or _LOOSE_POWER.search(t):
        return None
    try:
        value = _arith(ast.parse(t.replace("^", "**").replace("{", "(").replace("}", ")"),
                                 mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError, RecursionError, MemoryError):
        return None
    return Key("num", str(value.numerator if value.denominator == 1 else value))


def _parse_strict(t: str) -> Any | None:
    """The sympy object of the WHOLE string (math-verify's LaTeX normalisation, then
    latex2sympy), evaluated (``sqrt(8)`` -> ``2*sqrt(2)``, ``50\\%`` -> ``1/2``); None if any
    part does not parse. math-verify's own ``parse`` is not used: it extracts the first
    expression it finds (``12\\sqrt{21} + ...`` would read as ``12``)."""
    from latex2sympy2_extended import NormalizationConfig, latex2sympy, normalize_latex

    config = NormalizationConfig(
        basic_latex=True, units=False, malformed_operators=True, nits=True, boxed="all"
    )
    try:
        obj = latex2sympy(
            normalize_latex(t, config=config),
            is_real=True,
            convert_degrees=False,
            normalization_config=None,
        )
        return obj.doit() if hasattr(obj, "doit") else obj
    except Exception:  # the parser raises many kinds of errors on input it cannot read
        return None


def _math_key(obj: Any) -> Key:
    import sympy

    try:
        if isinstance(obj, sympy.Float):
            obj = sympy.Rational(str(obj))
        if getattr(obj, "is_number", False) and not getattr(obj, "free_symbols", True):
            return Key("num", str(obj))
    except (TypeError, ValueError, ArithmeticError):
        pass
    return Key("expr", str(obj))


def _with_timeout(fn: Any, seconds: int) -> Any:
    """``fn`` under math-verify's SIGALRM timeout (main thread only; elsewhere unbounded)."""
    if threading.current_thread() is not threading.main_thread():
        return fn
    from math_verify.utils import timeout

    return timeout(seconds)(fn)


def _parse_key(t: str) -> tuple[Key, Any]:
    obj = _parse_strict(t)
    if obj is None:
        return _text_key(t), None
    return _math_key(obj), obj


@lru_cache(maxsize=1 << 16)
def _normal(s: str) -> tuple[Key, Any]:
    t = _unwrap(s)
    m = _CHOICE.match(t)
    if m is not None:
        return Key("choice", m.group(1).upper()), None
    units = _TRAILING_TEXT.match(t)
    if units is not None and not _is_prose(units.group(1)):
        t = units.group(1)  # "10 \text{ cm}": compare the number, drop the unit
    if not t or _is_prose(t) or len(t) > MAX_PARSE_CHARS:
        return _text_key(t), None
    fast = _fast_number(t) or _fast_arith(t)
    if fast is not None:
        return fast, None
    try:
        return _with_timeout(_parse_key, PARSE_TIMEOUT_S)(t)
    except Exception:  # math-verify's TimeoutException and anything sympy raises late
        return _text_key(t), None


def normal_form(answer: str) -> Key:
    """The normal form of one answer string (see the module docstring).

    >>> [normal_form(s).value for s in (r"\\frac{1}{2}", "0.5", "1/2", r"\\dfrac12")]
    ['1/2', '1/2', '1/2', '1/2']
    >>> normal_form("(B)"), normal_form(r"\\text{Yes.}")
    (Key(kind='choice', value='B'), Key(kind='text', value='yes'))
    """
    return _normal(answer)[0]


def _rational(key: Key) -> bool:
    return key.kind == "num" and re.fullmatch(r"-?\d+(?:/\d+)?", key.value) is not None


def _sympy_of(answer: str) -> Any | None:
    """The parsed object behind a math key (the fast path parses numbers with sympy here)."""
    obj = _normal(answer)[1]
    if obj is None and normal_form(answer).kind == "num":
        import sympy

        return sympy.Rational(normal_form(answer).value)
    return obj


def _far_apart(a: Any, b: Any) -> bool:
    """True when two numbers differ by more than 0.1 % (verify could only say no)."""
    try:
        x, y = complex(a.evalf(20)), complex(b.evalf(20))
    except (AttributeError, TypeError, ValueError, ArithmeticError):
        return False
    return abs(x - y) > 1e-3 * max(1.0, abs(x))


def _verify(gold: Any, obj: Any) -> bool:
    from math_verify import verify

    try:
        return bool(verify(gold, obj, timeout_seconds=VERIFY_TIMEOUT_S))
    except Exception:  # a sympy failure inside verify means "not shown equal"
        return False


def _label(members: Counter[str]) -> str:
    return min(members, key=lambda s: (-members[s], len(s), s))


def canonical_labels(counts: Mapping[str, int], gold: str) -> dict[str, str]:
    """Map each raw answer of one question to its label.

    Args:
        counts: Raw answer string -> number of times it occurs in the question (probes and
            finals); only the set of strings and the counts matter, never their order.
        gold: The gold answer as given in the problem file.

    Returns:
        ``raw -> label`` for every key of ``counts``; the gold class's label is ``gold``.

    >>> labels = canonical_labels({"0.5": 3, r"\\frac{1}{2}": 1, "1/2": 1, "7": 2}, "1/2")
    >>> sorted(set(labels.values())), labels["0.5"]
    (['1/2', '7'], '1/2')
    """
    classes: dict[Key, Counter[str]] = {}
    for raw, n in counts.items():
        classes.setdefault(normal_form(raw), Counter())[raw] += n
    gold_key = normal_form(gold)
    gold_keys = {gold_key}
    if gold_key.kind in ("num", "expr"):
        gold_obj = _sympy_of(gold)
        for key, members in classes.items():
            if key.kind in ("num", "expr") and key not in gold_keys:
                if _rational(key) and _rational(gold_key):
                    continue  # two different exact rationals: verify could only say no
                rep = min(members, key=lambda s: (len(s), s))
                obj = _sympy_of(rep)
                if gold_obj is None or obj is None or _far_apart(gold_obj, obj):
                    continue
                if _verify(gold_obj, obj):
                    gold_keys.add(key)
    labels: dict[str, str] = {}
    for key, members in classes.items():
        label = gold if key in gold_keys else _label(members)
        for raw in members:
            labels[raw] = label
    return labels
