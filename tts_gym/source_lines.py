"""Where in a controller's source a bad answer was returned (standard library only).

A function's code object knows its ``def`` line but not which ``return`` ran, so a value that is
not an answer (answers are strings or None) is located by reading the source. Used on both sides
of the sandbox: in this process for ``--trusted`` controllers
(:mod:`tts_gym.evaluation.protocol`), and inside the candidate process, whose fork server loads
this file by path (:mod:`tts_gym.sandbox.child.zygote`), which is why it must import nothing but
the standard library.
"""

from __future__ import annotations

import ast

__all__ = ["return_lines", "where_returned"]


def return_lines(source: str, def_line: int | None) -> list[int]:
    r"""Lines of the ``return`` statements of the function defined at ``def_line`` of ``source``
    that may give a value other than a string or None (nested functions excluded). A
    function's code object knows its ``def`` line but not which ``return`` ran, so a bad
    answer is located by reading the source: a literal string, an f-string, ``str(...)`` and
    a bare or ``None`` return are left out; the rest are the candidates (usually one).

    >>> return_lines("def solve(q):\n    if q:\n        return None\n    return 3\n", 1)
    [4]
    """
    if def_line is None:
        return []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    fn = next((n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
               and def_line in (n.lineno, *(d.lineno for d in n.decorator_list))), None)
    if fn is None:
        return []
    out: list[int] = []
    todo: list[ast.AST] = list(fn.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Return) and not _string_or_none(node.value):
            out.append(node.lineno)
        todo.extend(ast.iter_child_nodes(node))
    return sorted(out)


def _string_or_none(value: ast.AST | None) -> bool:
    if value is None or isinstance(value, ast.JoinedStr):
        return True
    if isinstance(value, ast.Constant):
        return value.value is None or isinstance(value.value, str)
    return (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
            and value.func.id == "str")


def where_returned(filename: str, source: str, def_line: int | None) -> tuple[str, int | None]:
    """``("file:line", line)`` of the return that gave a bad answer (one candidate line), else
    ``("file:a or b", None)`` or the ``def`` line when no return statement qualifies."""
    lines = return_lines(source, def_line)
    if len(lines) == 1:
        return f"{filename}:{lines[0]}", lines[0]
    if lines:
        return f"{filename}:{' or '.join(map(str, lines[:4]))}", None
    return (f"{filename}:{def_line}" if def_line else filename), def_line
