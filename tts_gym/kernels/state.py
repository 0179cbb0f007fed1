"""The kernels' state, declared once: the fields of the episode ``ep`` and of the env's ``book``.

Kernels keep their state in plain tuples of numpy arrays (they pickle, deepcopy and cost nothing
in numba; ``jitclass`` and structrefs do not pickle). Each tuple is described here by one table
of :class:`Field` rows, and one integer constant per row names its position:
``ep[EP_DEPTH][slot]``, ``book[BOOK_SHOWN][slot]``. Code outside ``tts_gym/kernels`` and
``tts_gym/env/dynamics.py`` never indexes the tuples by number (tests/test_state.py greps for it).

Everything else is derived from the tables, in Python and in numba alike:

- allocation: :func:`new_episode` ``(width, capacity)`` and :func:`new_book`
  ``(capacity, max_probes, max_answers)``;
- reset: :func:`reset_episode` and :func:`reset_book` put every field back to its ``fill``
  (a field whose ``fill`` is ``None`` is kept: the branch order, set by the caller);
- stacking (the vector env's and the broker's layout, a leading env axis): :func:`stack`;
- views of env ``i`` in a stacked tuple: :func:`state_views` (no copies);
- the observation keys (:data:`OBS_KEYS`) and their position (:data:`VIEW`).

The numba versions are generated from the tables once per tuple type (``numba.extending.overload``
with a few lines of generated source: unrolled tuple indexing, which numba cannot loop over), so
they compile to the same code as the hand-written tuples they replace (benchmarks in
docs/performance.md, "Kernel state"); with ``NUMBA_DISABLE_JIT=1`` the Python bodies run.

Adding a state array:
    1. add a :class:`Field` row to :data:`EP_FIELDS` or :data:`BOOK_FIELDS` and its name to the
       constants line under the table (same order; checked at import);
    2. use it in the kernels (``tts_gym/kernels/transitions.py``, ``tts_gym/env/dynamics.py``).
    Allocation, reset, stacking and views follow by themselves.

Adding an observation key:
    1. a :class:`Field` row with ``obs=True`` in :data:`BOOK_FIELDS` among the other
       observation rows (keys sorted, as Gymnasium's ``Dict`` space orders them) and its
       ``OBS_*`` constant;
    2. its Box in ``EnvParams.observation_space`` (``tts_gym/env/params.py``);
    3. its value in ``update_view`` (``tts_gym/env/dynamics.py``), kept current after each step,
       and its from-scratch twin in tests/test_observation.py;
    4. optionally, a column in the pictures (``tts_gym/env/render.py``, ``raster.py``) and a line
       in docs/env.md's observation table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba.extending import overload


@dataclass(frozen=True)
class Dim:
    """One axis length: ``scale * sizes[size] + offset`` (``size`` None: just ``offset``)."""

    size: str | None
    scale: int = 1
    offset: int = 0

    def value(self, sizes: dict[str, int]) -> int:
        """The length for concrete ``sizes``."""
        return self.offset + (self.scale * int(sizes[self.size]) if self.size else 0)

    def source(self) -> str:
        """The length as a numba expression over the size arguments."""
        if self.size is None:
            return str(self.offset)
        scaled = self.size if self.scale == 1 else f"{self.scale} * {self.size}"
        return scaled if self.offset == 0 else f"{self.offset} + {scaled}"


@dataclass(frozen=True)
class Field:
    """One array of a state tuple.

    Attributes:
        name: What the docs call it.
        dtype: numpy dtype.
        shape: Its axes (:class:`Dim`).
        fill: Value at allocation and reset; ``None``: ``arange`` at allocation, kept at reset.
        obs: Part of the env's observation (its key is ``name``).
    """

    name: str
    dtype: Any
    shape: tuple[Dim, ...]
    fill: float | None
    obs: bool = False


C = Dim("capacity")
"""Slot capacity (C, the env's ``max_branches`` S)."""

EP_SIZES = ("width", "capacity")
EP_FIELDS = (
    Field("order", np.int32, (Dim("width"),), None),  # branch index opened at slot i
    Field("depth", np.int32, (C,), 0),  # probe intervals consumed by slot i (its k)
    Field("spent", np.int64, (C,), 0),  # tokens charged to slot i
    Field("finished", np.uint8, (C,), 0),  # 1 once slot i returned its final answer
    Field("current", np.int32, (C,), -1),  # answer id at slot i's current depth (hidden)
    Field("counters", np.int64, (Dim(None, offset=2),), 0),  # [OPENED, COST]
)
"""The episode ``ep`` (one question under one branch order); ``C <= N`` (width)."""
EP_ORDER, EP_DEPTH, EP_SPENT, EP_FINISHED, EP_CURRENT, EP_COUNTERS = range(len(EP_FIELDS))
OPENED = 0
"""``ep[EP_COUNTERS][OPENED]``: slots opened."""
COST = 1
"""``ep[EP_COUNTERS][COST]``: tokens charged in the episode."""

BOOK_SIZES = ("capacity", "max_probes", "max_answers")
A = Dim("max_answers")
BOOK_FIELDS = (
    Field("pruned", np.uint8, (C,), 0),  # slot marked inactive
    Field("shown", np.int32, (C,), -1),  # answer id last revealed at the slot (-1: none)
    Field("fresh", np.uint8, (C,), 0),  # 1 if shown is the answer at the slot's current depth
    # episode-local label revealed at depth d (index depth + finished), -1 elsewhere
    Field("reveal_at", np.int32, (C, Dim("max_probes", offset=2)), -1),
    Field("label_of", np.int32, (A,), -1),  # answer id -> episode-local label, -1 unseen
    Field("pool", np.int32, (C,), -1),  # revealed final answers of finished slots, in order
    Field("counters", np.int64, (Dim(None, offset=2),), 0),  # [LABELS_USED, POOL_SIZE]
    # the observation, kept current by every env_step (dynamics.update_view gives meanings)
    Field("agree", np.int32, (C,), 0, obs=True),
    Field("depth", np.int32, (C,), 0, obs=True),
    Field("fresh", np.int8, (C,), 0, obs=True),
    Field("label", np.int32, (C,), -1, obs=True),
    Field("status", np.int8, (C,), 0, obs=True),
    Field("totals", np.int32, (Dim(None, offset=4),), 0, obs=True),
    Field("vote", np.float32, (Dim(None, offset=5),), 0.0, obs=True),
    # unpruned opened slots showing each episode-local label
    Field("agree_by_label", np.int32, (Dim("max_answers", offset=1),), 0),
    # legality mask of the current state (set by reset_state)
    Field("mask", np.int8, (Dim("capacity", scale=3, offset=3),), 0),
)
"""The env's bookkeeping and observation ``book`` (see :mod:`tts_gym.env.dynamics`)."""
(
    BOOK_PRUNED, BOOK_SHOWN, BOOK_FRESH, BOOK_REVEAL_AT, BOOK_LABEL_OF, BOOK_POOL, BOOK_COUNTERS,
    OBS_AGREE, OBS_DEPTH, OBS_FRESH, OBS_LABEL, OBS_STATUS, OBS_TOTALS, OBS_VOTE,
    BOOK_AGREE_BY_LABEL, BOOK_MASK,
) = range(len(BOOK_FIELDS))
LABELS_USED = 0
"""``book[BOOK_COUNTERS][LABELS_USED]``: episode-local labels handed out."""
POOL_SIZE = 1
"""``book[BOOK_COUNTERS][POOL_SIZE]``: revealed final answers in ``book[BOOK_POOL]``."""

OBS_KEYS = tuple(f.name for f in BOOK_FIELDS if f.obs)
"""Observation keys, in the Dict space's (sorted) order and in the book's order."""
VIEW = OBS_AGREE
"""Index in ``book`` of the first observation array (``book[VIEW + k]`` is ``OBS_KEYS[k]``)."""
MASK = BOOK_MASK
"""Index in ``book`` of the kept legality mask."""


def _check_tables() -> None:
    """Each row has its constant (``EP_``/``BOOK_``/``OBS_`` + name) equal to its position, and
    the observation rows are adjacent and sorted: a row added without its constant, or with the
    constants line in another order, fails at import."""
    for prefix, table in (("EP_", EP_FIELDS), ("BOOK_", BOOK_FIELDS)):
        for i, field in enumerate(table):
            const = ("OBS_" if field.obs else prefix) + field.name.upper()
            if globals().get(const) != i:
                raise ImportError(f"{const} must be {i}, the position of row {field.name!r}; "
                                  "keep the constants line in the table's order.")
    keys = [i for i, f in enumerate(BOOK_FIELDS) if f.obs]
    if keys != list(range(VIEW, VIEW + len(keys))) or list(OBS_KEYS) != sorted(OBS_KEYS):
        raise ImportError("The observation rows of BOOK_FIELDS must be adjacent, sorted by key.")


_check_tables()


# --- derived: Python bodies (also the NUMBA_DISABLE_JIT path) and their numba twins ------------
def _allocate(fields: tuple[Field, ...], sizes: dict[str, int]) -> tuple[np.ndarray, ...]:
    out = []
    for f in fields:
        shape = tuple(d.value(sizes) for d in f.shape)
        if f.fill is None:
            out.append(np.arange(shape[0]).astype(f.dtype))
        else:
            out.append(np.full(shape, f.fill, f.dtype))
    return tuple(out)


def _reset(fields: tuple[Field, ...], arrays: tuple[np.ndarray, ...]) -> None:
    for f, a in zip(fields, arrays, strict=True):
        if f.fill is not None:
            a[...] = f.fill


def _compile(source: str, namespace: dict[str, Any]) -> Any:
    """The function ``impl`` defined by ``source`` (generated from a table)."""
    exec(compile(source, "<tts_gym.kernels.state>", "exec"), namespace)  # noqa: S102
    return namespace["impl"]


def _allocate_impl(fields: tuple[Field, ...], sizes: tuple[str, ...]) -> Any:
    """numba body of an allocation: one ``np.zeros``, ``np.full`` or ``np.arange`` per row (what
    a hand-written allocation would call, so the machine code is the same)."""
    lines = [f"def impl({', '.join(sizes)}):", "    return ("]
    for k, f in enumerate(fields):
        dims = [d.source() for d in f.shape]
        shape = dims[0] if len(dims) == 1 else "(" + ", ".join(dims) + ")"
        if f.fill is None:
            lines.append(f"        np.arange({shape}).astype(_dtype{k}),")
        elif f.fill == 0:
            lines.append(f"        np.zeros({shape}, _dtype{k}),")
        else:
            lines.append(f"        np.full({shape}, {f.fill!r}, _dtype{k}),")
    lines.append("    )")
    namespace = {"np": np, **{f"_dtype{k}": f.dtype for k, f in enumerate(fields)}}
    return _compile("\n".join(lines), namespace)


def _reset_impl(fields: tuple[Field, ...], arg: str) -> Any:
    """numba body of a reset of the tuple argument ``arg``: every row with a ``fill`` set to
    it."""
    lines = [f"def impl({arg}):"]
    for k, f in enumerate(fields):
        if f.fill is not None:
            axes = ", ".join(":" for _ in f.shape)
            lines.append(f"    {arg}[{k}][{axes}] = {f.fill!r}")
    return _compile("\n".join(lines), {})


def new_episode(width: int, capacity: int) -> tuple[np.ndarray, ...]:
    """Allocate an episode tuple (:data:`EP_FIELDS`) for ``width`` branches (N) and
    ``capacity`` slots (C <= N). Callable from Python and from kernels (batch controllers)."""
    return _allocate(EP_FIELDS, {"width": width, "capacity": capacity})


def new_book(capacity: int, max_probes: int, max_answers: int) -> tuple[np.ndarray, ...]:
    """Allocate the env bookkeeping tuple (:data:`BOOK_FIELDS`), observation included."""
    sizes = {"capacity": capacity, "max_probes": max_probes, "max_answers": max_answers}
    return _allocate(BOOK_FIELDS, sizes)


def reset_episode(ep: tuple[np.ndarray, ...]) -> None:
    """Clear an episode's slot arrays and counters (the order is left as set)."""
    _reset(EP_FIELDS, ep)


def reset_book(book: tuple[np.ndarray, ...]) -> None:
    """Clear the bookkeeping (and the observation) for a new episode."""
    _reset(BOOK_FIELDS, book)


def state_views(arrays: tuple[np.ndarray, ...], i: int) -> tuple[np.ndarray, ...]:
    """Entry ``i`` of every array of a stacked state tuple: views, no copies."""
    return tuple(a[i] for a in arrays)


def stack(state: tuple[np.ndarray, ...], n: int) -> tuple[np.ndarray, ...]:
    """``n`` copies of a state tuple stacked on a new leading axis (Python only)."""
    return tuple(np.repeat(a[None], n, axis=0) for a in state)


@overload(new_episode)
def _new_episode_jit(width, capacity):
    return _allocate_impl(EP_FIELDS, EP_SIZES)


@overload(new_book)
def _new_book_jit(capacity, max_probes, max_answers):
    return _allocate_impl(BOOK_FIELDS, BOOK_SIZES)


@overload(reset_episode)
def _reset_episode_jit(ep):
    return _reset_impl(EP_FIELDS, "ep")


@overload(reset_book)
def _reset_book_jit(book):
    return _reset_impl(BOOK_FIELDS, "book")


@overload(state_views, inline="always")
def _state_views_jit(arrays, i):
    items = "".join(f"arrays[{k}][i], " for k in range(len(arrays)))
    return _compile(f"def impl(arrays, i):\n    return ({items})", {})
