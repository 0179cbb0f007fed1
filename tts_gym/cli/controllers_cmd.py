"""``tts-gym controllers``: the registered controllers, their parameters and where they come from.

Everything is read from the controllers themselves, so a controller another package registers
(entry-point group ``tts_gym.controllers``) is listed the same way: the parameters, types and
defaults from the signature of its ``__init__``, each parameter's description (and the range
it states, e.g. ``1..64``, ``in [0, 1]``, ``>= 1``) from the ``Args:`` section of the class
docstring (Google style), and the source from the first paragraph of its module docstring.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from typing import Any

RANGE = re.compile(
    r"(?P<interval>\[[^\]]+\])"  # in [0, 1]
    r"|(?P<dots>`*\w+`*\.\.`*\w+`*)"  # 1..64, ``window``..64
    r"|(?P<cmp>[<>]=?\s*-?\d+(?:\.\d+)?)"  # >= 1
)
"""Ranges as the controllers' docstrings write them."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``controllers`` sub-command."""
    p = sub.add_parser(
        "controllers",
        help="list the registered controllers: parameters, ranges, defaults, source paper",
        description="List every controller registered in the entry-point group "
        "tts_gym.controllers, read from its signature and docstrings. Use a name with "
        "`tts-gym eval NAME --param KEY=VALUE`.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="only these controllers")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=run)


def args_section(doc: str) -> dict[str, str]:
    """``{parameter: description}`` from a Google-style ``Args:`` section.

    >>> args_section('''X.
    ...
    ... Args:
    ...     n: Branches to read,
    ...         1..64.
    ...     a, b: Unused.
    ...
    ... Raises:
    ...     ValueError: bad.''')
    {'n': 'Branches to read, 1..64.', 'a': 'Unused.', 'b': 'Unused.'}
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    out: dict[str, str] = {}
    inside = False
    names: list[str] = []
    indent = None
    for line in lines:
        if not inside:
            inside = line.strip() == "Args:"
            continue
        if not line.strip():
            continue
        if not line.startswith(" "):  # the next section
            break
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        head = re.match(r"\s*([\w, *]+?)\s*(?:\([^)]*\))?:\s*(.*)$", line)
        if depth == indent and head:
            names = [n.strip().lstrip("*") for n in head.group(1).split(",")]
            for n in names:
                out[n] = head.group(2).strip()
        elif names:
            for n in names:
                out[n] = f"{out[n]} {line.strip()}".strip()
    return out


def value_range(description: str) -> str:
    """The range a parameter description states (``"1..64"``, ``"[0, 1]"``, ``">= 1"``), else
    ``""``.

    >>> value_range("Branches to read, 1..64."), value_range("clipped to [0, 1]")
    ('1..64', '[0, 1]')
    >>> value_range("Rounds before pruning starts (>= 0)."), value_range("Unused.")
    ('>= 0', '')
    """
    m = RANGE.search(description)
    return m.group(0).replace("`", "") if m else ""


def source_of(obj: Any) -> str:
    """The first paragraph of the module docstring of ``obj`` (the controllers name their
    paper there), on one line."""
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    doc = inspect.getdoc(module) if module is not None else None
    first = (doc or inspect.getdoc(obj) or "").split("\n\n")[0]
    return " ".join(first.split())


def describe(name: str, factory: Any) -> dict[str, Any]:
    """A registered controller as a JSON-friendly dict (see the module docstring)."""
    docs = args_section(inspect.getdoc(factory) or "")
    params = []
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        sig = None
    for p in (sig.parameters.values() if sig else []):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = p.annotation
        kind = "" if annotation is p.empty else getattr(annotation, "__name__", str(annotation))
        default = None if p.default is p.empty else p.default
        text = docs.get(p.name, "")
        params.append(
            {
                "name": p.name,
                "type": kind,
                "default": default,
                "required": p.default is p.empty,
                "range": value_range(text),
                "description": text,
            }
        )
    summary = (inspect.getdoc(factory) or "").split("\n\n")[0]
    return {
        "name": name,
        "class": f"{factory.__module__}.{factory.__qualname__}",
        "summary": " ".join(summary.split()),
        "source": source_of(factory),
        "parameters": params,
    }


def run(args: argparse.Namespace) -> int:
    """Print the registered controllers (text, or JSON with ``--json``)."""
    from tts_gym.controller import available_controllers

    registry = available_controllers()
    names = args.names or sorted(registry)
    unknown = [n for n in names if n.lower() not in registry]
    if unknown:
        raise ValueError(
            f"Unknown controller(s) {unknown}; registered: {sorted(registry)}."
        )
    described = []
    for n in names:
        try:
            described.append(describe(n.lower(), registry[n.lower()].load()))
        except ImportError as exc:  # a registered package that is gone
            print(f"tts-gym controllers: {n} is registered but cannot be imported ({exc}).",
                  file=sys.stderr)
    if args.json:
        print(json.dumps(described, default=str))
        return 0
    for i, d in enumerate(described):
        if i:
            print()
        print(f"{d['name']}  ({d['class']})")
        print(f"  {d['summary']}")
        print(f"  source: {d['source']}")
        width = max([len(p["name"]) for p in d["parameters"]] + [4])
        for p in d["parameters"]:
            default = "required" if p["required"] else f"default {p['default']!r}"
            rng = f"  range {p['range']}" if p["range"] else ""
            print(f"    {p['name']:<{width}}  {p['type'] or '-':<11} {default}{rng}")
            if p["description"]:
                print(f"    {'':<{width}}  {p['description']}")
    print(f"\n{len(described)} controllers. Evaluate one: tts-gym eval NAME --param KEY=VALUE "
          "--model M --benchmark B")
    return 0
