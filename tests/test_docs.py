"""Every ```python and ```bash block of README.md and docs/*.md runs, so the docs cannot rot.

Convention (stated in README's "Development" section): a block whose fence is preceded, on the
line right before it, by ``<!-- docs-test: skip (reason) -->`` is not run: it needs a GPU
server, an API key, installs packages, or is a benchmark of minutes. Its command lines are still
checked: every ``tts-gym ...`` command must parse with the CLI's own parser, and every repository
file it names (``examples/...``, ``benchmarks/...``) must exist.

Every other block runs with the real stores (``TTS_GYM_DATA``, else the download cache; without
them the test is skipped), in page order, in one temporary folder per page (a block may read
what an earlier block of the same page wrote; ``examples/`` and ``benchmarks/`` are linked in):

- ``bash`` blocks with ``bash -euo pipefail``; ``tts-gym`` and ``python`` are this interpreter
  on this checkout; ``tts-gym download`` is served from 127.0.0.1 out of the stores' folder
  (never the internet) into a temporary user cache;
- ``python`` blocks as a script.

The same module checks that every relative link of those pages resolves, and that the argument
table of docs/env.md states ``ReplayEnv``'s real defaults.
"""

from __future__ import annotations

import ast
import functools
import http.server
import inspect
import os
import re
import shlex
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import real_data_dir, requires_data

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\b(.*?)-->")
FENCE = re.compile(r"^```(python|bash)\s*$")
LINKED = ("examples", "benchmarks")
BLOCK_TIMEOUT = 900


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The ```python / ```bash blocks of a markdown page, in order."""
    lines = page.read_text().splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        prev = lines[start - 1] if start else ""
        marker = SKIP.search(prev)
        reason = marker.group(1).strip(" ()") or "no reason given" if marker else None
        out.append(Block(page, start + 1, m.group(1), "\n".join(body) + "\n", reason))
        i += 1
    return out


# --- checks for blocks that do not run -------------------------------------------------------
def commands(code: str) -> list[list[str]]:
    """The simple commands of a bash block (continuations joined, comments dropped, split at
    ``&&``, ``||``, ``;`` and ``|``, leading ``VAR=value`` assignments removed)."""
    text = code.replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        tokens = shlex.split(line, comments=True)
        cmd: list[str] = []
        for tok in [*tokens, ";"]:
            if tok in ("&&", "||", ";", "|"):
                while cmd and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", cmd[0]):
                    cmd.pop(0)
                if cmd:
                    out.append(cmd)
                cmd = []
            else:
                cmd.append(tok)
    return out


def check_without_running(block: Block) -> None:
    """A skipped block's ``tts-gym`` commands parse; the repository files it names exist."""
    from tts_gym.cli import build_parser

    if block.lang == "python":
        ast.parse(block.code, filename=block.where)
        return
    parser = build_parser()
    for cmd in commands(block.code):
        for tok in cmd:
            if tok.split("/")[0] in LINKED and tok.endswith(".py"):
                assert (ROOT / tok).is_file(), f"{block.where}: {tok} does not exist"
        if cmd[0] == "tts-gym":
            try:
                parser.parse_args(cmd[1:])
            except SystemExit as exc:
                raise AssertionError(f"{block.where}: `{shlex.join(cmd)}` does not parse") from exc


# --- running blocks --------------------------------------------------------------------------
@functools.cache
def _store_server() -> str:
    """URL of a 127.0.0.1 HTTP server serving the real stores' folder (for `tts-gym download`)."""
    handler = functools.partial(
        type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
        directory=str(real_data_dir()),
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def page_env(workdir: Path) -> dict[str, str]:
    """Environment of the blocks of one page."""
    import numba

    import tts_gym  # noqa: F401 (sets numba's cache folder)

    shims = workdir / ".bin"
    shims.mkdir(exist_ok=True)
    (shims / "tts-gym").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tts_gym "$@"\n')
    (shims / "tts-gym").chmod(0o755)
    (shims / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (shims / "python").chmod(0o755)
    env = dict(os.environ)
    env.update(
        {
            "PATH": f"{shims}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(":"),
            "TTS_GYM_DATA": str(real_data_dir()),
            "TTS_GYM_DOWNLOAD_URL": _store_server(),
            # downloads land in a fresh user cache; the compiled kernels stay where they are
            "XDG_CACHE_HOME": str(workdir / ".cache"),
            "NUMBA_CACHE_DIR": str(numba.config.CACHE_DIR),
            "MPLBACKEND": "Agg",
        }
    )
    return env


def run_block(block: Block, workdir: Path, env: dict[str, str], n: int) -> None:
    if block.lang == "python":
        script = workdir / f".block_{n}.py"
        script.write_text(block.code)
        argv = [sys.executable, str(script)]
    else:
        argv = ["bash", "-euo", "pipefail", "-c", block.code]
    proc = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=BLOCK_TIMEOUT)
    if proc.returncode != 0:
        raise AssertionError(
            f"{block.where}: the {block.lang} block exited with {proc.returncode}\n"
            f"--- block ---\n{block.code}--- stdout (end) ---\n{proc.stdout[-3000:]}\n"
            f"--- stderr (end) ---\n{proc.stderr[-3000:]}"
        )


def test_the_marker_convention_is_parsed(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("a\n<!-- docs-test: skip (needs an API key) -->\n```bash\nx\n```\n"
                    "```python\nprint(1)\n```\n")
    got = blocks(page)
    assert [(b.lang, b.line, b.skip) for b in got] == [
        ("bash", 3, "needs an API key"), ("python", 6, None)
    ]
    assert commands("A=1 tts-gym eval sc \\\n  --seeds 2 && ls | wc -l  # note\n") == [
        ["tts-gym", "eval", "sc", "--seeds", "2"], ["ls"], ["wc", "-l"]
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_skipped_blocks_still_parse(page):
    for block in blocks(page):
        if block.skip is not None:
            check_without_running(block)


@requires_data
@pytest.mark.slow  # about 4 minutes for all pages on 2 cores (rl.md trains a policy for 40 s)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_blocks_run(page, tmp_path):
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name)
    env = page_env(tmp_path)
    for n, block in enumerate(blocks(page)):
        if block.skip is None:
            run_block(block, tmp_path, env, n)


# --- links and the env's argument table ------------------------------------------------------
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{page.relative_to(ROOT)} links {target}, which does not exist"


def test_readme_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in readme, f"README does not link docs/{page.name}"


def test_env_argument_table_states_the_real_defaults():
    from tts_gym.env import ReplayEnv

    text = (ROOT / "docs" / "env.md").read_text()
    section = text.split("## Arguments", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \| `(.+?)` \|", section, re.M)
    table = {name: default for name, _type, default in rows}
    sig = inspect.signature(ReplayEnv.__init__)
    params = [p for p in sig.parameters.values() if p.name != "self"]
    assert list(table) == [p.name for p in params]
    for p in params:
        assert ast.literal_eval(table[p.name]) == p.default, (p.name, table[p.name], p.default)
