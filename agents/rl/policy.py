"""A trained RL policy as a controller: ``make_controller("rl:DIR/model.zip")``.

:class:`RLController` drives the policy through the protocol's question handle with the very
:class:`~agents.rl.macro.MacroCore` the training env used, so the policy sees the same features
it was trained on. Actions are deterministic and always legal: MaskablePPO gets the mask; for PPO
and DQN the most probable (highest-Q) *legal* action is taken. At ``max_macro_steps`` it answers.

``DIR/config.json`` (written by :mod:`agents.rl.train` beside ``model.zip``) names the algorithm
and the macro-env settings. Only the handle path exists (``tts-gym eval`` picks it
automatically).

What evaluation needs: numpy and the standard library. The network is read straight from the
archive by :mod:`agents.rl.sb3_numpy` (no torch, no stable-baselines3) and applied as numpy
matrix products; it is picklable, so ``--workers`` processes receive it with the controller.
Only a policy with a custom activation or feature extractor (which ``tts-gym train-rl`` never
builds) falls back to loading the model with stable-baselines3, and needs the ``rl`` extra.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from agents.rl.macro import ACTION_NAMES, ANSWER, FEATURES, MacroCore
from agents.rl.sb3_numpy import NumpyMLP, load_numpy_policy
from agents.rl.train import ALGOS, CONFIG_NAME, algo_class
from tts_gym.extras import require_extra

REQUIRED_CONFIG = ("algo", "max_branches", "max_macro_steps", "cost_weight", "timesteps")
"""Keys of ``config.json`` an RL controller reads (``tts-gym train-rl`` writes them all)."""
SB3_ARCHIVE_MEMBERS = ("data", "policy.pth")
"""Files every stable-baselines3 ``model.zip`` holds."""
ALGO_CLASS_NAMES = {"ppo": "PPO", "maskable-ppo": "MaskablePPO", "dqn": "DQN"}
"""``--algo`` -> the SB3 / sb3-contrib class name (for messages; nothing is imported)."""
RETRAIN = "retrain with `tts-gym train-rl --out DIR` or pass an intact model.zip."


def read_config(model_path: str | Path) -> dict[str, Any]:
    """The training config saved beside ``model_path``, after checking both files.

    Raises:
        FileNotFoundError: The model or its ``config.json`` is missing.
        ValueError: The model is not an SB3 archive, or the config is not JSON, lacks a key
            the controller reads or names an unknown algorithm.
    """
    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"RL model {path} does not exist; train one with `tts-gym train-rl --out DIR` and "
            f"pass rl:DIR/model.zip."
        )
    check_archive(path)
    cfg = path.parent / CONFIG_NAME
    if not cfg.is_file():
        raise FileNotFoundError(
            f"{cfg} is missing: an RL model needs the config.json written beside it by "
            f"`tts-gym train-rl` (it names the algorithm and the macro-env settings)."
        )
    retrain = "; retrain with `tts-gym train-rl --out DIR`, which writes a complete one."
    try:
        config = json.loads(cfg.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{cfg} is not valid JSON ({exc}){retrain}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{cfg} must hold a JSON object{retrain}")
    missing = [k for k in REQUIRED_CONFIG if k not in config]
    if missing:
        raise ValueError(f"{cfg} lacks {', '.join(missing)}{retrain}")
    if config.get("action_space", "macro") != "macro":
        raise ValueError(
            f"{path} acts on the {config['action_space']} actions; the rl: controller plays "
            f"macro-action models only: score it with tts_gym.evaluate_policy(model, store, "
            f"actions={config['action_space']!r}) after loading it with stable-baselines3."
        )
    if config["algo"] not in ALGOS:
        raise ValueError(f"{cfg} names algo {config['algo']!r}, not one of {ALGOS}{retrain}")
    # models trained before SAMPLE existed list (or, older still, omit) the first five actions
    actions = config.setdefault("actions", list(ACTION_NAMES[:5]))
    if not (1 <= len(actions) <= len(ACTION_NAMES)) or list(ACTION_NAMES[: len(actions)]) != list(
        actions
    ):
        raise ValueError(
            f"{cfg} lists macro actions {actions}; this version knows {list(ACTION_NAMES)} "
            f"(a model must use a prefix of them){retrain}"
        )
    return config


def check_archive(path: Path) -> None:
    """Refuse a file that is not a stable-baselines3 model archive (before torch loads it)."""
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"RL model {path} is not a stable-baselines3 model archive (not a zip file); pass "
            f"the model.zip written by `tts-gym train-rl`."
        )
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    missing = [m for m in SB3_ARCHIVE_MEMBERS if m not in names]
    if missing:
        raise ValueError(
            f"RL model {path} is a zip file but not a stable-baselines3 model (no "
            f"{', '.join(missing)} inside); pass the model.zip written by `tts-gym train-rl`."
        )


class RLController:
    """Controller playing a trained SB3 policy over the macro actions.

    Args:
        model_path: ``DIR/model.zip`` written by ``tts-gym train-rl``.
    """

    def __init__(self, model_path: str | Path) -> None:
        self.model_path = str(model_path)
        self.config = read_config(model_path)
        self.algo = self.config["algo"]
        self.max_macro_steps = int(self.config["max_macro_steps"])
        self.n_actions = len(self.config["actions"])  # macro actions the network scores
        self.name = f"rl-{self.algo}"
        self._model = None
        self._mlp = self._numpy_network()

    def params(self) -> dict[str, Any]:
        return {
            "model": self.model_path,
            "algo": self.algo,
            "cost_weight": self.config["cost_weight"],
            "timesteps": self.config["timesteps"],
        }

    def _numpy_network(self) -> NumpyMLP | None:
        """The policy network read from the archive without torch (None: not a plain MLP)."""
        cls = ALGO_CLASS_NAMES[self.algo]
        try:
            mlp = load_numpy_policy(self.model_path, self.algo)
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise ValueError(
                f"RL model {self.model_path} could not be loaded as {cls} ({exc}); {RETRAIN}"
            ) from None
        if mlp is not None and (mlp.n_inputs, mlp.n_outputs) != (len(FEATURES), self.n_actions):
            raise ValueError(
                f"RL model {self.model_path} could not be loaded as {cls}: its network maps "
                f"{mlp.n_inputs} features to {mlp.n_outputs} actions, but the macro env has "
                f"{len(FEATURES)} features and its config.json lists {self.n_actions} actions; "
                f"{RETRAIN}"
            )
        return mlp

    @property
    def model(self):
        """The SB3 model (loaded on first use, on the CPU, one torch thread; needs the ``rl``
        extra). Evaluation does not need it: :meth:`act` uses the numpy network."""
        if self._model is None:
            modules = ["torch", "stable_baselines3"]
            if self.algo == "maskable-ppo":
                modules.append("sb3_contrib")
            require_extra("rl", f"loading {self.model_path} with stable-baselines3", modules)
            import torch

            torch.set_num_threads(1)
            cls = algo_class(self.algo)
            try:
                self._model = cls.load(self.model_path, device="cpu")
            except Exception as exc:  # SB3/torch raise many types for a damaged archive
                raise ValueError(
                    f"RL model {self.model_path} could not be loaded as {cls.__name__} "
                    f"({type(exc).__name__}: {str(exc) or 'truncated data'}); {RETRAIN}"
                ) from exc
        return self._model

    def act(self, obs: np.ndarray, mask: np.ndarray) -> int:
        """The deterministic legal action for a feature vector and an int8 mask.

        The greedy action of the policy (MaskablePPO's masked mode, PPO's most probable, DQN's
        highest Q) restricted to legal actions, computed with a numpy copy of the network.
        """
        if self._mlp is None:  # not a plain MLP: SB3 rebuilds the policy (needs torch)
            self._mlp = numpy_network(self.model, self.algo)
        scores = self._mlp(obs)
        legal = mask[: self.n_actions].astype(bool)  # actions newer than the model stay unused
        return int(np.argmax(np.where(legal, scores, -np.inf)))

    def solve(self, question: Any) -> str | None:
        """Play one episode on the question handle; submits and returns the leader."""
        core = MacroCore(question, int(self.config["max_branches"]), self.max_macro_steps)
        while True:
            result = core.apply(self.act(core.features(), core.action_masks()))
            if result is None and core.steps >= self.max_macro_steps:
                result = core.apply(ANSWER)  # the macro env's own rule at its step limit
            if result is not None:
                return result["answer"]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_model"] = None  # reloaded in the worker process (torch fallback only)
        if not isinstance(self._mlp, NumpyMLP):
            state["_mlp"] = None  # a torch closure: rebuilt in the worker
        return state


def numpy_network(model: Any, algo: str):
    """A numpy function ``obs [F] -> scores [A]`` equal to a loaded SB3 model's action logits
    (PPO, MaskablePPO) or Q-values (DQN); falls back to torch for non-MLP architectures.
    (:func:`agents.rl.sb3_numpy.load_numpy_policy` builds the same from the file, without
    torch.)"""
    import torch
    from torch import nn

    policy = model.policy
    if algo == "dqn":
        layers = list(policy.q_net.q_net)
    else:
        layers = [*policy.mlp_extractor.policy_net, policy.action_net]
    ops: list[tuple[str, Any, Any]] = []
    for layer in layers:
        if isinstance(layer, nn.Linear):
            w = layer.weight.detach().numpy().astype(np.float64)
            b = layer.bias.detach().numpy().astype(np.float64)
            ops.append(("linear", w, b))
        elif isinstance(layer, (nn.Tanh, nn.ReLU)):
            ops.append((type(layer).__name__, None, None))
        else:
            return _torch_network(model, algo)

    def forward(obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, np.float64).reshape(-1)
        for kind, w, b in ops:
            if kind == "linear":
                x = w @ x + b
            elif kind == "Tanh":
                x = np.tanh(x)
            else:
                x = np.maximum(x, 0.0)
        return x

    if not isinstance(getattr(policy, "features_extractor", None), torch.nn.Flatten) and (
        type(getattr(policy, "features_extractor", None)).__name__ != "FlattenExtractor"
    ):
        return _torch_network(model, algo)
    return forward


def _torch_network(model: Any, algo: str):
    import torch

    def forward(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            t, _ = model.policy.obs_to_tensor(obs)
            if algo == "dqn":
                return model.policy.q_net(t)[0].numpy()
            return model.policy.get_distribution(t).distribution.logits[0].numpy()

    return forward


def load_rl_controller(value: str, params: dict[str, Any]) -> RLController:
    """Entry point of the ``rl`` controller scheme: ``rl:DIR/model.zip`` (no parameters)."""
    if params:
        raise ValueError(f"rl:MODEL.zip takes no --param, got {sorted(params)}.")
    return RLController(value)
