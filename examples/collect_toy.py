"""Try ``tts-gym collect`` without a GPU: toy server -> collect -> inspect -> eval -> gym.make.

The same commands as the first section of docs/collect.md, run one after the other (the toy
server on a free port instead of 8000, so two runs never collide). Takes well under a minute:

    python examples/collect_toy.py [WORKDIR]
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

TTS_GYM = [sys.executable, "-m", "tts_gym"]


def tts_gym(*args: str, cwd: Path) -> str:
    """Run ``tts-gym ARGS`` in ``cwd``; its stdout (stderr passes through)."""
    print("$ tts-gym", " ".join(args), flush=True)
    out = subprocess.run([*TTS_GYM, *args], cwd=cwd, check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    print(out, end="", flush=True)
    return out


def main(workdir: Path) -> None:
    # 1. the toy model behind vLLM's protocol, and a problem file it knows the answers of
    server = subprocess.Popen([*TTS_GYM, "toy-server", "--port", "0", "--problems", "toy.jsonl"],
                              cwd=workdir, stdout=subprocess.PIPE, text=True)
    try:
        first = server.stdout.readline()  # printed once the port is bound
        print(first, end="")
        url = re.search(r"at (http://\S+/v1);", first)[1]
        # 2. collect a store: 6 questions x 16 branches, a probe every 16 tokens
        tts_gym("collect", "toy.jsonl", "--base-url", url, "--model-name", "toy/Toy-1B",
                "--out", "toy-stores", "--branches", "16", "--interval", "16",
                "--max-tokens", "200", cwd=workdir)
    finally:
        server.terminate()
        server.wait(timeout=30)
    # 3. read it like a published store
    store = ["--data-dir", "toy-stores", "--model", "Toy-1B", "--benchmark", "toy"]
    tts_gym("inspect", *store, cwd=workdir)
    tts_gym("eval", "sc", "--param", "n=8", *store, "--seeds", "10", cwd=workdir)
    # 4. and as a Gymnasium env
    import gymnasium as gym

    import tts_gym as _  # noqa: F401 (registers the envs)

    env = gym.make("tts_gym/Replay-v0", data_dir=workdir / "toy-stores", model="Toy-1B",
                   benchmark="toy")
    obs, info = env.reset(seed=0)
    steps, done = 0, False
    while not done:
        legal = [a for a, ok in enumerate(info["action_mask"]) if ok]
        action = legal[-1] if steps < 20 else 0  # act for a while, then ANSWER
        obs, reward, terminated, truncated, info = env.step(action)
        steps, done = steps + 1, terminated or truncated
    print(f"gym.make: one episode of {steps} steps on Toy-1B/toy, reward {reward:.4f}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
