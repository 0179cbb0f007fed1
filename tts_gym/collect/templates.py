"""Prompt templates: how a problem becomes the text a completions endpoint continues.

Built in (the main open reasoning-model families; the wording is the one their model cards
recommend for math):

* ``qwen3``: Qwen3's chat template with thinking on (what ``apply_chat_template(...,
  add_generation_prompt=True)`` renders); the model opens ``<think>`` itself.
* ``deepseek-r1``: the DeepSeek-R1 distills' template, which starts the answer with ``<think>\\n``
  (as DeepSeek recommends and Dynasor does).
* ``raw``: the problem text verbatim, nothing added.
* a file: its text with ``{problem}`` replaced by the problem (no other placeholder; braces of
  LaTeX are left alone).

The template also names the end-of-thinking marker (``</think>`` for the two families, none for
``raw`` and files unless ``--think-end`` says otherwise): probes are placed in the thinking part.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from tts_gym.collect.errors import CollectError

PLACEHOLDER = "{problem}"
MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

BUILTIN: dict[str, tuple[str, str]] = {
    "qwen3": (
        "<|im_start|>user\n{problem}\n" + MATH_INSTRUCTION + "<|im_end|>\n<|im_start|>assistant\n",
        "</think>",
    ),
    "deepseek-r1": (
        "<｜begin▁of▁sentence｜><｜User｜>{problem}\n"
        + MATH_INSTRUCTION
        + "<｜Assistant｜><think>\n",
        "</think>",
    ),
    "raw": ("{problem}", ""),
}
"""name -> (template text, end-of-thinking marker)."""


@dataclass(frozen=True)
class Template:
    """A prompt template.

    Attributes:
        name: ``qwen3``, ``deepseek-r1``, ``raw`` or ``file:<file name>``.
        text: The template with one or more ``{problem}`` placeholders.
        think_end: End-of-thinking marker ("" = the whole generation counts as thinking).
    """

    name: str
    text: str
    think_end: str

    @property
    def sha256(self) -> str:
        """Digest of the template text (recorded in the metadata)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def render(self, problem: str) -> str:
        """The prompt for ``problem``.

        >>> Template("t", "Q: {problem}\\nA:", "").render("1+1 = \\\\frac{a}{b}?")
        'Q: 1+1 = \\\\frac{a}{b}?\\nA:'
        """
        return self.text.replace(PLACEHOLDER, problem)


def load_template(spec: str, think_end: str | None = None) -> Template:
    """The template named by ``--template`` (a built-in name or a file path).

    Args:
        spec: ``qwen3``, ``deepseek-r1``, ``raw`` or the path of a text file.
        think_end: Overrides the end-of-thinking marker (``--think-end``); None keeps the default.

    Raises:
        CollectError: Unknown name and no such file, or a file without ``{problem}``.
    """
    if spec in BUILTIN:
        text, marker = BUILTIN[spec]
        return Template(spec, text, marker if think_end is None else think_end)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise CollectError(
            f"--template {spec!r} is neither a built-in template ({', '.join(BUILTIN)}) nor a "
            "file; give one of those names or the path of a text file holding {problem}."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CollectError(f"Cannot read the template file {path}: {exc}.") from None
    if PLACEHOLDER not in text:
        raise CollectError(
            f"The template file {path} has no {PLACEHOLDER} placeholder; put it where the "
            "problem text goes."
        )
    return Template(f"file:{path.name}", text, think_end or "")
