"""A small test-time scaling controller: read a few branches, stop early when they agree.

Evaluate it with the published protocol (100 shuffle seeds), in the sandbox:

    tts-gym eval file:examples/my_controller.py --param reads=8 --model Qwen3-8B --benchmark aime24

or in Python (see docs/controllers.md):

    from tts_gym import load_store
    from tts_gym.sandbox import evaluate_source
    source = open("examples/my_controller.py").read()
    result = evaluate_source(source, load_store("Qwen3-8B", "aime24"), params={"reads": 8})
"""

from tts_gym.candidate import beta_conf, top2


class Controller:
    """Agreement-stopped voting: full reads until the leader is confidently ahead.

    Args:
        reads: At most this many branches are read (each is charged its whole length).
        confidence: Stop once ``beta_conf(leader count, runner-up count)`` reaches this.
    """

    def __init__(self, reads=8, confidence=0.9):
        self.reads = int(reads)
        self.confidence = float(confidence)

    def solve(self, question):
        answers = []
        for _ in range(self.reads):
            answer = question.full_read()  # a whole branch: its final answer, all its tokens
            if answer is None:  # no branch left
                break
            answers.append(answer)
            leader, c1, c2 = top2(answers)
            if len(answers) >= 2 and beta_conf(c1, c2) >= self.confidence:
                question.note("stop", reads=len(answers), leader=leader, c1=c1, c2=c2)
                return leader  # a string a primitive returned in this episode
        leader, _c1, _c2 = top2(answers)
        question.note("stop", reads=len(answers), leader=leader, reason="budget")
        return leader  # None when nothing was read: scored wrong
