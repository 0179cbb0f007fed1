"""Read a stable-baselines3 ``model.zip`` into a numpy network, without torch.

Evaluating a trained policy (``tts-gym eval rl:DIR/model.zip``) needs only its greedy action,
which for the MLP policies ``tts-gym train-rl`` trains is a few matrix products. This module
reads the weights straight from the archive, so evaluation needs numpy and the standard library
only (not the ``rl`` extra):

- ``model.zip`` (SB3's ``save``) holds ``data`` (JSON: policy class, ``policy_kwargs``, spaces)
  and ``policy.pth``, the policy's ``state_dict`` written by ``torch.save``;
- ``policy.pth`` is itself a zip: ``<name>/data.pkl`` pickles an ``OrderedDict`` of tensors,
  each a ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` call whose
  storage (a persistent id ``("storage", torch.FloatStorage, key, location, numel)``) is the
  raw little-endian bytes of ``<name>/data/<key>``.

The unpickler accepts only those few globals (an ``OrderedDict``, the tensor rebuild function,
storage types), so reading an archive runs no code from it: safer than ``torch.load``.

Supported: the policies ``train-rl`` builds (default activation, flatten feature extractor):
PPO / MaskablePPO (``mlp_extractor.policy_net.*`` with Tanh, then ``action_net``: logits) and
DQN (``q_net.q_net.*`` with ReLU: Q-values). Anything else returns None from
:func:`load_numpy_policy`, and the caller falls back to SB3 and torch.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
"""torch's (legacy) storage class names, as pickled by ``torch.save`` -> numpy dtype."""
ACTIVATIONS = {"ppo": "tanh", "maskable-ppo": "tanh", "dqn": "relu"}
"""SB3's default activation of each policy (``ActorCriticPolicy``: Tanh, ``QNetwork``: ReLU)."""
HEADS = {
    "ppo": ("mlp_extractor.policy_net.", "action_net."),
    "maskable-ppo": ("mlp_extractor.policy_net.", "action_net."),
    "dqn": ("q_net.q_net.", None),
}
"""algo -> (prefix of the hidden layers, prefix of the output layer or None if it is the last
layer of the same Sequential)."""


class _Storage:
    """A tensor storage: the dtype and the archive member holding its bytes."""

    def __init__(self, dtype: Any, key: str) -> None:
        self.dtype = dtype
        self.key = key


def _rebuild_tensor(storage, offset, size, stride, *_rest):
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: a placeholder resolved later."""
    return ("tensor", storage, int(offset), tuple(size), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a torch ``state_dict`` with only the globals such a file needs."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) in (("torch._utils", "_rebuild_tensor_v2"),
                              ("torch._utils", "_rebuild_tensor")):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a state_dict")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        dtype = pid[1]
        if not isinstance(dtype, type) or dtype not in STORAGE_DTYPES.values():
            raise pickle.UnpicklingError(f"unexpected storage type {dtype!r}")
        return _Storage(dtype, str(pid[2]))


def read_state_dict(pth: bytes) -> dict[str, np.ndarray]:
    """The tensors of a ``torch.save``-d state_dict (zip format, torch >= 1.6) as numpy arrays.

    Raises:
        ValueError: Not such a file (the message says what is wrong).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(pth))
    except zipfile.BadZipFile:
        raise ValueError("policy.pth is not a torch zip archive") from None
    with archive:
        names = archive.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl")]
        if len(pkl) != 1:
            raise ValueError("policy.pth holds no data.pkl")
        root = pkl[0][: -len("data.pkl")]
        byteorder = "little"
        if f"{root}byteorder" in names:
            byteorder = archive.read(f"{root}byteorder").decode().strip()
        try:
            state = _StateDictUnpickler(io.BytesIO(archive.read(pkl[0]))).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError) as exc:
            raise ValueError(f"policy.pth: {exc}") from None
        if not isinstance(state, dict):
            raise ValueError("policy.pth does not hold a state_dict")
        out: dict[str, np.ndarray] = {}
        for key, value in state.items():
            if not (isinstance(value, tuple) and value and value[0] == "tensor"):
                raise ValueError(f"policy.pth entry {key!r} is not a tensor")
            _, storage, offset, size, stride = value
            dtype = np.dtype(storage.dtype).newbyteorder("<" if byteorder == "little" else ">")
            try:
                raw = archive.read(f"{root}data/{storage.key}")
            except KeyError:
                raise ValueError(f"policy.pth lacks the storage of {key!r}") from None
            flat = np.frombuffer(raw, dtype=dtype)
            itemsize = flat.itemsize
            needed = offset + 1 + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
            if any(n == 0 for n in size):
                needed = 0
            if needed > flat.size:
                raise ValueError(f"policy.pth: the storage of {key!r} is truncated")
            arr = np.lib.stride_tricks.as_strided(
                flat[offset:], shape=size, strides=[s * itemsize for s in stride]
            )
            out[key] = np.array(arr, dtype=dtype.newbyteorder("="))
    return out


