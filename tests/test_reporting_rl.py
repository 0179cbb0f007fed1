"""Trained RL policies in ``tts-gym table`` / ``sweep`` / ``plot`` (``--rl``, ``--rl-frontier``)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("sb3_contrib")

from agents.rl.train import Args, train  # noqa: E402
from tts_gym.controller import make_controller  # noqa: E402
from tts_gym.evaluation import evaluate  # noqa: E402
from tts_gym.reporting import main_table, sweep  # noqa: E402
from tts_gym.reporting.plot import curves  # noqa: E402
from tts_gym.reporting.rl import cost_weight_of, parse_rl_option  # noqa: E402
from tts_gym.store import load_store  # noqa: E402
from tts_gym.testing import tiny_questions, write_store_json  # noqa: E402

COST_WEIGHTS = (1e-6, 1e-3)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny data folder (one model, aime24 + aime25) and two PPO runs at two cost weights."""
    root = tmp_path_factory.mktemp("rl-report")
    data = root / "data"
    for k, b in enumerate(("aime24", "aime25")):
        write_store_json(data / "tiny" / f"{b}.json", tiny_questions(k, questions=4, branches=12))
    store = load_store("tiny", "aime24", data)
    runs = []
    for i, cw in enumerate(COST_WEIGHTS):
        out = root / f"run{i}"
        train(
            Args(
                algo="ppo",
                timesteps=128,
                cost_weight=cw,
                out=str(out),
                store=store,
                n_envs=2,
                n_steps=32,
                batch_size=32,
                max_branches=8,
                max_macro_steps=16,
                progress=False,
                checkpoint_every=10_000,
                seed=i,
            )
        )
        runs.append(out)
    return data, runs


def test_parse_rl_option_accepts_a_folder(tmp_path):
    assert parse_rl_option(f"x={tmp_path}") == ("x", str(tmp_path / "model.zip"))
    with pytest.raises(ValueError, match="NAME=DIR"):
        parse_rl_option("x=")


def test_rl_row_in_the_table_equals_direct_evaluation(setup):
    data, runs = setup
    table = main_table(
        ["tiny"],
        ["aime24", "aime25"],
        seeds=3,
        workers=2,
        data_dir=data,
        rows=[("SC@4", "sc", {"n": 4})],
        rl=[f"ppo={runs[0]}"],
    )
    assert table.labels == ["SC@4", "ppo"]
    for b in ("aime24", "aime25"):
        got = table.results[("ppo", "tiny", b)]
        want = evaluate(
            make_controller(f"rl:{runs[0] / 'model.zip'}"), load_store("tiny", b, data), 3
        )
        assert (got.accuracy, got.avg_tokens, got.path) == (
            want.accuracy,
            want.avg_tokens,
            "handle",
        )
    assert "| tiny | ppo |" in table.to_markdown()


def test_rl_frontier_is_one_curve_over_cost_weights(setup, tmp_path, capsys):
    from tts_gym.cli import main

    data, runs = setup
    rows = sweep(
        ["sc"],
        ["tiny"],
        ["aime25"],
        seeds=2,
        workers=1,
        data_dir=data,
        rl=[f"ppo={runs[0]}", f"ppo={runs[1]}"],
    )
    rl_rows = [r for r in rows if r["controller"].startswith("rl:")]
    assert sorted(r["budget"] for r in rl_rows) == sorted(COST_WEIGHTS)
    assert {r["budget_param"] for r in rl_rows} == {"cost_weight"}
    assert cost_weight_of(runs[1] / "model.zip") == COST_WEIGHTS[1]
    by_curve = curves(rows)
    assert set(by_curve) == {"sc", "RL ppo"} and len(by_curve["RL ppo"]) == 2
    # the CLI: sweep --rl-frontier writes the rows; plot --from keeps the RL curve
    report = tmp_path / "sweep.json"
    common = [
        "--models",
        "tiny",
        "--benchmarks",
        "aime25",
        "--data-dir",
        str(data),
        "--seeds",
        "2",
        "--workers",
        "1",
        "--no-progress",
    ]
    argv = [
        "sweep",
        "--controllers",
        "sc",
        *common,
        "--json",
        str(report),
        "--rl-frontier",
        "ppo",
        str(runs[0]),
        str(runs[1]),
    ]
    assert main(argv) == 0
    assert "| tiny | aime25 | ppo | cost_weight=0.001 |" in capsys.readouterr().out
    saved = json.loads(report.read_text())["rows"]
    assert len(curves(saved)["RL ppo"]) == 2
    assert main(["plot", "--out", str(tmp_path / "png"), "--from", str(report), *common]) == 0
    assert (tmp_path / "png" / "tiny_aime25.png").is_file()
    err = capsys.readouterr().err  # a 0-token policy cannot sit on the log axis: named, not lost
    assert "7 points plotted, 1 rows left out" in err and "RL ppo cost_weight=0.001" in err
    # plot computing the sweep itself, with --rl (same name twice: one curve)
    out = tmp_path / "png2"
    argv = [
        "plot",
        "--out",
        str(out),
        "--controllers",
        "sc",
        *common,
        "--json",
        str(tmp_path / "p.json"),
    ]
    argv += ["--rl", f"ppo={runs[0]}", "--rl", f"ppo={runs[1]}"]
    assert main(argv) == 0 and (out / "tiny_aime25.png").is_file()
    assert len(curves(json.loads((tmp_path / "p.json").read_text())["rows"])["RL ppo"]) == 2
    capsys.readouterr()
    # table --rl
    assert main(["table", "--rl", f"mine={runs[0]}", *common]) == 0
    assert "| tiny | mine |" in capsys.readouterr().out
