"""RL baselines: wrappers pass check_env, the SB3 adapter, save -> load -> evaluate, training."""

from __future__ import annotations

import json
import warnings
import zipfile

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from agents.rl.macro import (
    ANSWER,
    DEEPEN_ALL,
    DEEPEN_LEADERS,
    N_ACTIONS,
    PRUNE_DISSENTERS,
    SAMPLE,
    WIDEN,
    MacroActionEnv,
    make_macro_env,
)
from agents.rl.policy import RLController, numpy_network
from agents.rl.sb3_vec import SB3ReplayVecEnv
from agents.rl.train import Args, train
from agents.rl.wrappers import FlatAtomicObs
from tests.conftest import real_data_dir, requires_data
from tts_gym import evaluate, make_controller
from tts_gym.env import ReplayEnv
from tts_gym.env.vector_env import ReplayVectorEnv
from tts_gym.handle import QuestionHandle
from tts_gym.kernels.votes import majority_py
from tts_gym.store import load_store
from tts_gym.testing import tiny_questions, tiny_store, write_store_json


@pytest.fixture(autouse=True)
def _no_spec_warning():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not having a spec.*")
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version.*")
        yield


def test_macro_env_passes_both_check_envs(tiny):
    env = make_macro_env(tiny, max_branches=6, render_mode="ansi")
    check_env(env)
    sb3_check_env(env)


def test_flat_atomic_obs_passes_both_check_envs(tiny):
    env = FlatAtomicObs(ReplayEnv(store=tiny, max_branches=4, illegal_action="ignore"))
    check_env(env)
    sb3_check_env(env)
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs)


def _leader(answers, finished, pruned):
    """The documented leader: majority of final answers, else of unpruned latest answers."""
    finals = [a for a, f in zip(answers, finished, strict=True) if f]
    if finals:
        return majority_py(finals)
    return majority_py([a for a, p in zip(answers, pruned, strict=True) if not p and a])


def test_macro_actions_are_the_documented_atomic_primitives():
    """A macro sequence charges exactly what the same primitives charge on a twin handle."""
    store = tiny_store(5, questions=2, branches=12, max_probes=8)
    env = make_macro_env(store, max_branches=12, illegal_action="raise")
    twin = ReplayEnv(store=store, max_branches=12)
    options = {"question": 1, "shuffle_seed": 3}
    env.reset(options=options)
    twin.reset(options=options)
    h = QuestionHandle(twin, record_trace=False)
    answers: list = []
    finished: list = []
    pruned: list = []
    plan = [WIDEN] * 5 + [DEEPEN_ALL, DEEPEN_LEADERS, SAMPLE, PRUNE_DISSENTERS, DEEPEN_ALL]
    plan += [SAMPLE, DEEPEN_ALL]
    taken = 0
    for action in plan:
        if not env.action_masks()[action]:
            continue
        taken += 1
        lead = _leader(answers, finished, pruned)
        assert env.core.leader == lead
        live = [i for i in range(len(answers)) if not pruned[i] and not finished[i]]
        env.step(action)
        if action == WIDEN:
            a, _slot, fin = h.probe_new()
            answers.append(a)
            finished.append(fin)
            pruned.append(False)
        if action == SAMPLE:
            answers.append(h.full_read())
            finished.append(True)
            pruned.append(False)
        for i in live:
            if action == DEEPEN_ALL or (action == DEEPEN_LEADERS and answers[i] == lead):
                answers[i], finished[i] = h.probe_more(i)
            elif action == PRUNE_DISSENTERS and answers[i] != lead:
                h.prune(i)
                pruned[i] = True
        assert twin.tokens_used == env.base.tokens_used
        assert env.core.answers == answers and env.core.pruned == pruned
    assert taken >= 9
    lead = _leader(answers, finished, pruned)
    _obs, reward, terminated, _tr, info = env.step(ANSWER)
    assert terminated and info["answer"] == lead
    assert reward == (1.0 if lead == store.gold_string(1) else 0.0)


def test_macro_mask_and_leader_rules(tiny):
    env = make_macro_env(tiny, max_branches=8, illegal_action="raise")
    env.reset(options={"question": 0, "shuffle_seed": 0})
    assert env.action_masks().tolist() == [1, 1, 0, 0, 0, 1]
    with pytest.raises(ValueError, match="Illegal macro action 2"):
        env.step(DEEPEN_ALL)
    for _ in range(8):
        env.step(WIDEN)
    assert env.action_masks()[WIDEN] == 0  # all 8 branches opened
    assert env.action_masks()[SAMPLE] == 0
    core = env.core
    if core.finals:
        assert core.leader == _leader(core.answers, core.finished, core.pruned)


def test_macro_env_answers_at_its_step_limit(tiny):
    env = make_macro_env(tiny, max_branches=8, max_macro_steps=3)
    env.reset(seed=0)
    env.step(WIDEN)
    env.step(WIDEN)
    _obs, _r, terminated, truncated, info = env.step(WIDEN)
    assert terminated and not truncated and "correct" in info


