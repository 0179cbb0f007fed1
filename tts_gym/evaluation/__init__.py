"""The evaluation protocol: orders, the evaluator, results."""

from tts_gym.evaluation.orders import protocol_orders
from tts_gym.evaluation.protocol import evaluate, run_handle_episodes
from tts_gym.evaluation.result import EvalResult
from tts_gym.evaluation.scoring import answer_ids, score

__all__ = ["EvalResult", "answer_ids", "evaluate", "protocol_orders", "run_handle_episodes",
           "score"]
