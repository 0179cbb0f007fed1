"""The trust boundary: untrusted controller code in an OS-isolated process, data in a broker.

- :mod:`.child`: what runs in the candidate process and its fork server (no tts_gym, no data);
- :mod:`.zygote_client`: starting the fork server clean and asking it for isolated children;
- :mod:`.broker` and :mod:`.kernel`: the trusted side of one unit of work;
- :mod:`.units`: running many units (one per protocol seed) and scoring them;
- :mod:`.layers`: which isolation layers this machine offers (``tts-gym sandbox-check``).

The safety page of the docs (docs/safety.md) describes what each layer stops.
"""

from tts_gym.sandbox.limits import SandboxLimits


def evaluate_source(*args, **kwargs):  # noqa: ANN002, ANN003 - see tts_gym.sandbox.evaluate
    """:func:`tts_gym.sandbox.evaluate.evaluate_source` (imported on first use)."""
    from tts_gym.sandbox.evaluate import evaluate_source as run

    return run(*args, **kwargs)


__all__ = ["SandboxLimits", "evaluate_source"]
