"""Parallel-Probe (2026) as a candidate file: open `num_chains` branches with probe_new, advance
them together `probe_burst` (1) intervals per round, prune chains that disagree with the majority
of the latest answers for `prune_patience` (7) rounds after `warm_up` (15) rounds, stop when that
majority stays the same for `T` (40) rounds, at most `max_steps` (100) rounds. `beta` picks
num_chains from the published grid 1, 4, 8, 16, 32, 64. solve reads its knobs from the
attributes __init__ sets (the built-in `parallel-probe` sets them from its own parameters)."""

from tts_gym.candidate import majority

GRID = (1, 4, 8, 16, 32, 64)
T_STABLE = 40
PRUNE_PATIENCE = 7
WARM_UP = 15
PROBE_BURST = 1
MAX_STEPS = 100


class Chain:
    def __init__(self, slot, answer, finished):
        self.slot = slot
        self.history = [answer]
        self.finished = finished
        self.pruned = False
        self.off = 0


class Controller:
    def __init__(self, beta):
        self.beta = min(1.0, max(0.0, float(beta)))
        knobs = self.schedule(self.beta)
        self.num_chains = knobs["num_chains"]
        self.T = knobs["T"]
        self.prune_patience = knobs["prune_patience"]
        self.warm_up = knobs["warm_up"]
        self.probe_burst = knobs["probe_burst"]
        self.max_steps = knobs["max_steps"]

    def schedule(self, beta):
        b = min(1.0, max(0.0, float(beta)))
        return {"num_chains": GRID[round(b * (len(GRID) - 1))], "T": T_STABLE,
                "prune_patience": PRUNE_PATIENCE, "warm_up": WARM_UP,
                "probe_burst": PROBE_BURST, "max_steps": MAX_STEPS}

    def solve(self, question):
        chains = []
        for _ in range(self.num_chains):
            got = question.probe_new()
            if got is None:
                break
            chains.append(Chain(got[1], got[0], got[2]))
        question.note("spawn", chains=len(chains), tokens=question.tokens_used)
        if not chains:
            question.note("stop", rule="no branch opened", answer=None)
            return None
        stable, prev = 0, None
        for step in range(self.max_steps):
            # --- Forward: probe_burst more intervals on every live chain
            active = []
            for c in chains:
                if c.pruned:
                    continue
                if not c.finished:
                    last = c.history[-1]
                    for _ in range(self.probe_burst):
                        if c.finished:
                            break
                        last, c.finished = question.probe_more(c.slot)
                    c.history.append(last)
                active.append(c)
            if not active:
                question.note("stop", rule="no active chain", step=step, answer=prev)
                return prev
            winner = majority([c.history[-1] for c in active])
            # --- Prune chains that keep disagreeing with the majority
            if step >= self.warm_up and len(active) > 1:
                for c in active:
                    if not c.finished:
                        c.off = c.off + 1 if c.history[-1] != winner else 0
                newly = [c for c in active if not c.finished and c.off >= self.prune_patience]
                for c in newly:
                    c.pruned = True
                    question.prune(c.slot)
                if newly:
                    question.note("prune", step=step, slots=[c.slot for c in newly],
                                  answers=[c.history[-1] for c in newly], winner=winner)
                    active = [c for c in active if not c.pruned]
                    if not active:
                        question.note("stop", rule="no active chain", step=step, answer=prev)
                        return prev
                    winner = majority([c.history[-1] for c in active])
            # --- Stop on a stable majority
            stable = stable + 1 if winner == prev else 0
            if stable >= self.T:
                question.note("stop", rule="majority stable for T rounds", step=step,
                              stable=stable, active=len(active), answer=winner)
                return winner
            prev = winner
            if all(c.finished or c.pruned for c in chains):
                question.note("stop", rule="every chain finished or pruned", step=step,
                              answer=prev)
                return prev
        question.note("stop", rule="max_steps reached", steps=self.max_steps, answer=prev)
        return prev
