"""Static checks of a controller file before any data is loaded (``tts-gym eval file:``).

They turn the common mistakes into one sentence naming the file and line, before a store is
read or a process started: a syntax error, no ``class Controller`` with a ``solve`` method, an
import the sandbox cannot offer. They are conveniences, not the boundary (that is the
operating system, :mod:`tts_gym.sandbox`).
"""

from __future__ import annotations

import ast

from tts_gym.sandbox.child.runtime import CANDIDATE_MODULES


def _available(name: str) -> bool:
    return name in CANDIDATE_MODULES or name.split(".")[0] in {
        m for m in CANDIDATE_MODULES if "." not in m and m != "tts_gym"}


def precheck_source(source: str, filename: str) -> None:
    """Raise ValueError with one sentence if ``source`` cannot run in the sandbox.

    >>> precheck_source("class Controller:\\n    def solve(self, q):\\n        return None\\n", "f")
    >>> precheck_source("import os\\n", "f.py")
    Traceback (most recent call last):
    ...
    ValueError: f.py line 1: `os` cannot be imported in the sandbox (available: bisect, cmath, \
collections, collections.abc, dataclasses, enum, functools, heapq, itertools, math, numpy, \
numpy.linalg, numpy.random, operator, random, statistics, tts_gym.candidate, typing); run with \
--trusted to evaluate your own code with other imports.
    """
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as exc:
        raise ValueError(f"{filename} line {exc.lineno}: syntax error ({exc.msg}); fix the file "
                         "and run again.") from None
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{filename} cannot be parsed ({exc}).") from None
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            if not _available(name):
                raise ValueError(
                    f"{filename} line {getattr(node, 'lineno', '?')}: `{name}` cannot be imported "
                    "in the sandbox "
                    f"(available: {', '.join(sorted(CANDIDATE_MODULES))}); run with --trusted to "
                    "evaluate your own code with other imports.")
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Controller"]
    if not classes:
        raise ValueError(f"{filename} defines no `class Controller`; a controller file must "
                         "define one with solve(self, question).")
    if not any(isinstance(n, ast.FunctionDef) and n.name == "solve" for n in classes[-1].body):
        raise ValueError(f"{filename}: class Controller has no solve(self, question) method.")
