"""Draw docs/figures/env_frame.png: one ``rgb_array`` frame of ``tts_gym/ReplayMacro-v0``.

Qwen3-8B / AIME24, question 4 under the protocol's shuffle seed 0, 16 slots; the macro actions
below open eight branches, deepen them, prune the dissenters, follow the leaders and read two
more branches to the end. The frame is enlarged 2× (nearest neighbour) and written with the
small PNG writer below (numpy, zlib and struct: no imaging library)::

    python docs/figures/make_env_frame.py [OUT.png]
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import gymnasium as gym
import numpy as np

import tts_gym  # noqa: F401  (registers the envs)

QUESTION, SHUFFLE_SEED, SLOTS, ZOOM = 4, 0, 16, 2
WIDEN, DEEPEN_ALL, DEEPEN_LEADERS, PRUNE_DISSENTERS, SAMPLE = 1, 2, 3, 4, 5
ACTIONS = [WIDEN] * 8 + [DEEPEN_ALL] * 4 + [PRUNE_DISSENTERS] + [DEEPEN_LEADERS] * 6 + [SAMPLE] * 2


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write uint8 ``[H, W, 3]`` as an 8-bit RGB PNG (no filter, zlib level 9)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.write_bytes(png)


def frame() -> np.ndarray:
    """The figure's frame (before enlarging)."""
    env = gym.make("tts_gym/ReplayMacro-v0", model="Qwen3-8B", benchmark="aime24",
                   max_branches=SLOTS, render_mode="rgb_array")
    env.reset(options={"question": QUESTION, "shuffle_seed": SHUFFLE_SEED})
    for action in ACTIONS:
        if env.unwrapped.action_masks()[action]:
            env.step(action)
    return env.render()


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).with_name("env_frame.png")
    big = np.repeat(np.repeat(frame(), ZOOM, axis=0), ZOOM, axis=1)
    write_png(out, big)
    print(f"wrote {out} ({big.shape[1]} x {big.shape[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