def test_sb3_adapter_resets_inside_the_ending_step(tiny):
    venv = SB3ReplayVecEnv(ReplayVectorEnv(3, store=tiny, max_branches=4))
    venv.seed(0)
    venv.reset()
    venv.step_async(np.array([2, 2, 0]))
    obs, rewards, dones, infos = venv.step_wait()
    assert dones.tolist() == [False, False, True]
    assert "terminal_observation" in infos[2] and infos[2]["terminal_observation"]["status"][0] == 0
    assert obs["status"][2].tolist() == [0, 0, 0, 0]  # already the next episode
    assert rewards.dtype == np.float32
    masks = np.stack(venv.env_method("action_masks"))
    assert masks.shape == (3, 15) and masks[:, 0].all()


def test_maskable_ppo_runs_on_the_native_vector_env(tiny):
    from sb3_contrib import MaskablePPO

    venv = SB3ReplayVecEnv(ReplayVectorEnv(4, store=tiny, max_branches=4))
    model = MaskablePPO("MultiInputPolicy", venv, n_steps=16, batch_size=32, n_epochs=1, seed=0)
    model.learn(64)
    assert model.num_timesteps >= 64


@pytest.mark.parametrize("algo", ["ppo", "maskable-ppo", "dqn"])
def test_save_load_evaluate_round_trip(tmp_path, tiny, algo):
    out = tmp_path / algo
    args = Args(
        algo=algo,
        timesteps=256,
        out=str(out),
        store=tiny,
        n_envs=2,
        n_steps=64,
        batch_size=64,
        max_branches=8,
        max_macro_steps=16,
        progress=False,
        checkpoint_every=128,
    )
    config = train(args)
    assert (out / "model.zip").is_file() and (out / "progress.csv").is_file()
    assert any((out / "checkpoints").iterdir())
    assert json.loads((out / "config.json").read_text())["algo"] == algo == config["algo"]
    ctrl = make_controller(f"rl:{out / 'model.zip'}")
    assert isinstance(ctrl, RLController)
    # the numpy copy of the network gives the model's own greedy actions
    rng = np.random.default_rng(0)
    for _ in range(20):
        obs = rng.random(20).astype(np.float32)
        full = np.ones(N_ACTIONS, np.int8)
        if algo == "maskable-ppo":
            want, _ = ctrl.model.predict(obs, deterministic=True, action_masks=full.astype(bool))
        else:
            want, _ = ctrl.model.predict(obs, deterministic=True)
        assert ctrl.act(obs, full) == int(want)
    scores = numpy_network(ctrl.model, algo)(np.zeros(20, np.float32))
    assert scores.shape == (N_ACTIONS,)
    result = evaluate(ctrl, tiny, seeds=3, max_branches=8)
    assert result.correct.shape == (3, tiny.n_questions)
    # evaluation replays exactly the policy's episodes in the training env
    env = make_macro_env(tiny, max_branches=8, max_macro_steps=16, illegal_action="raise")
    for s in range(3):
        for q in range(tiny.n_questions):
            obs, _ = env.reset(options={"question": q, "shuffle_seed": s})
            done = False
            while not done:
                obs, _r, done, _t, info = env.step(ctrl.act(obs, env.action_masks()))
            assert info["tokens"] == result.tokens[s, q]
            assert info["correct"] == bool(result.correct[s, q])


