"""What a controller is, and how controllers are found by name.

A controller is any object with ``solve(question) -> str | None`` that uses only the
:class:`~tts_gym.handle.QuestionHandle` primitives. Optional:

- ``name`` (str) and ``params()`` (dict) for reports;
- ``batch_solve(store, orders, mode) -> (answer_ids int32 [S, Q], tokens int64 [S, Q])``: the
  same algorithm as a jitted kernel over all seeds × questions, used by
  :func:`tts_gym.evaluate` when no traces are requested (it must give identical numbers).

Controllers are resolved by name through the entry-point group ``tts_gym.controllers``
(lowercase names: ``sc``, ``asc``, ...). ``file:PATH`` loads ``class Controller`` from a Python
file; other ``scheme:VALUE`` specs go to the entry-point group ``tts_gym.controller_schemes``
(e.g. ``rl:DIR/model.zip``). :mod:`tts_gym` never imports :mod:`agents` directly.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

CONTROLLER_GROUP = "tts_gym.controllers"
SCHEME_GROUP = "tts_gym.controller_schemes"


@runtime_checkable
class Controller(Protocol):
    """A test-time scaling policy written against the question handle."""

    def solve(self, question: Any) -> str | None:  # pragma: no cover - protocol
        ...


def available_controllers() -> dict[str, Any]:
    """Registered controller names -> entry points (not loaded)."""
    return dict(_group(CONTROLLER_GROUP))


@cache
def _group(group: str) -> tuple[tuple[str, Any], ...]:
    # Scanning installed distributions costs ~20 ms; the table asks once per cell.
    return tuple((ep.name, ep) for ep in entry_points(group=group))


def parse_param(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` (value as int, float, bool, None or string)."""
    if "=" not in text:
        raise ValueError(f"--param {text!r} must look like key=value (e.g. n=64, beta=0.5).")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key.isidentifier():
        raise ValueError(f"--param {text!r}: {key!r} is not a valid parameter name.")
    raw = raw.strip()
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    if lowered in ("none", "null"):
        return key, None
    for cast in (int, float):
        try:
            return key, cast(raw)
        except ValueError:
            pass
    return key, raw


def _instantiate(factory: Any, spec: str, params: dict[str, Any]) -> Any:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        unknown = [k for k in params if k not in sig.parameters and not accepts_kwargs]
        if unknown:
            known = [n for n in sig.parameters if n != "self"]
            raise ValueError(
                f"Controller {spec!r} has no parameter(s) {unknown}; it takes {known or 'none'}."
            )
    return factory(**params)


def load_file_controller(path: str | Path, params: dict[str, Any],
                         episode_cpu_s: float | None = None) -> Any:
    """Load ``class Controller`` from a Python file and instantiate it with ``params``.

    Args:
        path: The file.
        params: Keyword arguments of ``Controller(...)``.
        episode_cpu_s: CPU seconds the file's top-level code, the constructor and each
            ``solve`` may use (:func:`tts_gym.cpu_watchdog.cpu_budget`; the protocol
            reads it from the controller's ``_tts_gym_cpu_budget``); None: no budget.

    Raises:
        ValueError: The file does not import, defines no usable ``Controller``, or its
            top-level code or constructor ran past ``episode_cpu_s`` (the message names the
            line).
    """
    from tts_gym.cpu_watchdog import EpisodeCpuExceeded, cpu_budget

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Controller file {path} does not exist.")
    mod_name = f"tts_gym_user_controller_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"Cannot import {path} as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    origin = str(spec.origin or path)
    try:
        with cpu_budget(episode_cpu_s, origin):
            spec.loader.exec_module(module)
    except EpisodeCpuExceeded as exc:
        sys.modules.pop(mod_name, None)
        raise ValueError(f"{exc} (the file's top-level code).") from None
    except SyntaxError as exc:
        sys.modules.pop(mod_name, None)
        raise ValueError(
            f"{path} line {exc.lineno}: syntax error ({exc.msg}); fix the file and run again."
        ) from exc
    except ImportError as exc:
        sys.modules.pop(mod_name, None)
        raise ValueError(f"{path} cannot be imported: {exc}.") from exc
    if episode_cpu_s is not None and "tts_gym.candidate" in sys.modules:
        from tts_gym.candidate import _table

        _table()  # its one-time table, built before the budget (as the sandbox's fork server)
    factory = getattr(module, "Controller", None)
    if factory is None:
        raise ValueError(
            f"{path} defines no `class Controller`; a controller file must define "
            "one with solve(self, question)."
        )
    try:
        with cpu_budget(episode_cpu_s, origin):
            ctrl = _instantiate(factory, f"file:{path}", params)
    except EpisodeCpuExceeded as exc:
        raise ValueError(f"{exc} (Controller(...)).") from None
    if episode_cpu_s is not None:
        try:
            ctrl._tts_gym_cpu_budget = (origin, float(episode_cpu_s))
        except AttributeError:  # __slots__: no budget for its episodes
            pass
    if not callable(getattr(ctrl, "solve", None)):
        raise ValueError(f"{path}: class Controller has no solve(self, question) method.")
    if not getattr(ctrl, "name", None):
        try:
            ctrl.name = f"file:{path.name}"
        except AttributeError:
            pass
    return ctrl


def make_controller(spec: str, params: dict[str, Any] | None = None, *,
                    episode_cpu_s: float | None = None) -> Any:
    """Build a controller from a name (``"sc"``), ``file:PATH`` or ``scheme:VALUE``.

    ``episode_cpu_s`` is the per-episode CPU budget of a ``file:`` controller (see
    :func:`load_file_controller`); other controllers ignore it.

    Raises:
        ValueError: Unknown name/scheme or unknown parameters (the message lists what exists).
    """
    params = dict(params or {})
    if ":" in spec:
        scheme, value = spec.split(":", 1)
        if scheme == "file":
            return load_file_controller(value, params, episode_cpu_s)
        schemes = dict(_group(SCHEME_GROUP))
        if scheme not in schemes:
            raise ValueError(
                f"Unknown controller scheme {scheme!r} in {spec!r}; known: "
                f"{['file', *sorted(schemes)]}."
            )
        return schemes[scheme].load()(value, params)
    registry = available_controllers()
    name = spec.lower()
    if name not in registry:
        raise ValueError(
            f"Unknown controller {spec!r}; registered: {sorted(registry)} (entry-point "
            f"group {CONTROLLER_GROUP!r}), or use file:PATH."
        )
    return _instantiate(registry[name].load(), name, params)


def controller_name(controller: Any) -> str:
    """A display name for a controller object."""
    return str(getattr(controller, "name", None) or type(controller).__name__)


def controller_params(controller: Any) -> dict[str, Any]:
    """The controller's parameters (``params()`` if it has one)."""
    get = getattr(controller, "params", None)
    return dict(get()) if callable(get) else {}
