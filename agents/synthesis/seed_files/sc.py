"""Self-consistency (Wang et al., 2023) as a candidate file: read `n` branches to the end with
full_read and answer the majority. `beta` picks n from the published budget grid
1, 4, 8, 16, 32, 64 (beta = 0, 0.2, ..., 1.0; other betas take the nearest grid point).
solve reads n from the attribute __init__ sets (the built-in `sc` sets it from its own `n`)."""

from tts_gym.candidate import majority

GRID = (1, 4, 8, 16, 32, 64)


class Controller:
    def __init__(self, beta):
        self.beta = min(1.0, max(0.0, float(beta)))
        self.n = self.schedule(self.beta)["n"]

    def schedule(self, beta):
        b = min(1.0, max(0.0, float(beta)))
        return {"n": GRID[round(b * (len(GRID) - 1))]}

    def solve(self, question):
        votes = []
        for _ in range(self.n):
            a = question.full_read()
            if a is None:
                break
            votes.append(a)
        winner = majority(votes)
        question.note("stop", rule="read n branches", votes=len(votes), answer=winner)
        return winner
