"""The discovery lint: static checks of a candidate before it runs (AST only, nothing executed).

It gives the LLM early, readable feedback; it is not the security boundary (that is the
operating system: :mod:`tts_gym.sandbox`).

Checks, in order: the source parses; it imports only :data:`~agents.synthesis.contract.
ALLOWED_IMPORTS`; it mentions no forbidden name (``eval``, ``open``, ``getattr``...), no
attribute starting with an underscore (dunder, name-mangled or private: the way to
``question._env.store``), no forbidden attribute (``format``, frame and numpy I/O attributes),
writes no attribute or item of an imported module (no state smuggled across episodes), holds no
string literal equal to an answer label of the search stores (gold or not; identifier-shaped
strings such as ``"n"`` excepted: code names its keys that way, and some published answers are
broken extractions like ``n``); and it
defines the contract: ``class Controller`` with ``__init__(self, beta)``,
``schedule(self, beta)`` and ``solve(self, question)``.
"""

from __future__ import annotations

import ast
import threading
from dataclasses import dataclass

from agents.synthesis.contract import (
    ALLOWED_IMPORTS,
    FORBIDDEN_ATTRS,
    FORBIDDEN_NAMES,
)


@dataclass(frozen=True)
class Validation:
    """Outcome of :func:`validate_source`.

    Attributes:
        ok: True when the candidate may run.
        kind: ``"ok"``, ``"syntax_error"``, ``"contract"``, ``"forbidden_import"`` or
            ``"forbidden_code"``.
        reason: One sentence for the history and the next prompt ("line 3: ...").
    """

    ok: bool
    kind: str
    reason: str

    def to_dict(self) -> dict[str, object]:
        """JSON form."""
        return {"ok": self.ok, "kind": self.kind, "reason": self.reason}


OK = Validation(True, "ok", "passed all checks")


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _module_allowed(name: str) -> bool:
    """Listed by its full name, or a submodule of a listed top-level module (not tts_gym's)."""
    top = name.split(".")[0]
    return name in ALLOWED_IMPORTS or (top in ALLOWED_IMPORTS and top != "tts_gym")


def _check_imports(tree: ast.Module) -> tuple[Validation | None, set[str]]:
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if not _module_allowed(a.name):
                    return _bad(
                        "forbidden_import",
                        node,
                        f"import of {a.name!r} is not allowed "
                        f"(allowed: {', '.join(sorted(ALLOWED_IMPORTS))})",
                    ), aliases
                bad = [p for p in a.name.split(".")[1:] if p in FORBIDDEN_ATTRS or p[:1] == "_"]
                if a.name in ALLOWED_IMPORTS:
                    bad = []
                if bad:
                    return _bad(
                        "forbidden_import",
                        node,
                        f"import of {a.name!r} is not allowed (I/O or introspection submodule)",
                    ), aliases
                aliases.add((a.asname or a.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level or not _module_allowed(mod):
                return _bad(
                    "forbidden_import",
                    node,
                    f"import from {mod or '.'!r} is not "
                    f"allowed (allowed: {', '.join(sorted(ALLOWED_IMPORTS))})",
                ), aliases
            for a in node.names:
                parts = [*([] if mod in ALLOWED_IMPORTS else mod.split(".")[1:]), a.name]
                if a.name == "*" or any(p in FORBIDDEN_ATTRS or p[:1] == "_" for p in parts):
                    return _bad(
                        "forbidden_import", node, f"`from {mod} import {a.name}` is not allowed"
                    ), aliases
                aliases.add(a.asname or a.name)
    return None, aliases


def _bad(kind: str, node: ast.AST, msg: str) -> Validation:
    line = getattr(node, "lineno", None)
    return Validation(False, kind, f"line {line}: {msg}" if line else msg)


def _is_super_init(node: ast.Attribute) -> bool:
    v = node.value
    return (
        node.attr == "__init__"
        and isinstance(v, ast.Call)
        and isinstance(v.func, ast.Name)
        and v.func.id == "super"
    )


def _check_code(tree: ast.Module, imported: set[str]) -> Validation | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id in FORBIDDEN_NAMES or node.id.startswith("__"):
                return _bad("forbidden_code", node, f"use of {node.id!r} is not allowed")
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_") and not _is_super_init(node):
                return _bad(
                    "forbidden_code",
                    node,
                    f"attribute {node.attr!r}: names starting "
                    "with an underscore (dunder, private, name-mangled) are not allowed",
                )
            if node.attr in FORBIDDEN_ATTRS:
                return _bad("forbidden_code", node, f"attribute {node.attr!r} is not allowed")
            if isinstance(node.ctx, (ast.Store, ast.Del)) and _root_name(node) in imported:
                return _bad(
                    "forbidden_code",
                    node,
                    "assigning attributes of an imported module is not allowed",
                )
        elif isinstance(node, ast.Subscript):
            if isinstance(node.ctx, (ast.Store, ast.Del)) and _root_name(node) in imported:
                return _bad(
                    "forbidden_code",
                    node,
                    "writing into an imported module's objects is not allowed",
                )
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            if any(n.startswith("__") for n in node.names):
                return _bad("forbidden_code", node, "dunder globals are not allowed")
    return None


def _arg_names(fn: ast.FunctionDef) -> list[str]:
    a = fn.args
    return [x.arg for x in (*a.posonlyargs, *a.args)] + (
        ["*"] if a.vararg or a.kwarg or a.kwonlyargs else []
    )


MAX_SETTINGS = 11
"""Most settings a ``--no-beta`` candidate may declare (the size of the beta sweep)."""


def declared_settings(source: str) -> list[str]:
    """The ``SETTINGS`` grid of a ``--no-beta`` candidate, read from the source without running
    it: a module-level list literal of 1..11 dicts with string keys and number/bool/string
    values. Returns each setting as a JSON text (the sweep's knob values).

    Raises:
        ValueError: No such literal, or not of that shape (the message says what is wrong).
    """
    import json

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError) as exc:
        raise ValueError(f"cannot parse the file: {exc}") from None
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "SETTINGS"):
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, SyntaxError, RecursionError):
                break
            ok = (isinstance(value, list) and 1 <= len(value) <= MAX_SETTINGS and all(
                isinstance(d, dict) and d and all(
                    isinstance(k, str) and isinstance(v, (bool, int, float, str))
                    for k, v in d.items()) for d in value))
            if not ok:
                break
            texts = [json.dumps(d, sort_keys=True) for d in value]
            if len(set(texts)) != len(texts):
                raise ValueError("SETTINGS holds the same setting twice")
            return texts
    raise ValueError(
        f"with --no-beta the file must define `SETTINGS = [{{...}}, ...]` at module level: a "
        f"literal list of 1..{MAX_SETTINGS} dicts of numbers, booleans or strings (the grid the "
        "loop sweeps); each is passed as Controller(setting)")


