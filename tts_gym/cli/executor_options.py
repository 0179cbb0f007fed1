"""``--executor local|ray`` and ``--ray-address ADDR`` for the commands that compute.

The executors know nothing of the commands: this module gives a Ray executor its worker warm-up
(:func:`warm_worker`), so the executor layer imports no evaluation, reporting or sandbox code.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from tts_gym.cli import CliError
from tts_gym.executor.base import Executor, ExecutorError, using
from tts_gym.extras import require_extra


def add_executor_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--executor`` and ``--ray-address``."""
    parser.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where the work runs: local (a process pool on this machine) or ray (a Ray "
        "cluster; see docs/ray.md)",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="with --executor ray: the cluster to join (auto: the one this machine belongs "
        "to; HOST:PORT); default: a local Ray instance for this command",
    )


def check_executor_args(args: argparse.Namespace) -> None:
    """Refuse bad executor options before any work is done.

    Raises:
        CliError: ``--ray-address`` without ``--executor ray``.
        tts_gym.extras.MissingExtraError: ``--executor ray`` without the ``ray`` extra.
    """
    executor = getattr(args, "executor", "local")
    if getattr(args, "ray_address", None) and executor != "ray":
        raise CliError("--ray-address needs --executor ray.")
    if executor == "ray":
        require_extra("ray", "--executor ray")


def warm_worker() -> None:
    """Import what the computing commands' jobs run (evaluation, report cells, sandbox units) and
    load the env's kernels: the prewarm task a new Ray executor runs once per CPU."""
    import tts_gym.evaluation
    import tts_gym.reporting.cells
    import tts_gym.sandbox.units  # noqa: F401
    from tts_gym.warmup import warmup

    warmup()


@contextlib.contextmanager
def executor_from_args(args: argparse.Namespace, num_cpus: int | None = None
                       ) -> Iterator[Executor | None]:
    """The command's executor for the block (None: local pools), closed at the end (a local
    Ray instance is shut down, the cluster work still running is cancelled, also on Ctrl-C).

    Args:
        args: Parsed options with ``executor`` and ``ray_address``.
        num_cpus: CPUs of a local Ray instance (default: every core).

    Raises:
        CliError: See :func:`check_executor_args`; the cluster cannot be joined.
    """
    check_executor_args(args)
    if getattr(args, "executor", "local") != "ray":
        yield None
        return
    from tts_gym.executor.ray_executor import RayExecutor
    from tts_gym.sandbox.zygote_client import remove_stale_workdirs

    try:
        executor = RayExecutor(args.ray_address, num_cpus=num_cpus, warm=warm_worker,
                               on_shutdown=remove_stale_workdirs)
    except ExecutorError as exc:
        raise CliError(str(exc)) from None
    try:
        with using(executor):
            yield executor
    finally:
        executor.close()
