"""The vLLM test double now ships in the package (:mod:`tts_gym.collect.toy_server`, with its toy
model in :mod:`tts_gym.collect.toy_model`); this module keeps the tests' and benchmarks' imports
and ``python -m tests.fake_vllm_server PORT`` working."""

from __future__ import annotations

from tts_gym.collect.toy_model import (  # noqa: F401 (re-exported)
    CHAR_BASE,
    EOS_TEXT,
    MARKER,
    NO_GUESS,
    PROBE_END,
    TOK,
    Plan,
    ToyModel,
    ToyTokenizer,
    classes_of,
)
from tts_gym.collect.toy_server import (  # noqa: F401 (re-exported)
    Call,
    FakeVLLM,
    Fault,
    serve_forever,
)

if __name__ == "__main__":  # pragma: no cover
    import sys

    serve_forever(int(sys.argv[1]))
