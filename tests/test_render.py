"""``render_mode="rgb_array"`` and the ANSI legend.

The raster is checked cell by cell against the ANSI picture (an independent text renderer of the
same state), its header against the bitmap font, its contract (dtype, a fixed shape that video
encoders take, determinism) and Gymnasium's ``RecordVideo`` writing videos from it.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import tts_gym  # noqa: F401  (registers the envs)
from tests.conftest import requires_data
from tts_gym import QuestionHandle, ReplayEnv
from tts_gym.env.bitmap_font import GLYPHS, text_mask, text_width
from tts_gym.env.raster import (
    CELL,
    EMPTY,
    FRAME,
    HIDDEN,
    LABEL_COLORS,
    LINE,
    MARGIN,
    PRUNED_SHADE,
    STRIKE,
    TEXT_SCALE,
    frame_shape,
)
from tts_gym.env.render import LEGEND
from tts_gym.env.vector_env import ReplayVectorEnv
from tts_gym.kernels.state import BOOK_COUNTERS, LABELS_USED
from tts_gym.testing import tiny_store

ROOT = Path(__file__).resolve().parents[1]
S = 6
ENV_ID = "tts_gym/Replay-v0"


def _store():
    return tiny_store(4, questions=3, branches=12, max_probes=8)


def _play(env: gym.Env, seed: int) -> None:
    """A fixed mix of every primitive: widen, deepen, prune, full reads."""
    env.reset(options={"question": seed % 3, "shuffle_seed": seed})
    h = QuestionHandle(env)
    slots = [h.probe_new()[1] for _ in range(3)]
    for s in slots:
        if not env.unwrapped.slot_finished(s):
            h.probe_more(s)
    live = [s for s in slots if not env.unwrapped.slot_finished(s)]
    if live:
        h.prune(live[0])
    h.full_read()
    env.step(3 + len(slots) + 1)  # CONTINUE of the full read's slot + 1: a hidden interval or no-op


def _cell(frame: np.ndarray, row: int, col: int) -> np.ndarray:
    """The 5 x 5 colour block of grid cell (row, col)."""
    top, left = MARGIN + 2 * LINE + row * CELL, MARGIN + CELL + col * CELL
    return frame[top : top + CELL - 1, left : left + CELL - 1]


def _label_rgb(k: int) -> np.ndarray:
    color = LABEL_COLORS[k % 10].astype(float)
    return (color * 0.55).astype(np.uint8) if k >= 10 else color.astype(np.uint8)


def _ansi_rows(text: str) -> list[tuple[str, list[str]]]:
    """``(status char, cells)`` per slot row of the ANSI picture; a final cell is ``"|x"``."""
    rows = []
    for line in text.splitlines()[1 : -len(LEGEND)]:
        status, body = line[4], line[6:]
        cells, i = [], 0
        while i < len(body):
            step = 2 if body[i] == "|" else 1
            cells.append(body[i : i + step])
            i += step
        rows.append((status, cells))
    return rows


@pytest.mark.parametrize("seed", range(4))
def test_the_raster_shows_what_the_ansi_picture_shows(seed):
    store = _store()
    rgb = gym.make(ENV_ID, store=store, max_branches=S, render_mode="rgb_array")
    ansi = gym.make(ENV_ID, store=store, max_branches=S, render_mode="ansi")
    _play(rgb, seed)
    _play(ansi, seed)
    frame = rgb.render()
    rows = _ansi_rows(ansi.render())
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert len(rows) == rgb.unwrapped.n_opened >= 4
    for r, (status, cells) in enumerate(rows):
        shade = PRUNED_SHADE if status == "x" else 1.0
        for c, cell in enumerate(cells):
            block = _cell(frame, r, c)
            if cell == ".":
                want = np.array(HIDDEN)
            else:
                want = _label_rgb(alphabet.index(cell[-1]))
            want = (want.astype(float) * shade).astype(np.uint8) if shade != 1.0 else want
            centre = block[2, 2] if status != "x" else block[1, 2]  # row 2 carries the strike
            np.testing.assert_array_equal(centre, want, err_msg=f"slot {r} cell {c} {cell!r}")
            if cell.startswith("|"):  # the final answer is framed in white
                np.testing.assert_array_equal(block[0, :], np.tile(FRAME, (CELL - 1, 1)))
        if status == "x":
            np.testing.assert_array_equal(_cell(frame, r, 0)[2, 0], STRIKE)
        beyond = _cell(frame, r, len(cells))
        np.testing.assert_array_equal(beyond[2, 2], EMPTY)  # only consumed cells are dimmed
    for r in range(len(rows), S):  # unopened slots: empty cells only
        np.testing.assert_array_equal(_cell(frame, r, 0)[2, 2], EMPTY)


def test_the_header_writes_question_tokens_and_counts():
    env = gym.make(ENV_ID, store=_store(), max_branches=S, render_mode="rgb_array")
    _play(env, 1)
    frame = env.render()
    base = env.unwrapped
    lines = [f"QUESTION {base.question}  TOKENS {base.tokens_used:,}",
             f"OPEN {base.n_opened}/{S}  LABELS {int(base._book[BOOK_COUNTERS][LABELS_USED])}"]
    for i, text in enumerate(lines):
        mask = text_mask(text, TEXT_SCALE)
        top = MARGIN + i * LINE
        region = frame[top : top + mask.shape[0], MARGIN : MARGIN + mask.shape[1]]
        ink = (region == 235).all(axis=2)  # the TEXT colour
        np.testing.assert_array_equal(ink, mask, err_msg=text)


def test_frame_contract_shape_dtype_determinism():
    store = _store()
    env = gym.make(ENV_ID, store=store, max_branches=S, render_mode="rgb_array")
    twin = gym.make(ENV_ID, store=store, max_branches=S, render_mode="rgb_array")
    shape = frame_shape(S, store.max_probes)
    assert shape[0] % 16 == 0 and shape[1] % 16 == 0 and shape[2] == 3
    before = env.unwrapped.render()  # before any reset: an empty grid of the same shape
    assert before.shape == shape and before.dtype == np.uint8
    for seed in range(3):
        _play(env, seed)
        _play(twin, seed)
        a, b = env.render(), twin.render()
        assert a.shape == shape and a.dtype == np.uint8 and a.flags.c_contiguous
        np.testing.assert_array_equal(a, b)
        assert env.render() is not a  # a new array every call
    with pytest.raises(ValueError, match="'ansi', 'rgb_array' or None"):
        ReplayEnv(store=store, render_mode="human")  # (gym.make wraps rgb_array for "human")


@pytest.mark.parametrize("env_id", ["tts_gym/Replay-v0", "tts_gym/ReplayMacro-v0",
                                    "tts_gym/Synthetic-v0"])
def test_render_agrees_with_the_metadata(env_id):
    kwargs = {} if env_id == "tts_gym/Synthetic-v0" else {"store": _store()}
    for mode in gym.spec(env_id).make(**kwargs).metadata["render_modes"]:
        env = gym.make(env_id, render_mode=mode, **kwargs)
        assert env.metadata["render_fps"] > 0
        env.reset(seed=0)
        env.step(int(np.flatnonzero(env.unwrapped.action_masks())[-1]))
        out = env.render()
        assert isinstance(out, str) if mode == "ansi" else (
            isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.ndim == 3)
    plain = gym.make(env_id, **kwargs)
    plain.reset(seed=0)
    assert plain.render() is None


def test_vector_and_macro_frames_are_the_single_env_frame():
    store = _store()
    vec = ReplayVectorEnv(2, store=store, max_branches=S, render_mode="rgb_array")
    single = gym.make(ENV_ID, store=store, max_branches=S, render_mode="rgb_array")
    vec.reset(options={"question": 1, "shuffle_seed": 2})
    single.reset(options={"question": 1, "shuffle_seed": 2})
    vec.step([2, 2])
    single.step(2)
    frames = vec.render()
    assert len(frames) == 2
    np.testing.assert_array_equal(frames[0], single.render())
    np.testing.assert_array_equal(frames[1], single.render())
    macro = gym.make("tts_gym/ReplayMacro-v0", store=store, max_branches=S,
                     render_mode="rgb_array")
    macro.reset(options={"question": 1, "shuffle_seed": 2})
    macro.step(5)  # SAMPLE is the atomic SAMPLE
    np.testing.assert_array_equal(macro.render(), single.render())


def test_record_video_writes_a_video_per_episode(tmp_path):
    pytest.importorskip("moviepy")
    env = gym.make(ENV_ID, store=_store(), max_branches=S, render_mode="rgb_array")
    env = gym.wrappers.RecordVideo(env, str(tmp_path / "videos"), episode_trigger=lambda e: True,
                                   disable_logger=True)
    for seed in range(2):
        env.reset(seed=seed)
        done, steps = False, 0
        while not done:
            mask = env.unwrapped.action_masks()
            action = 0 if steps >= 6 else int(np.flatnonzero(mask)[-1])
            *_, terminated, truncated, _info = env.step(action)
            done, steps = terminated or truncated, steps + 1
    env.close()
    videos = sorted((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 2 and all(v.stat().st_size > 0 for v in videos)
    import imageio.v3 as iio

    first = iio.imread(videos[0], index=0)
    assert first.shape == frame_shape(S, _store().max_probes)


def test_the_ansi_picture_ends_with_a_legend_of_its_symbols():
    env = gym.make(ENV_ID, store=_store(), max_branches=S, render_mode="ansi")
    _play(env, 0)
    text = env.render()
    assert text.splitlines()[-len(LEGEND):] == list(LEGEND)
    legend = "\n".join(LEGEND)
    used = set("".join(cells for line in text.splitlines()[1 : -len(LEGEND)]
                       for cells in line[4:]))
    for symbol in used - set(" 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"):
        assert symbol in legend, symbol


def test_the_bitmap_font():
    assert all(g.shape == (5, 3) for g in GLYPHS.values())
    digits = [GLYPHS[str(d)].tobytes() for d in range(10)]
    assert len(set(digits)) == 10  # every digit reads differently
    assert text_mask("ab", 2).shape == (10, text_width("ab", 2)) == (10, 14)
    with pytest.raises(ValueError, match=r"no glyph for \['@'\]"):
        text_mask("a@b")


@requires_data
def test_the_docs_figure_is_what_its_script_draws(tmp_path):
    """docs/figures/env_frame.png is regenerated byte for byte by its script (a PNG reader
    round trip checks the writer too)."""
    import runpy

    script = ROOT / "docs" / "figures" / "make_env_frame.py"
    module = runpy.run_path(str(script))
    out = tmp_path / "frame.png"
    assert module["main"]([str(out)]) == 0
    assert out.read_bytes() == (ROOT / "docs" / "figures" / "env_frame.png").read_bytes()
    import imageio.v3 as iio

    zoom = module["ZOOM"]
    np.testing.assert_array_equal(iio.imread(out)[::zoom, ::zoom], module["frame"]())


def test_the_sb3_vector_env_renders_the_native_frames():
    from agents.rl.sb3_vec import SB3ReplayVecEnv

    native = ReplayVectorEnv(2, store=_store(), max_branches=S, render_mode="rgb_array")
    venv = SB3ReplayVecEnv(native)
    venv.reset()
    venv.step(np.array([2, 1]))
    assert venv.render_mode == "rgb_array"
    for got, want in zip(venv.get_images(), native.render(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert SB3ReplayVecEnv(ReplayVectorEnv(2, store=_store(), max_branches=S)).get_images() == [
        None, None]


def test_the_macro_ansi_picture_shows_the_leader_above_the_legend():
    store = _store()
    macro = gym.make("tts_gym/ReplayMacro-v0", store=store, max_branches=S, render_mode="ansi")
    atomic = gym.make(ENV_ID, store=store, max_branches=S, render_mode="ansi")
    macro.reset(options={"question": 2, "shuffle_seed": 1})
    atomic.reset(options={"question": 2, "shuffle_seed": 1})
    macro.step(5)  # SAMPLE
    atomic.step(2)
    lines, base = macro.render().splitlines(), atomic.render().splitlines()
    core = macro.unwrapped.core
    assert lines[-len(LEGEND):] == list(LEGEND)
    assert lines[: -len(LEGEND) - 1] == base[: -len(LEGEND)]
    assert lines[-len(LEGEND) - 1] == f"leader={core.leader!r} macro_steps=1"
