"""Scripted LLM replies for the discovery tests: honest, broken and hostile candidates."""

from __future__ import annotations

GOOD = '''\
from collections import Counter


class Controller:
    """Read branches to the end until `agree` of them concur; both grow with beta."""

    def __init__(self, beta):
        self.beta = min(1.0, max(0.0, float(beta)))
        self.cfg = self.schedule(self.beta)

    def schedule(self, beta):
        b = min(1.0, max(0.0, float(beta)))
        return {"n_max": max(1, round(2 + 62 * b)), "agree": max(2, round(2 + 6 * b))}

    def solve(self, question):
        votes = Counter()
        for _ in range(self.cfg["n_max"]):
            a = question.full_read()
            if a is None:
                break
            votes[a] += 1
            top, count = votes.most_common(1)[0]
            if count >= self.cfg["agree"]:
                question.note("stop", reason="agree", count=count, answer=top)
                return top
        if not votes:
            question.note("stop", reason="no branch")
            return None
        top = votes.most_common(1)[0][0]
        question.note("stop", reason="budget", votes=sum(votes.values()), answer=top)
        return top
'''

PROBING = '''\
import math
from collections import Counter


class Controller:
    """Open a few branches, probe them in rounds, widen while the finished pool is unsure."""

    def __init__(self, beta):
        self.beta = min(1.0, max(0.0, float(beta)))
        self.cfg = self.schedule(self.beta)

    def schedule(self, beta):
        b = min(1.0, max(0.0, float(beta)))
        return {
            "n_init": max(1, round(1 + 3 * b)),
            "n_max": max(2, round(2 + 62 * b)),
            "min_pool": max(1, round(1 + 4 * b)),
            "share": round(0.5 + 0.4 * b, 4),
        }

    def solve(self, question):
        cfg = self.cfg
        live, pool = [], Counter()

        def spawn():
            got = question.probe_new()
            if got is None:
                return False
            answer, slot, finished = got
            if finished:
                pool[answer] += 1
            else:
                live.append(slot)
            question.note("spawn", slot=slot, finished=finished)
            return True

        for _ in range(cfg["n_init"]):
            if not spawn():
                break
        while True:
            for slot in list(live):
                answer, finished = question.probe_more(slot)
                if finished:
                    live.remove(slot)
                    pool[answer] += 1
            total = sum(pool.values())
            if total >= cfg["min_pool"]:
                top, count = pool.most_common(1)[0]
                if count / total >= cfg["share"]:
                    question.note("stop", reason="consensus", count=count, pool=total)
                    return top
            if question.n_opened < cfg["n_max"] and spawn():
                continue
            if not live:
                break
        if not pool:
            question.note("stop", reason="empty")
            return None
        question.note("stop", reason="exhausted", pool=sum(pool.values()))
        return pool.most_common(1)[0][0]
'''

NON_MONOTONE = GOOD.replace(
    '"n_max": max(1, round(2 + 62 * b)), "agree": max(2, round(2 + 6 * b))',
    '"n_max": max(1, round(1 + 20 * (4 * b * (1 - b)))), "agree": 99',
)

SYNTAX_ERROR = "class Controller(:\n    pass\n"

MISSING_CLASS = GOOD.replace("class Controller:", "class Policy:")

FORBIDDEN_IMPORT = "import os\n" + GOOD

GOLD_PEEK = GOOD.replace(
    "        votes = Counter()\n",
    "        gold = question._env.store.gold\n        votes = Counter()\n",
)

INFINITE_LOOP = GOOD.replace(
    "        votes = Counter()\n",
    "        while True:\n            pass\n        votes = Counter()\n",
)

MEMORY_BOMB = GOOD.replace(
    "        votes = Counter()\n",
    "        chunks = []\n        while True:\n            chunks.append([0] * 10**7)\n"
    "        votes = Counter()\n",
)


def reply(code: str, rationale: str = "Here is my controller.") -> str:
    """An LLM-style message around one fenced block."""
    return f"{rationale}\n\n```python\n{code}```\n"
