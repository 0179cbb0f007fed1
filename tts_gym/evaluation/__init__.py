"""The evaluation protocol: orders, the evaluator, results."""

from tts_gym.evaluation.orders import protocol_orders
from tts_gym.evaluation.protocol import evaluate, run_handle_episodes
from tts_gym.evaluation.result import EvalResult

__all__ = ["EvalResult", "evaluate", "protocol_orders", "run_handle_episodes"]
