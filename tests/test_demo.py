"""``tts-gym demo``: works with no data directory (synthetic twin, said in one line), prints the
table, writes the plot; on the real store its numbers are the published ones."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from tests.conftest import real_data_dir, requires_data
from tts_gym.cli import demo_cmd
from tts_gym.controller import available_controllers, make_controller
from tts_gym.evaluation import evaluate
from tts_gym.reporting.sweep import SWEEP_GRIDS
from tts_gym.synthetic import generate_store


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    demo_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["demo", *argv])
    return args.func(args)


def test_demo_without_data_uses_the_synthetic_twin(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("TTS_GYM_DATA", str(empty))
    out = tmp_path / "demo"
    assert _run(["--out", str(out), "--seeds", "2", "--workers", "1"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert sum("SYNTHETIC" in line for line in lines) == 1
    assert lines[0].startswith("SYNTHETIC DATA")
    png = out / "accuracy_vs_tokens.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    res = json.loads((out / "results.json").read_text())
    assert res["synthetic"] is True
    twin_store = generate_store("Qwen3-8B", 30, 128, seed=0)
    assert res["provenance"]["stores"] == {twin_store.name: twin_store.sha256}
    assert res["provenance"]["seeds"] == {"count": 2, "first": 0}
    labels = [r["controller"] for r in res["table"]]
    assert "SC@64" in labels and "SC@64" in text
    for name, label in (("cmc", "CMC β=0.5"), ("asc", "ASC"), ("esc", "ESC")):
        assert (label in labels) == (name in available_controllers())
    # reference: the same twin scored directly
    twin = generate_store("Qwen3-8B", 30, 128, seed=0)
    ref = evaluate(make_controller("sc", {"n": 64}), twin, 2)
    sc = next(r for r in res["table"] if r["controller"] == "SC@64")
    assert sc["accuracy"] == ref.accuracy and np.isclose(sc["avg_tokens"], ref.avg_tokens)
    # the demo plots the grids of `tts-gym sweep`
    assert [p["n"] for p in res["curves"]["SC@n"]] == list(SWEEP_GRIDS["sc"][1])


def test_demo_unknown_model_without_data(tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_GYM_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="no synthetic preset"):
        _run(["--model", "Llama-7B", "--out", str(tmp_path / "o"), "--seeds", "1"])


PUBLISHED_QWEN3_8B = {  # tts_gym/data/aime24_published.csv (test_published checks the file)
    "esc": ({"max_samples": 64, "window": 8}, 80.37, 459359),
    "cmc": ({"beta": 0.5}, 84.27, 255293),
}


@requires_data
def test_demo_on_the_real_store_reproduces_published(tmp_path, monkeypatch, capsys):
    from tts_gym.store import load_store

    monkeypatch.setenv("TTS_GYM_DATA", str(real_data_dir()))
    store = load_store("Qwen3-8B", "aime24")
    for name, (params, acc, tokens) in PUBLISHED_QWEN3_8B.items():
        if name not in available_controllers():
            continue
        row = next(iter(demo_cmd._score_all(store, name, [params], 100).values()))
        assert row["accuracy"] == acc and int(row["avg_tokens"]) == tokens
    assert _run(["--out", str(tmp_path / "d"), "--seeds", "1", "--workers", "1", "--no-plot"]) == 0
    text = capsys.readouterr().out
    assert "SYNTHETIC" not in text and "(real store)" in text


@pytest.mark.slow
def test_cli_demo_end_to_end_with_data_dir_unset(tmp_path):
    """`tts-gym demo` as a user runs it on a fresh machine: TTS_GYM_DATA unset, an empty user
    cache (no downloaded stores, no numba cache: every kernel compiles), no network needed.
    About 30 s of CPU."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TTS_GYM_DATA"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    out = tmp_path / "demo"
    code = "import sys; from tts_gym.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, "demo", "--out", str(out), "--seeds", "1", "--workers", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("SYNTHETIC DATA (no real store under ")
    assert str(tmp_path / "cache") in proc.stdout.splitlines()[0]
    assert (out / "accuracy_vs_tokens.png").stat().st_size > 10_000
