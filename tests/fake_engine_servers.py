"""The llama.cpp and SGLang test doubles now ship in the package
(:mod:`tts_gym.collect.toy_engines`); this module keeps the tests' imports working."""

from tts_gym.collect.toy_engines import LLAMA_DEFAULTS, FakeLlamaCpp, FakeSGLang  # noqa: F401
