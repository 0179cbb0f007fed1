"""``tts-gym train-rl``: --tensorboard, --eval-freq (best model kept), --exp-name, --actions.

Each run trains a few hundred steps on a tiny store through the real command line. The periodic
evaluation is checked against a re-evaluation of the saved best model with
:func:`tts_gym.evaluate_policy`, and the TensorBoard log is read back with TensorBoard's reader.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from agents.rl.eval_callback import protocol_reward
from tts_gym import evaluate, evaluate_policy, make_controller
from tts_gym.store import load_store
from tts_gym.testing import tiny_questions, write_store_json

BASE = ["--algo", "maskable-ppo", "--models", "tiny", "--n-envs", "2", "--n-steps", "32",
        "--batch-size", "32", "--n-epochs", "1", "--max-branches", "8", "--max-macro-steps", "16",
        "--no-progress", "--checkpoint-every", "0", "--seed", "1"]


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data"
    write_store_json(folder / "tiny" / "aime24.json", tiny_questions(3, questions=5, branches=12))
    return folder


def _train(capsys, data, out, *extra):
    from tts_gym.cli import main

    argv = ["train-rl", *BASE, "--data-dir", str(data), "--out", str(out), *extra]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return summary, json.loads((out / "config.json").read_text())


def _scalars(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_eval_freq_keeps_the_best_model_and_tensorboard_logs_it(tmp_path, capsys, data):
    out, tb = tmp_path / "run", tmp_path / "tb"
    summary, config = _train(capsys, data, out, "--timesteps", "256", "--eval-freq", "64",
                             "--eval-seeds", "3", "--tensorboard", str(tb), "--exp-name", "mine")
    # --- the evaluations: every 64 steps, the best one kept -----------------------------------
    record = json.loads((out / "evaluations.json").read_text())
    evals = record["evaluations"]
    assert [e["timesteps"] for e in evals] == [64, 128, 192, 256]
    best = max(evals, key=lambda e: e["reward"])  # the first of equal rewards is kept
    assert record["best"]["timesteps"] == best["timesteps"] == config["best_model"]["timesteps"]
    store = load_store("tiny", "aime24", data)
    for e in evals:
        assert e["reward"] == pytest.approx(protocol_reward(e["accuracy"], e["avg_tokens"], 1e-6))
    # re-scoring the saved best model gives the recorded numbers, on both evaluation paths
    from sb3_contrib import MaskablePPO

    model = MaskablePPO.load(out / "best_model.zip", device="cpu")
    again = evaluate_policy(model, store, 3, max_branches=8, max_macro_steps=16)
    assert (again.accuracy, again.avg_tokens) == (best["accuracy"], best["avg_tokens"])
    ctrl = evaluate(make_controller(f"rl:{out / 'best_model.zip'}"), store, 3, max_branches=8)
    assert (ctrl.accuracy, ctrl.avg_tokens) == (best["accuracy"], best["avg_tokens"])
    # --- TensorBoard: SB3's own scalars and the evaluation, under the run name -----------------
    assert summary["exp_name"] == config["exp_name"] == "mine"
    assert config["run_name"].startswith("mine__1__")
    runs = list(tb.iterdir())
    assert [r.name for r in runs] == [config["run_name"]]
    assert config["tensorboard_dir"] == str(runs[0])
    scalars = _scalars(runs[0])
    assert "train/loss" in scalars and "time/fps" in scalars
    assert [v for _s, v in scalars["eval/reward"]] == pytest.approx([e["reward"] for e in evals])
    # the CSV log has the same evaluation column
    header = (out / "progress.csv").read_text().splitlines()[0].split(",")
    assert "eval/reward" in header


def test_exp_name_defaults_and_no_evaluation_without_eval_freq(tmp_path, capsys, data):
    out = tmp_path / "run"
    summary, config = _train(capsys, data, out, "--timesteps", "64", "--cost-weight", "1e-7")
    assert config["exp_name"] == "maskable-ppo-macro-cw1e-07" == summary["exp_name"]
    assert config["tensorboard_dir"] is None and "best_model" not in config
    assert not (out / "best_model.zip").exists() and not (out / "evaluations.json").exists()
    assert config["action_space"] == "macro" and config["env"] == "tts_gym/ReplayMacro-v0"


def test_atomic_actions_train_and_evaluate(tmp_path, capsys, data):
    from sb3_contrib import MaskablePPO

    from tts_gym.cli import main

    out = tmp_path / "atomic"
    _summary, config = _train(capsys, data, out, "--timesteps", "128", "--actions", "atomic")
    assert config["action_space"] == "atomic" and config["env"] == "tts_gym/Replay-v0"
    model = MaskablePPO.load(out / "model.zip", device="cpu")
    assert sorted(model.observation_space.spaces) == ["agree", "depth", "fresh", "label",
                                                      "status", "totals", "vote"]
    assert model.action_space.n == 3 + 3 * 8
    store = load_store("tiny", "aime24", data)
    result = evaluate_policy(model, store, 2, actions="atomic", max_branches=8)
    assert result.correct.shape == (2, store.n_questions) and result.tokens.min() >= 0
    with pytest.raises(ValueError, match="pass actions='atomic'"):
        evaluate_policy(model, store, 2, max_branches=8)
    with pytest.raises(ValueError, match="trained with max_branches=8; pass max_branches=8"):
        evaluate_policy(model, store, 2, actions="atomic")
    # the rl: controller plays macro-action models only, and says what to do instead
    argv = ["eval", f"rl:{out / 'model.zip'}", "--model", "tiny", "--benchmark", "aime24",
            "--data-dir", str(tmp_path / "data")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "acts on the atomic actions" in err and "evaluate_policy" in err


def test_bad_values_are_refused(tmp_path, capsys, data):
    from agents.rl.train import Args, train

    with pytest.raises(SystemExit):
        _train(capsys, data, tmp_path / "x", "--actions", "both")
    assert "invalid choice: 'both'" in capsys.readouterr().err
    for field, value, message in [("eval_freq", -1, "--eval-freq must be >= 0"),
                                  ("eval_seeds", 0, "--eval-seeds must be >= 1")]:
        with pytest.raises(ValueError, match=message):
            train(Args(out=str(tmp_path / "y"), **{field: value}))
    assert not (tmp_path / "y").exists()  # nothing written


def test_the_rewards_a_tensorboard_run_reports_are_the_monitor_rewards(tmp_path, capsys, data):
    """rollout/ep_rew_mean in TensorBoard is SB3's mean of the Monitor's episode returns."""
    out, tb = tmp_path / "run", tmp_path / "tb"
    _summary, config = _train(capsys, data, out, "--timesteps", "128", "--tensorboard", str(tb))
    scalars = _scalars(tb / config["run_name"])
    rewards = [v for _s, v in scalars["rollout/ep_rew_mean"]]
    assert rewards and all(np.isfinite(rewards))
    assert rewards[-1] == pytest.approx(config["final_mean_episode_reward"], rel=1e-6)
