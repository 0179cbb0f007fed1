"""``tts_gym/ReplayMacro-v0``: the macro-action env under its own id, in the core package.

The env moved from ``agents.rl.macro`` to :mod:`tts_gym.env.macro_env`; the registered id, the
old import path and the old factory must give the same episodes, both checkers must pass on the
made env and on ``.unwrapped``, and ``import tts_gym`` plus a macro episode must import neither
``agents`` nor torch. README's tour, the first Gymnasium loop a user runs, prints the episode
return.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import tts_gym  # noqa: F401  (registers the envs)
from tests.conftest import real_data_dir, requires_data
from tts_gym.env import ReplayEnv
from tts_gym.env.macro_core import ANSWER, N_ACTIONS, SAMPLE, WIDEN
from tts_gym.env.macro_env import MacroActionEnv
from tts_gym.testing import tiny_store

ENV_ID = "tts_gym/ReplayMacro-v0"
WRAPPED_NOTE = "is different from the unwrapped version"


def _checker_warnings(env: gym.Env) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env)
        sb3_check_env(env, warn=True)
    return [str(w.message) for w in caught if not issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize("render_mode", [None, "ansi", "rgb_array"])
def test_registered_id_passes_both_checkers(render_mode):
    env = gym.make(ENV_ID, store=tiny_store(), max_branches=4, render_mode=render_mode)
    assert isinstance(env.unwrapped, MacroActionEnv) and env.unwrapped.spec.id == ENV_ID
    notes = _checker_warnings(env)  # gymnasium remakes the env for every declared render mode
    assert all(WRAPPED_NOTE in n for n in notes), notes
    assert _checker_warnings(env.unwrapped) == []
    env.close()


def test_registration_has_no_time_limit_because_the_env_answers_by_itself():
    assert gym.spec(ENV_ID).max_episode_steps is None
    env = gym.make(ENV_ID, store=tiny_store(), max_branches=4, max_macro_steps=5)
    env.reset(seed=0)
    ends = []
    for _ in range(5):  # DEEPEN_ALL is illegal before any branch is open: counted no-ops
        _obs, reward, terminated, truncated, info = env.step(2)
        ends.append((terminated, truncated))
    assert ends[:-1] == [(False, False)] * 4 and ends[-1] == (True, False)
    assert "answer" in info and info["illegal_action"] is True


def _episode(env: gym.Env, seed: int, actions_rng: np.random.Generator) -> list:
    obs, info = env.reset(seed=seed)
    out = [(obs.tolist(), info["tokens"], info["question"])]
    done = False
    while not done:
        mask = env.unwrapped.action_masks()
        legal = np.flatnonzero(mask)
        a = int(actions_rng.choice(legal[1:])) if len(legal) > 1 and len(out) < 12 else ANSWER
        obs, r, term, trunc, info = env.step(a)
        done = term or trunc
        out.append((a, obs.tolist(), r, term, trunc, info["tokens"], info.get("answer")))
    return out


def test_the_id_the_old_path_and_the_factory_give_the_same_episodes():
    from agents.rl import macro

    assert macro.MacroActionEnv is MacroActionEnv  # one class, re-exported
    store = tiny_store(3, questions=3, branches=10)
    made = gym.make(ENV_ID, store=store, max_branches=6, cost_weight=1e-4, max_macro_steps=20)
    factory = macro.make_macro_env(store, cost_weight=1e-4, max_branches=6, max_macro_steps=20)
    around = MacroActionEnv(ReplayEnv(store=store, max_branches=6, cost_weight=1e-4),
                            max_macro_steps=20)
    for seed in range(4):
        runs = [_episode(e, seed, np.random.default_rng(seed)) for e in (made, factory, around)]
        assert runs[0] == runs[1] == runs[2]


def test_constructor_errors_name_the_fix():
    store = tiny_store()
    with pytest.raises(TypeError, match="pass these to the ReplayEnv you build"):
        MacroActionEnv(ReplayEnv(store=store), cost_weight=1e-3)
    with pytest.raises(ValueError, match="either store=ReplayStore or both model= and benchmark="):
        gym.make(ENV_ID)
    with pytest.raises(ValueError, match="max_macro_steps"):
        MacroActionEnv(store=store, max_macro_steps=0)
    with pytest.raises(ValueError, match="'ansi', 'rgb_array' or None"):
        MacroActionEnv(store=store, render_mode="human")


def test_sb3_finds_the_masks_through_gym_make():
    from sb3_contrib import MaskablePPO

    env = gym.make(ENV_ID, store=tiny_store(), max_branches=4)
    model = MaskablePPO("MlpPolicy", env, n_steps=32, batch_size=32, n_epochs=1, seed=0,
                        device="cpu")
    model.learn(32)
    masks = model.get_env().env_method("action_masks")
    assert masks[0].shape == (N_ACTIONS,) and masks[0][ANSWER] == 1


def test_core_imports_neither_agents_nor_torch():
    code = (
        "import sys, gymnasium as gym, tts_gym\n"
        "from tts_gym.testing import tiny_store\n"
        "env = gym.make('tts_gym/ReplayMacro-v0', store=tiny_store(), max_branches=4)\n"
        f"env.reset(seed=0); env.step({WIDEN}); env.step({SAMPLE})\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'agents', 'torch', 'stable_baselines3', 'sb3_contrib'})\n"
        "print(__import__('json').dumps(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ), check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_docstring_is_the_documentation_page():
    import doctest

    from tts_gym.env import macro_env

    doc = MacroActionEnv.__doc__
    for section in ("## Description", "## Action Space", "## Observation Space", "## Rewards",
                    "## Starting State", "## Episode End", "## Arguments", "## Version History"):
        assert section in doc
    result = doctest.testmod(macro_env, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@requires_data
def test_the_readme_tour_prints_the_episode_return(tmp_path):
    """README's tour ends with the episode return, the sum of rewards: 1{correct} minus
    cost_weight (1e-6) times the tokens charged, not the last step's reward."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    tour = readme.split("## A five-minute tour", 1)[1]
    code = re.search(r"```python\n(.*?)```", tour, re.S).group(1)
    script = tmp_path / "tour.py"
    script.write_text(code)
    env = {**os.environ, "TTS_GYM_DATA": str(real_data_dir())}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                          check=True)
    answer, correct, tokens, printed = done.stdout.split()
    want = (1.0 if correct == "True" else 0.0) - 1e-6 * int(tokens)
    assert float(printed) == round(want, 3)
    assert "episode_return += reward" in code


def test_sb3_make_vec_env_with_the_string_id():
    """SB3's make_vec_env asks for render_mode="rgb_array" when given an id: supported now."""
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env(ENV_ID, n_envs=2, seed=0,
                        env_kwargs={"store": tiny_store(), "max_branches": 4})
    obs = venv.reset()
    assert obs.shape == (2, 20) and venv.render_mode == "rgb_array"
    assert venv.render().dtype == np.uint8
    np.testing.assert_array_equal(np.stack(venv.env_method("action_masks")),
                                  [[1, 1, 0, 0, 0, 1]] * 2)
