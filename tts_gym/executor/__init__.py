"""Executors: where evaluation, reporting and discovery run their independent work.

- :mod:`.base`: the interface (:class:`Job`, :class:`Executor`) and the command's executor
  (:func:`using`, :func:`current`);
- :mod:`.local`: a fork process pool on this machine (the default), and :func:`resolve`;
- :mod:`.ray_executor`: Ray tasks on a cluster or a local Ray instance (the ``ray`` extra);

The command-line options ``--executor`` / ``--ray-address`` and the workers' warm-up live in
:mod:`tts_gym.cli.executor_options` (executors import nothing above them). The cluster page of
the docs (docs/ray.md) says how to run on several machines.
"""

from tts_gym.executor.base import Executor, ExecutorError, Job, current, using
from tts_gym.executor.local import LocalExecutor, resolve

__all__ = ["Executor", "ExecutorError", "Job", "LocalExecutor", "current", "resolve", "using"]
