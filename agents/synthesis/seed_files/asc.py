"""Adaptive self-consistency (Aggarwal et al., 2023) as a candidate file: read branches with
full_read until the Beta confidence of the leader over the runner-up exceeds `threshold` (0.95),
at most `max_samples` reads. `beta` picks max_samples from the published grid 1, 4, 8, 16, 32, 64.
solve reads its knobs from the attributes __init__ sets (the built-in `asc` sets them from its
own parameters)."""

from tts_gym.candidate import beta_conf, majority, top2

GRID = (1, 4, 8, 16, 32, 64)
THRESHOLD = 0.95


class Controller:
    def __init__(self, beta):
        self.beta = min(1.0, max(0.0, float(beta)))
        knobs = self.schedule(self.beta)
        self.max_samples = knobs["max_samples"]
        self.threshold = knobs["threshold"]

    def schedule(self, beta):
        b = min(1.0, max(0.0, float(beta)))
        return {"max_samples": GRID[round(b * (len(GRID) - 1))], "threshold": THRESHOLD}

    def solve(self, question):
        cands = []
        for _ in range(self.max_samples):
            a = question.full_read()
            if a is None:
                break
            cands.append(a)
            if len(cands) >= 2:
                w, c1, c2 = top2(cands)
                conf = beta_conf(c1, c2)
                if conf > self.threshold:
                    question.note("stop", rule="beta_conf > threshold", reads=len(cands),
                                  c1=c1, c2=c2, conf=conf, answer=w)
                    return w
        winner = majority(cands)
        question.note("stop", rule="budget exhausted: majority", reads=len(cands), answer=winner)
        return winner
