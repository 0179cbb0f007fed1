"""CMC, the Confidence Momentum Controller discovered by AutoTTS (AutoTTS, 2026), as a candidate
file written against the candidate API only, so it passes the discovery lint and runs in the
sandbox. The built-in ``cmc`` runs this very solve (its knobs in the attribute ``p``).

Pool: final answers of finished branches. Momentum: an EMA of the pool's Beta confidence.
Probing: live branches advance once per round (aligned ones in bursts after warm-up).
Abandon: a branch that disagrees with the leader for `abandon_patience` rounds is pruned.
Stop: confident pool leader with a non-falling trend. Widen: open more branches when low and flat.
"""

from tts_gym.candidate import beta_conf, majority, top2

MAX_BRANCH = 64
MAX_OUTER = 500  # outer rounds before the final fallback


class Branch:
    """One opened branch."""

    def __init__(self, slot, latest, finished):
        self.slot = slot
        self.latest = latest
        self.finished = finished
        self.abandoned = False
        self.probes = 0
        self.disagree = 0


class Controller:
    def __init__(self, beta):
        self.beta = min(1.0, max(0.0, float(beta)))
        self.p = self.schedule(self.beta)

    def schedule(self, beta):
        b = min(1.0, max(0.0, float(beta)))
        return {
            "n_init": max(2, round(2 + 6 * b)),
            "max_branch_use": min(64, round(4 + 60 * b)),
            "warm_up": max(2, round(2 + 8 * b)),
            "abandon_patience": max(3, round(3 + 9 * b)),
            "T_ema": max(2, round(2 + 6 * b)),
            "ema_alpha": round(0.70 - 0.40 * b, 4),
            "conf_thresh": round(0.85 + 0.12 * b, 4),
            "delta_slack": round(0.04 - 0.03 * b, 4),
            "burst_aligned": max(1, round(1 + 2 * b)),
            "widen_burst": max(1, round(1 + 3 * b)),
            "trend_thresh": round(0.04 - 0.03 * b, 4),
            "min_complete": max(2, round(2 + 3 * b)),
        }

    def solve(self, question):
        p = self.p
        alpha = p["ema_alpha"]
        conf_thresh = p["conf_thresh"]
        warm_up = p["warm_up"]
        records = []
        pool = []

        def pool_stats():
            if not pool:
                return None, 0.0
            w, c1, c2 = top2(pool)
            return w, beta_conf(c1, c2)

        def spawn():
            got = question.probe_new()
            if got is None:
                return False
            a, slot, fin = got
            records.append(Branch(slot, a, fin))
            if fin:
                pool.append(a)
            question.note("spawn", slot=slot, answer=a, finished=fin)
            return True

        # --- Pool: open the first branches
        for _ in range(p["n_init"]):
            if not spawn():
                break
        if not records:
            question.note("finish", answer=None, reason="no branch")
            return None

        e = 0.0
        hist = []
        for step in range(MAX_OUTER):
            # --- Momentum
            w, conf = pool_stats()
            warm = step >= warm_up
            e = (1 - alpha) * e + alpha * conf
            hist.append(e)
            while len(hist) > p["T_ema"]:
                hist.pop(0)
            # --- Abandon
            if warm and w is not None:
                alive = 0
                for r in records:
                    if not r.abandoned and not r.finished:
                        r.disagree = r.disagree + 1 if r.latest != w else 0
                        alive += 1
                cands = [r for r in records
                         if not r.abandoned and not r.finished
                         and r.disagree >= p["abandon_patience"]]
                cands.sort(key=lambda r: r.disagree, reverse=True)
                for r in cands[: max(0, alive - 2)]:
                    r.abandoned = True
                    question.prune(r.slot)
                    question.note("abandon", slot=r.slot, disagree=r.disagree, leader=w)
            # --- Probing
            live = [r for r in records if not r.abandoned and not r.finished]
            live.sort(key=lambda r: r.probes, reverse=True)
            for r in live:
                n = p["burst_aligned"] if (warm and w is not None and r.latest == w) else 1
                done = 0
                for _ in range(n):
                    if r.finished:
                        break
                    a, fin = question.probe_more(r.slot)
                    r.probes += 1
                    r.latest = a
                    r.finished = fin
                    done += 1
                    if fin:
                        pool.append(a)
                if n > 1:
                    question.note("burst", slot=r.slot, probes=done, answer=r.latest)
            # --- Stop
            w, conf = pool_stats()
            e = (1 - alpha) * e + alpha * conf
            hist[-1] = e
            delta = hist[-1] - hist[0] if len(hist) >= 2 else 0.0
            if warm and len(pool) >= p["min_complete"] and e >= conf_thresh:
                if delta >= -p["delta_slack"]:
                    question.note("stop", step=step, E=e, delta=delta, pool=len(pool),
                                  conf=conf, answer=w)
                    question.note("finish", answer=w, reason="confident")
                    return w
            if all(r.finished or r.abandoned for r in records):
                break
            # --- Widen
            n_rec = len(records)
            if (n_rec < p["max_branch_use"] and n_rec < MAX_BRANCH
                    and delta <= p["trend_thresh"] and step >= max(1, warm_up // 2)
                    and e < conf_thresh):
                question.note("widen", step=step, E=e, delta=delta, pool=len(pool), conf=conf)
                for _ in range(p["widen_burst"]):
                    if not (len(records) < p["max_branch_use"] and len(records) < MAX_BRANCH):
                        break
                    if not spawn():
                        break
        w, _ = pool_stats()
        reason = "pool leader"
        if w is None:
            w = majority([r.latest for r in records if not r.abandoned])
            reason = "majority of latest answers"
        question.note("finish", answer=w, reason=reason, pool=len(pool), E=e)
        return w
