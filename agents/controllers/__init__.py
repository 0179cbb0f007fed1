"""The published test-time scaling controllers, one per module.

| name             | class                            | source                                   |
|------------------|----------------------------------|------------------------------------------|
| ``sc``           | :class:`SelfConsistency`         | Wang et al., ICLR 2023                   |
| ``asc``          | :class:`AdaptiveSelfConsistency` | Aggarwal et al., 2023                    |
| ``esc``          | :class:`EarlyStoppingSelfConsistency` | Li et al., 2024                     |
| ``parallel-probe`` | :class:`ParallelProbe`         | probing baseline of AutoTTS (2026)       |
| ``cmc``          | :class:`ConfidenceMomentumController` | discovered in AutoTTS (2026)        |

Each is registered in the ``tts_gym.controllers`` entry-point group under its name.
"""

from agents.controllers.asc import AdaptiveSelfConsistency
from agents.controllers.cmc import ConfidenceMomentumController
from agents.controllers.esc import EarlyStoppingSelfConsistency
from agents.controllers.parallel_probe import ParallelProbe
from agents.controllers.sc import SelfConsistency

__all__ = [
    "AdaptiveSelfConsistency",
    "ConfidenceMomentumController",
    "EarlyStoppingSelfConsistency",
    "ParallelProbe",
    "SelfConsistency",
]