def _check_contract(tree: ast.Module, no_beta: bool = False) -> Validation | None:
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Controller"]
    if not classes:
        return Validation(False, "contract", "no top-level `class Controller` is defined")
    cls = classes[-1]
    methods = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
    want = {
        "__init__": ["self", "beta"],
        "schedule": ["self", "beta"],
        "solve": ["self", "question"],
    }
    if no_beta:
        want = {"__init__": ["self", "setting"], "solve": ["self", "question"]}
    for name, args in want.items():
        fn = methods.get(name)
        if fn is None:
            return _bad(
                "contract", cls, f"class Controller has no method {name}({', '.join(args)})"
            )
        if _arg_names(fn) != args:
            return _bad(
                "contract",
                fn,
                f"{name} must take exactly ({', '.join(args)}), "
                f"got ({', '.join(_arg_names(fn))})"
                + ("" if no_beta else "; beta is the only knob"),
            )
    return None


NOISE_LABELS = frozenset({"", "ERR", "?", "No", "None", "[Boxed Answer]"})
"""Answer strings that are noise, never treated as hard-coded answers."""


def _literal_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None


def _check_literals(tree: ast.Module, labels: frozenset[str]) -> Validation | None:
    if not labels:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            text = _literal_text(node.value)
            if (text is not None and text in labels and text not in NOISE_LABELS
                    and not text.isidentifier()):
                return _bad(  # the literal is not echoed: the message must not carry answers
                    "forbidden_code", node,
                    "a string literal on this line equals an answer label of the search "
                    "questions (any answer some branch gives, right or wrong); hard-coded "
                    "answers are not allowed: answers must come from the primitives. Rename "
                    "or compute that string",
                )
    return None


_PARSE = threading.Lock()
"""One ``ast.parse`` at a time in this process: CPython before 3.13 keeps the AST constructor's
recursion depth per interpreter, not per thread, so parses in concurrent threads (the sibling
proposals of a population round) can fail with ``SystemError: AST constructor recursion depth
mismatch`` (CPython gh-106905)."""


def validate_source(
    source: str, answer_labels: frozenset[str] = frozenset(), no_beta: bool = False
) -> Validation:
    """Lint a candidate's source without running it (feedback for the LLM, not the boundary).

    Args:
        source: The full Python file.
        answer_labels: Strings a literal may not equal: every answer label of the search
            stores, gold or not, so a refusal says nothing about which are gold
            (:func:`agents.synthesis.loop.answer_labels`; :data:`NOISE_LABELS` and
            identifier-shaped strings are always allowed). The refusal names the line, never
            the literal.
        no_beta: The ``--no-beta`` contract (``__init__(self, setting)``, a ``SETTINGS`` grid).

    Returns:
        :data:`OK` or the first problem found (kind and a one-line reason).

    >>> validate_source("import os").kind
    'forbidden_import'
    >>> validate_source("def f(q): return q._env").reason.split(": ")[0]
    'line 1'
    """
    try:
        with _PARSE:
            tree = ast.parse(source)
    except SyntaxError as exc:
        return Validation(False, "syntax_error", f"line {exc.lineno}: {exc.msg}")
    except (ValueError, RecursionError, MemoryError) as exc:
        return Validation(False, "syntax_error", f"cannot parse: {exc}")
    bad, imported = _check_imports(tree)
    if bad is not None:
        return bad
    bad = _check_code(tree, imported)
    if bad is not None:
        return bad
    bad = _check_literals(tree, answer_labels)
    if bad is not None:
        return bad
    bad = _check_contract(tree, no_beta)
    if bad is None and no_beta:
        try:
            declared_settings(source)
        except ValueError as exc:
            return Validation(False, "contract", str(exc))
    return bad if bad is not None else OK
