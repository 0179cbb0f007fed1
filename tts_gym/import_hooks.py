"""Run a set-up step at the moment a third-party package is first imported (standard library only).

``import tts_gym`` must stay cheap (``tts-gym --version`` imports it), yet two things have to
happen before anyone uses numba or gymnasium through it:

* numba's cache folder must be set before the first kernel module is compiled or loaded
  (:mod:`tts_gym.numba_cache`): :func:`before_import` runs it just before ``numba`` is found;
* the envs must be in gymnasium's registry before ``gym.make`` is called
  (:mod:`tts_gym.registration`): :func:`after_import` runs it right after ``gymnasium`` has
  finished importing.

When the package is already imported, the step runs at once. Each step runs once. The finder
stays in ``sys.meta_path`` (removing it while the import system iterates that list would skip the
next finder) and answers ``None`` to every other name, so it never changes how anything is found.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Callable
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

Step = Callable[[], object]


class _RunAfter(importlib.abc.Loader):
    """Wraps a package's own loader: executes the package, then the steps."""

    def __init__(self, loader: Any, steps: list[Step]) -> None:
        self._loader = loader
        self._steps = steps

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        if module.__spec__ is not None:  # the package keeps its own loader afterwards
            module.__spec__.loader = self._loader
        module.__loader__ = self._loader
        self._loader.exec_module(module)
        for step in self._steps:
            step()


class _Hooks(importlib.abc.MetaPathFinder):
    """The one finder of this module: steps keyed by top-level package name."""

    def __init__(self) -> None:
        self.before: dict[str, list[Step]] = {}
        self.after: dict[str, list[Step]] = {}

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        for step in self.before.pop(fullname, []):
            step()
        steps = self.after.pop(fullname, None)
        if not steps:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RunAfter(spec.loader, steps)
                return spec
        return None


_HOOKS = _Hooks()


def _installed() -> _Hooks:
    if _HOOKS not in sys.meta_path:
        sys.meta_path.insert(0, _HOOKS)
    return _HOOKS


def before_import(package: str, step: Step) -> None:
    """Run ``step`` just before ``package`` is first imported (now if it already is).

    Args:
        package: A top-level package name, e.g. ``"numba"``.
        step: Must not import ``package`` itself.
    """
    if package in sys.modules:
        step()
    else:
        _installed().before.setdefault(package, []).append(step)


def after_import(package: str, step: Step) -> None:
    """Run ``step`` right after ``package`` is first imported (now if it already is).

    Args:
        package: A top-level package name, e.g. ``"gymnasium"``.
        step: Runs with ``package`` fully imported.
    """
    if package in sys.modules:
        step()
    else:
        _installed().after.setdefault(package, []).append(step)