def test_cli_train_then_eval(tmp_path, capsys):
    from tts_gym.cli import main

    data = tmp_path / "data"
    write_store_json(data / "tiny" / "aime24.json", tiny_questions(0))
    out = tmp_path / "run"
    argv = [
        "train-rl",
        "--algo",
        "ppo",
        "--timesteps",
        "64",
        "--models",
        "tiny",
        "--out",
        str(out),
        "--data-dir",
        str(data),
        "--n-envs",
        "2",
        "--n-steps",
        "32",
        "--batch-size",
        "32",
        "--no-progress",
        "--seed",
        "3",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model"].endswith("model.zip")
    assert (
        main(
            [
                "eval",
                f"rl:{out / 'model.zip'}",
                "--model",
                "tiny",
                "--benchmark",
                "aime24",
                "--data-dir",
                str(data),
                "--seeds",
                "2",
                "--workers",
                "1",
                "--json",
            ]
        )
        == 0
    )
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["controller"] == "rl-ppo" and row["path"] == "handle"


def fake_sb3_archive(path):
    """A zip with the members every SB3 model.zip holds (enough for the up-front checks)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data", "{}")
        archive.writestr("policy.pth", b"")


def test_missing_config_is_explained(tmp_path):
    fake_sb3_archive(tmp_path / "model.zip")
    with pytest.raises(FileNotFoundError, match="config.json"):
        make_controller(f"rl:{tmp_path / 'model.zip'}")


GOOD_CONFIG = {
    "algo": "ppo",
    "max_branches": 8,
    "max_macro_steps": 16,
    "cost_weight": 1e-6,
    "timesteps": 64,
}


@pytest.mark.parametrize(
    "archive, config, message",
    [
        (b"not a zip", GOOD_CONFIG, "not a stable-baselines3 model archive"),
        ("zip-without-members", GOOD_CONFIG, "no data, policy.pth inside"),
        ("sb3", "{truncated", "is not valid JSON"),
        ("sb3", [1, 2], "must hold a JSON object"),
        ("sb3", {"algo": "ppo"}, "lacks max_branches, max_macro_steps, cost_weight, timesteps"),
        ("sb3", {**GOOD_CONFIG, "algo": "a2c"}, "names algo 'a2c'"),
        ("sb3", {**GOOD_CONFIG, "actions": ["ANSWER", "JUMP"]}, "lists macro actions"),
        ("sb3", GOOD_CONFIG, "could not be loaded as PPO"),  # members present, contents broken
    ],
)
def test_bad_model_files_are_one_clear_error(tmp_path, capsys, archive, config, message):
    from tts_gym.cli import main

    model = tmp_path / "model.zip"
    if archive == "sb3":
        fake_sb3_archive(model)
    elif archive == "zip-without-members":
        with zipfile.ZipFile(model, "w") as z:
            z.writestr("other", "x")
    else:
        model.write_bytes(archive)
    text = config if isinstance(config, str) else json.dumps(config)
    (tmp_path / "config.json").write_text(text)
    data = tmp_path / "data"
    write_store_json(data / "tiny" / "aime24.json", tiny_questions(0))
    argv = ["eval", f"rl:{model}", "--model", "tiny", "--benchmark", "aime24"]
    assert main([*argv, "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def mean_reward(env: MacroActionEnv, act, episodes: int, seed: int) -> float:
    total = 0.0
    for e in range(episodes):
        obs, _ = env.reset(seed=seed + e)
        done = False
        while not done:
            obs, r, term, trunc, _ = env.step(act(obs, env.action_masks()))
            total += r
            done = term or trunc
    return total / episodes


@pytest.mark.slow
@requires_data
def test_short_training_beats_a_random_masked_policy(tmp_path):
    store = load_store("Qwen3-8B", "aime24", real_data_dir())
    args = Args(
        algo="maskable-ppo",
        timesteps=16384,  # 4096 steps were not enough once SAMPLE joined the actions
        out=str(tmp_path),
        store=store,
        n_envs=4,
        n_steps=256,
        batch_size=256,
        progress=False,
        checkpoint_every=0,
        seed=1,
    )
    train(args)
    ctrl = RLController(tmp_path / "model.zip")
    env = make_macro_env(store)
    rng = np.random.default_rng(0)
    trained = mean_reward(env, ctrl.act, 150, 10_000)
    rand = mean_reward(env, lambda o, m: int(rng.choice(np.flatnonzero(m))), 150, 10_000)
    assert trained > rand + 0.1, (trained, rand)


@pytest.mark.parametrize("module", ["agents.rl.macro", "agents.rl.wrappers", "agents.rl.sb3_vec"])
def test_docstring_examples(module):
    """The usage examples in the RL modules' docstrings run (pytest collects only tts_gym's)."""
    import doctest
    import importlib

    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(importlib.import_module(module), optionflags=flags)
    assert result.attempted > 0 and result.failed == 0


class FiveActionMacroEnv(gym.Wrapper):
    """The macro env as it was before SAMPLE (actions 0-4), to make a model of that time."""

    def __init__(self, env):
        super().__init__(env)
        self.action_space = gym.spaces.Discrete(5)

    def action_masks(self):
        return self.env.action_masks()[:5]


def test_models_trained_before_sample_still_evaluate(tmp_path, tiny):
    env = FiveActionMacroEnv(make_macro_env(tiny, max_branches=8, max_macro_steps=16))
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=32, n_epochs=1, seed=0)
    model.learn(32)
    model.save(tmp_path / "model.zip")
    config = {**GOOD_CONFIG, "max_branches": 8, "max_macro_steps": 16}
    config["actions"] = ["ANSWER", "WIDEN", "DEEPEN_ALL", "DEEPEN_LEADERS", "PRUNE_DISSENTERS"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    ctrl = make_controller(f"rl:{tmp_path / 'model.zip'}")
    assert ctrl.n_actions == 5
    assert ctrl.act(np.zeros(20, np.float32), np.array([0, 0, 0, 0, 0, 1], np.int8)) != SAMPLE
    result = evaluate(ctrl, tiny, seeds=2, max_branches=8, path="handle", traces=True)
    ops = {step["op"] for row in result.traces for trace in row for step in trace}
    assert "full_read" not in ops
    # a config without "actions" (the very first models) reads as the same five
    del config["actions"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert make_controller(f"rl:{tmp_path / 'model.zip'}").n_actions == 5
