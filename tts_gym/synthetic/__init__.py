"""Synthetic replay stores: a calibrated generative model of reasoning trajectories.

- :class:`SyntheticParams` (``params.py``): the model's meaningful parameters, presets per model.
- :func:`generate_store` (``generate.py``): draw an ordinary :class:`~tts_gym.store.ReplayStore`.
- :func:`calibrate` (``calibrate.py``): measure a real store's statistics and fit parameters.
- ``fidelity.py``: controllers on a real store vs its calibrated twin.
- ``env.py``: ``tts_gym/Synthetic-v0``.
"""

from tts_gym.synthetic.generate import (
    generate_store,
    iter_store_chunks,
    store_to_json,
    with_max_probes,
)
from tts_gym.synthetic.params import (
    DEFAULT_PRESET,
    SyntheticParams,
    load_preset,
    preset_names,
)

__all__ = [
    "DEFAULT_PRESET",
    "SyntheticParams",
    "generate_store",
    "iter_store_chunks",
    "load_preset",
    "preset_names",
    "store_to_json",
    "with_max_probes",
]
