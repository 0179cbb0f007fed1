"""The one exception type of ``tts-gym collect``: its message is a sentence saying what to do."""

from __future__ import annotations


class CollectError(Exception):
    """Collection cannot go on (bad input, a server that keeps failing, changed arguments).

    The message names the thing and the fix; progress already made stays in the journal.
    """


class BudgetReached(CollectError):
    """``--max-tokens-total`` was reached; finished work is saved and a rerun continues."""
