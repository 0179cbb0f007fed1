"""Early-stopping self-consistency (Li et al., 2024) as a candidate file: read windows of
`window` (8) branches with full_read; stop at the first unanimous window, else answer the
majority after `max_samples` reads. `beta` picks max_samples from the published grid 16, 32, 64.
solve reads its knobs from the attributes __init__ sets (the built-in `esc` sets them from its
own parameters)."""

from tts_gym.candidate import majority

GRID = (16, 32, 64)
WINDOW = 8


class Controller:
    def __init__(self, beta):
        self.beta = min(1.0, max(0.0, float(beta)))
        knobs = self.schedule(self.beta)
        self.max_samples = knobs["max_samples"]
        self.window = knobs["window"]

    def schedule(self, beta):
        b = min(1.0, max(0.0, float(beta)))
        return {"max_samples": GRID[round(b * (len(GRID) - 1))], "window": WINDOW}

    def solve(self, question):
        cands = []
        for k in range(self.max_samples // self.window):
            win = []
            for _ in range(self.window):
                a = question.full_read()
                if a is None:
                    break
                win.append(a)
            if not win:
                continue
            cands += win
            if all(a == win[0] for a in win):
                question.note("stop", rule="unanimous window", window=k, reads=len(cands),
                              answer=win[0])
                return win[0]
            question.note("window", window=k, reads=len(cands), distinct=len(set(win)))
        winner = majority(cands)
        question.note("stop", rule="budget exhausted: majority", reads=len(cands), answer=winner)
        return winner
