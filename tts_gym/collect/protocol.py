"""The probing protocol: where probes go in a trajectory, and the seed of each branch.

After Parallel-Probe's collection (AutoTTS, arXiv 2605.08083, §4) and Dynasor's "probe in the
middle" (Certaindex, arXiv 2412.20993): N trajectories per question are sampled; a probe (prefix +
suffix, a short greedy completion) is asked after every Δ generated tokens of the *thinking*
part; the probe and its answer are discarded, so sampling the whole trajectory first and probing
its prefixes afterwards gives exactly the same data.

Conventions (each matches what the published stores show, see ``docs/collect.md``):

* the thinking part is the generated tokens before the end-of-thinking marker (all of them if
  the template has no marker, the marker never comes, or the budget cuts the trajectory);
* probes sit at k·Δ generated tokens for every k >= 1 with k·Δ < t (t = thinking tokens): the
  last, partial interval is answered by the final answer, appended as the last probe, so a
  branch has ceil(t/Δ) entries (at least 1) and the last always equals the final answer;
* the final answer is the last ``\\boxed{...}`` after the marker (of the whole text without
  one); if there is none, or the trajectory hit ``--max-tokens``, it is a probe at t, "a probe
  at the budget";
* branch b of question id q is sampled with seed :func:`branch_seed` (seed, q, b), so a rerun,
  a resume and another server order ask for the same sample.
"""

from __future__ import annotations

import hashlib

MAX_SEED = 2**31 - 1
"""Seeds stay below 2**31 (vLLM takes int64, llama.cpp uint32)."""


def branch_seed(seed: int, question_id: str, branch: int) -> int:
    """Sampling seed of one branch: a hash of (run seed, question id, branch index).

    >>> branch_seed(0, "q1", 0) == branch_seed(0, "q1", 0) != branch_seed(0, "q1", 1)
    True
    """
    digest = hashlib.sha256(f"{seed}/{question_id}/{branch}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % MAX_SEED


def probe_positions(thinking_tokens: int, interval: int) -> list[int]:
    """Generated-token counts after which a probe is asked: k·Δ < t, k >= 1.

    >>> probe_positions(1200, 500), probe_positions(1000, 500), probe_positions(400, 500)
    ([500, 1000], [500], [])
    """
    return list(range(interval, thinking_tokens, interval))


def thinking_length(generated: list[int] | tuple[int, ...], marker: list[int] | tuple[int, ...]
                    ) -> int | None:
    """Index of the first occurrence of ``marker`` in ``generated`` (token ids), or None.

    >>> thinking_length([5, 6, 9, 9, 7], [9, 9]), thinking_length([5, 6], [9])
    (2, None)
    """
    n = len(marker)
    if n == 0:
        return None
    first = marker[0]
    for i, tok in enumerate(generated):
        if tok == first and tuple(generated[i : i + n]) == tuple(marker):
            return i
    return None
