"""Extract the candidate's source from an LLM reply: exactly one fenced Python block, full file.

Full-file proposals only (no diffs that could silently fail to apply). If the reply holds several
Python blocks, the single one defining ``class Controller`` is taken; if that is ambiguous or
there is none, the reply is rejected with a reason the next prompt shows to the LLM.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


class ExtractionError(ValueError):
    """The reply holds no usable code block (the message says why)."""


def extract_code(reply: str) -> str:
    """The Python source in ``reply``.

    Args:
        reply: The LLM's message text.

    Returns:
        The code (ending with a newline).

    Raises:
        ExtractionError: No code block, or several candidates defining ``class Controller``.

    >>> extract_code("Here:\\n```python\\nclass Controller:\\n    pass\\n```\\nDone.")
    'class Controller:\\n    pass\\n'
    """
    if not reply or not reply.strip():
        raise ExtractionError("the reply is empty")
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(reply)]
    python = [b for lang, b in blocks if lang in ("python", "py", "python3")]
    pool = python or [b for lang, b in blocks if lang == ""]
    if not pool:
        if "class Controller" in reply and "```" not in reply:
            pool = [reply]
        else:
            raise ExtractionError("no ```python code block found; return the full file in one")
    if len(pool) > 1:
        defining = [b for b in pool if "class Controller" in b]
        if len(defining) != 1:
            raise ExtractionError(
                f"{len(pool)} code blocks and {len(defining)} define class Controller; "
                "return exactly one ```python block with the full file"
            )
        pool = defining
    code = pool[0].strip("\n")
    return code + "\n"