class NumpyMLP:
    """``obs [F] -> scores [A]``: dense layers with an activation between them (float64).

    Picklable (plain numpy arrays), so evaluation workers receive it with the controller.

    Args:
        layers: ``(weight [out, in], bias [out])`` per layer, input to output.
        activation: ``"tanh"`` or ``"relu"``, applied after every layer but the last.
    """

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]], activation: str) -> None:
        self.layers = [(np.asarray(w, np.float64), np.asarray(b, np.float64)) for w, b in layers]
        self.activation = activation

    @property
    def n_inputs(self) -> int:
        return int(self.layers[0][0].shape[1])

    @property
    def n_outputs(self) -> int:
        return int(self.layers[-1][0].shape[0])

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, np.float64).reshape(-1)
        last = len(self.layers) - 1
        for i, (w, b) in enumerate(self.layers):
            x = w @ x + b
            if i < last:
                x = np.tanh(x) if self.activation == "tanh" else np.maximum(x, 0.0)
        return x


def _sequential(state: dict[str, np.ndarray], prefix: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The Linear layers ``prefix<i>.weight/bias`` of an ``nn.Sequential``, in index order."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.weight$")
    idx = sorted(int(m.group(1)) for k in state if (m := pattern.match(k)))
    layers = []
    for i in idx:
        bias = state.get(f"{prefix}{i}.bias")
        if bias is None:
            raise KeyError(f"{prefix}{i}.bias")
        layers.append((state[f"{prefix}{i}.weight"], bias))
    return layers


def load_numpy_policy(model_path: str | Path, algo: str) -> NumpyMLP | None:
    """The greedy-action network of an SB3 ``model.zip`` as a :class:`NumpyMLP`, or None when
    the archive holds an architecture this reader does not handle (custom activation or
    feature extractor).

    Raises:
        ValueError: The archive's ``data`` or ``policy.pth`` is damaged.
    """
    with zipfile.ZipFile(model_path) as archive:
        try:
            data = json.loads(archive.read("data"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"its data member is not JSON ({exc})") from None
        pth = archive.read("policy.pth")
    if not isinstance(data, dict):
        raise ValueError("its data member is not a JSON object")
    kwargs = data.get("policy_kwargs", {})
    if not isinstance(kwargs, dict) or set(kwargs) - {"net_arch"}:
        return None  # a custom activation / extractor: let SB3 rebuild the policy
    state = read_state_dict(pth)
    hidden_prefix, head_prefix = HEADS[algo]
    try:
        layers = _sequential(state, hidden_prefix)
        if head_prefix is not None:
            layers.append((state[head_prefix + "weight"], state[head_prefix + "bias"]))
    except KeyError as exc:
        raise ValueError(f"policy.pth lacks {exc.args[0]} for {algo}") from None
    if not layers:
        return None
    for (w, _), (w_next, _) in zip(layers, layers[1:], strict=False):
        if w.shape[0] != w_next.shape[1]:
            raise ValueError(f"policy.pth layer shapes do not chain ({w.shape}, {w_next.shape})")
    return NumpyMLP(layers, ACTIVATIONS[algo])
