"""Missing extras: one sentence naming the extra, before any work or folder; ``eval rl:`` needs
no torch at all (the network is read from the archive by :mod:`agents.rl.sb3_numpy`).

Each case runs the CLI in a fresh interpreter where the extra's packages are made unimportable
(``sys.modules[name] = None``, what Python itself does for a module known to be absent), so the
check sees exactly what a user without the extra sees.
"""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tts_gym.testing import tiny_questions, write_store_json

RL = ("torch", "stable_baselines3", "sb3_contrib")
ROOT = Path(__file__).resolve().parents[1]


def run_cli(argv: list[str], hidden: tuple[str, ...], cwd: Path) -> subprocess.CompletedProcess:
    """``tts-gym ARGV`` in a subprocess in which the modules ``hidden`` cannot be imported."""
    code = (
        "import sys\n"
        f"for name in {list(hidden)!r}:\n"
        "    sys.modules[name] = None\n"
        "from tts_gym.cli import main\n"
        "code = main(sys.argv[1:])\n"
        f"leaked = [m for m in {list(hidden)!r} if sys.modules.get(m) is not None]\n"
        "assert not leaked, leaked\n"
        "sys.exit(code)\n"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    import os

    for key in ("HOME", "XDG_CACHE_HOME", "TTS_GYM_CACHE", "NUMBA_CACHE_DIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_sentence(stderr: str, *needles: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("data")
    write_store_json(data / "tiny" / "aime24.json", tiny_questions(0))
    return data


@pytest.mark.parametrize(
    "algo, hidden, names",
    [
        ("ppo", ("torch",), "needs torch,"),
        ("maskable-ppo", ("sb3_contrib",), "needs sb3-contrib,"),
        ("dqn", RL, "needs torch and stable-baselines3,"),
    ],
)
def test_train_rl_without_the_rl_extra(tmp_path, tiny_data, algo, hidden, names):
    out = tmp_path / "run"
    argv = ["train-rl", "--algo", algo, "--models", "tiny", "--data-dir", str(tiny_data)]
    proc = run_cli([*argv, "--out", str(out), "--timesteps", "64"], hidden, tmp_path)
    assert proc.returncode == 2
    one_sentence(proc.stderr, "tts-gym train-rl", names, 'pip install "tts-gym[rl]"')
    assert not out.exists()


def _trained(tmp_path: Path, store, algo: str) -> Path:
    from agents.rl.train import Args, train

    out = tmp_path / algo
    train(
        Args(algo=algo, timesteps=128, out=str(out), store=store, n_envs=2, n_steps=64,
             batch_size=64, max_branches=8, max_macro_steps=16, progress=False,
             checkpoint_every=0)
    )
    return out / "model.zip"


@pytest.mark.parametrize("algo", ["maskable-ppo", "dqn"])
def test_eval_rl_needs_no_torch(tmp_path, tiny_data, algo):
    """The same numbers as with torch installed, from a process where torch, SB3 and
    sb3-contrib cannot even be imported."""
    from tts_gym import evaluate, load_store, make_controller

    store = load_store("tiny", "aime24", tiny_data)
    model = _trained(tmp_path, store, algo)
    ctrl = make_controller(f"rl:{model}")
    want = evaluate(ctrl, store, seeds=3, max_branches=64, path="handle", workers=1)
    # the numpy network equals the SB3 model's own greedy actions
    rng = np.random.default_rng(1)
    for _ in range(10):
        obs = rng.random(20).astype(np.float32)
        mask = np.ones(ctrl.n_actions, np.int8)
        kw = {"action_masks": mask.astype(bool)} if algo == "maskable-ppo" else {}
        assert ctrl.act(obs, mask) == int(ctrl.model.predict(obs, deterministic=True, **kw)[0])
    argv = ["eval", f"rl:{model}", "--model", "tiny", "--benchmark", "aime24", "--data-dir",
            str(tiny_data), "--seeds", "3", "--workers", "2", "--json", "--detail"]
    proc = run_cli(argv, RL, tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["accuracy"] == want.accuracy and got["avg_tokens"] == want.avg_tokens
    assert got["per_question_tokens"] == [round(float(t), 3) for t in want.per_question_tokens]


def test_the_torch_fallback_names_the_extra(tmp_path, tiny_data):
    """``RLController.model`` (the SB3 object, for Python users who want it) needs the extra."""
    from tts_gym import load_store, make_controller

    model = _trained(tmp_path, load_store("tiny", "aime24", tiny_data), "ppo")
    script = (
        "import sys\n"
        "for name in ('torch', 'stable_baselines3', 'sb3_contrib'):\n"
        "    sys.modules[name] = None\n"
        "from tts_gym import make_controller\n"
        f"ctrl = make_controller('rl:{model}')\n"
        "try:\n"
        "    ctrl.model\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "needs torch and stable-baselines3" in proc.stdout
    assert 'pip install "tts-gym[rl]"' in proc.stdout
    assert make_controller(f"rl:{model}") is not None


def test_plot_without_matplotlib(tmp_path):
    sweep = tmp_path / "sweep.json"
    sweep.write_text("[]")
    out = tmp_path / "png"
    proc = run_cli(["plot", "--from", str(sweep), "--out", str(out)], ("matplotlib",), tmp_path)
    assert proc.returncode == 2
    one_sentence(proc.stderr, "tts-gym plot needs matplotlib", 'pip install "tts-gym[plot]"')
    assert not out.exists()


def test_discover_without_the_llm_extra(tmp_path):
    """Was a ModuleNotFoundError traceback: now the command table's check, before the module."""
    out = tmp_path / "run"
    proc = run_cli(["discover", "--rounds", "1", "--model-name", "m", "--out", str(out)],
                   ("openai",), tmp_path)
    assert proc.returncode == 2
    one_sentence(proc.stderr, "tts-gym discover needs openai", 'pip install "tts-gym[llm]"')
    assert not out.exists()


def test_collect_without_the_collect_extra(tmp_path):
    problems = tmp_path / "p.jsonl"
    problems.write_text('{"id": "a", "problem": "x", "answer": "1"}\n')
    out = tmp_path / "stores"
    argv = ["collect", str(problems), "--base-url", "http://127.0.0.1:9/v1", "--model-name", "m",
            "--out", str(out)]
    proc = run_cli(argv, ("math_verify", "latex2sympy2_extended"), tmp_path)
    assert proc.returncode == 2
    one_sentence(proc.stderr, "tts-gym collect needs math-verify and latex2sympy2_extended",
                 'pip install "tts-gym[collect]"')
    assert not out.exists()


def test_demo_without_matplotlib_says_so_first_and_still_writes_the_table(tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--seeds", "1", "--workers", "1", "--data-dir", str(empty)]
    proc = run_cli(argv, ("matplotlib",), tmp_path)
    assert proc.returncode == 0, proc.stderr
    one_sentence(proc.stderr, "needs matplotlib", 'pip install "tts-gym[plot]"', "--no-plot")
    assert json.loads((out / "results.json").read_text())["table"]
    assert not (out / "accuracy_vs_tokens.png").exists()
    assert "plot:" not in proc.stdout


# --- the torch-free reader refuses what is not a plain state_dict ---------------------------
def _pth(payload: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/byteorder", "little")
        for name, data in (extra or {}).items():
            z.writestr(f"archive/data/{name}", data)
    return buf.getvalue()


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_reader_runs_no_code_from_the_archive():
    from agents.rl.sb3_numpy import read_state_dict

    with pytest.raises(ValueError, match="unexpected object"):
        read_state_dict(_pth(pickle.dumps({"w": _Evil()}, protocol=2)))
    with pytest.raises(ValueError, match="not a torch zip archive"):
        read_state_dict(b"not a zip")


def test_reader_matches_torch_save(tmp_path):
    torch = pytest.importorskip("torch")
    from agents.rl.sb3_numpy import read_state_dict

    state = {
        "a": torch.arange(12, dtype=torch.float32).reshape(3, 4),
        "b": torch.arange(6, dtype=torch.float64)[::2],  # a strided view of a larger storage
        "c": torch.arange(20, dtype=torch.float32).reshape(4, 5).t(),  # non-contiguous
        "d": torch.tensor([1, -2, 3], dtype=torch.int64),
    }
    path = tmp_path / "p.pth"
    torch.save(state, path)
    got = read_state_dict(path.read_bytes())
    assert sorted(got) == sorted(state)
    for key, tensor in state.items():
        assert got[key].dtype == tensor.numpy().dtype
        assert np.array_equal(got[key], tensor.numpy()), key
