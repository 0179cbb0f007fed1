"""The collection loop: sample every branch, probe its prefixes, journal everything, build.

Per branch (one asyncio task; at most ``max_in_flight`` × servers branches are open at a time,
so memory does not grow with the number of questions): one generation request (seeded,
``--max-tokens``), its trajectory kept in the journal's work folder, then one greedy probe per
probe position, sent concurrently and preferably to the server that sampled the branch (its
prefix cache holds the trajectory). Every finished request is journaled at once; a rerun skips
what the journal holds."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from tts_gym.collect.api import Completion, dumps, parse_completion
from tts_gym.collect.build import build
from tts_gym.collect.client import ServerPool
from tts_gym.collect.config import CollectConfig, differences
from tts_gym.collect.dialects import DIALECTS, Sampling, parse_reply, request_body
from tts_gym.collect.engines import Engine, tokenize
from tts_gym.collect.errors import BudgetReached, CollectError
from tts_gym.collect.extract import open_braces, probe_answer
from tts_gym.collect.journal import Journal, Pending
from tts_gym.collect.preflight import measure_rate, preflight_lines
from tts_gym.collect.problems import Problem
from tts_gym.collect.protocol import branch_seed, probe_positions
from tts_gym.collect.servers import check_sampling, check_servers, context_limit, resolve_mode
from tts_gym.collect.target import check_target, store_file, work_folder
from tts_gym.collect.templates import Template
from tts_gym.collect.trajectory import (
    ProbeBodies,
    Prompt,
    Trajectory,
    blob_digest,
    from_ids,
    from_text,
)
from tts_gym.retry import RetryPolicy

T = TypeVar("T")


@dataclass(frozen=True)
class RunOptions:
    """Settings that do not change the data (free to differ on a resume).

    Attributes:
        base_urls: One or more servers (``--base-url``, repeatable).
        token_mode: ``auto`` (the most exact the servers support), ``ids``, ``tokenize``, ``text``.
        max_in_flight: Requests in flight per server.
        max_tokens_total: Budget of generated tokens over the whole run (None: none).
        timeout_s: Seconds for a probe, tokenize or model-list request.
        generation_timeout_s: Seconds for one trajectory's generation request.
        policy: Retry policy of every request.
        api_key: Bearer token (None: none).
        overwrite: Replace a store this command wrote with other settings.
        keep_work: Keep the journal folder after the store is built.
        progress: Show a progress bar on stderr.
        check_only: Detect the servers, print the pre-flight and stop (``--check``).
    """

    base_urls: tuple[str, ...]
    token_mode: str = "auto"
    max_in_flight: int = 64
    max_tokens_total: int | None = None
    timeout_s: float = 300.0
    generation_timeout_s: float = 3600.0
    policy: RetryPolicy = RetryPolicy()
    api_key: str | None = None
    overwrite: bool = False
    keep_work: bool = False
    progress: bool = False
    check_only: bool = False


async def gather_or_cancel(coros: list[Coroutine[Any, Any, T]]) -> list[T]:
    """``asyncio.gather``, but the first failure cancels the others (and waits for them), so
    no request outlives the branch that asked for it."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class Collector:
    """One collection run (see :func:`collect`)."""

    def __init__(self, problems: Sequence[Problem], config: CollectConfig, template: Template,
                 options: RunOptions, store: Path, log: Callable[[str], None]) -> None:
        self.problems = problems
        self.template = template
        self.config = config
        self.options = options
        self.store = store
        self.log = log
        self.journal = Journal(work_folder(store))
        self.opened = open_braces(config.probe_suffix)
        self.spent = 0
        self.session_tokens = 0
        self.started = time.monotonic()
        self._prompts: dict[int, asyncio.Task[Prompt]] = {}
        self._left: dict[int, int] = {}
        self._bar: Any = None
        self.max_model_len: int | None = None
        self.engines: list[Engine] = []
        self.sampling = Sampling(config.temperature, config.top_p, config.top_k, config.min_p,
                                 config.repetition_penalty)
        self.suffix_ids: list[int] | None = None
        self.marker_ids: list[int] | None = None
        self._prompt_lens: dict[int, int] = {}

    # --- prompts ------------------------------------------------------------------------------
    async def _prompt(self, pool: ServerPool, q: int) -> Prompt:
        task = self._prompts.get(q)
        if task is None:
            task = asyncio.ensure_future(self._make_prompt(pool, q))
            self._prompts[q] = task
        return await task

    async def _make_prompt(self, pool: ServerPool, q: int) -> Prompt:
        text = self.template.render(self.problems[q].problem)
        ids = await self._tokenize(pool, text)
        if ids is not None:
            self._prompt_lens[q] = len(ids)
        if self.config.token_mode == "text":
            return Prompt(text, None)
        if not ids:
            raise CollectError(f"The server could not tokenize the prompt of question "
                               f"{self.problems[q].id!r}; use --token-mode text.")
        self._check_context(q, len(ids))
        import numpy as np

        return Prompt(text, np.asarray(ids, dtype=np.int64))

    async def _tokenize(self, pool: ServerPool, text: str) -> list[int] | None:
        """Token ids of ``text`` from the first server's tokenizer (None: it has none)."""
        fmt = self.engines[0].tokenize_format
        if fmt is None:
            return None
        return await tokenize(pool, self.config.model_name, text, self.options.timeout_s, fmt)

    def _check_context(self, q: int, prompt_tokens: int) -> None:
        cfg = self.config
        need = prompt_tokens + cfg.max_tokens + len(self.suffix_ids or []) + cfg.probe_max_tokens
        if self.max_model_len is not None and need > self.max_model_len:
            raise CollectError(
                f"Question {self.problems[q].id!r} needs {need} tokens of context (prompt "
                f"{prompt_tokens} + --max-tokens {cfg.max_tokens} + probe suffix and answer) "
                f"but the server's context is {self.max_model_len} tokens; lower --max-tokens "
                "or restart the server with a larger context (vLLM --max-model-len, SGLang "
                "--context-length, llama-server -c divided by -np)."
            )

    async def _check_all_contexts(self, pool: ServerPool) -> None:
        """Every prompt fits the context with a full trajectory and a probe (before any
        generation; the token counts are not kept)."""
        if self.engines[0].tokenize_format is None or self.max_model_len is None:
            return

        async def one(q: int) -> None:
            text = self.template.render(self.problems[q].problem)
            ids = await self._tokenize(pool, text)
            self._check_context(q, len(ids or []))

        await gather_or_cancel([one(q) for q in range(len(self.problems))])

    # --- requests -----------------------------------------------------------------------------
    def _charge(self, tokens: int) -> None:
        self.spent += tokens
        self.session_tokens += tokens

    def _budget(self) -> None:
        cap = self.options.max_tokens_total
        if cap is not None and self.spent >= cap:
            raise BudgetReached(
                f"The token budget is reached ({self.spent:,} generated tokens of "
                f"--max-tokens-total {cap:,}); finished work is saved: rerun with a larger "
                "--max-tokens-total to continue."
            )

    async def _generate(self, pool: ServerPool, q: int, b: int, prompt: Prompt
                        ) -> tuple[Trajectory, int]:
        cfg = self.config
        seed = branch_seed(cfg.seed, self.problems[q].id, b)
        engine = self.engines[0].name
        dialect = self.engines[0].dialect if cfg.token_mode == "ids" else None
        if dialect is not None:
            assert prompt.ids is not None
            path = DIALECTS[dialect]
            body = request_body(dialect, cfg.model_name, prompt.ids.tolist(), cfg.max_tokens,
                                self.sampling, engine, seed)
        else:
            path = "/v1/completions"
            body = {
                "model": cfg.model_name,
                "prompt": prompt.text if prompt.ids is None else prompt.ids.tolist(),
                "max_tokens": cfg.max_tokens, **self.sampling.fields(engine), "seed": seed,
                "n": 1, **({"logprobs": 0} if self.engines[0].offsets else {}),
            }

        def check(data: dict[str, Any]) -> Completion:
            if dialect is not None:
                return parse_reply(dialect, data, cfg.max_tokens)
            return parse_completion(data, cfg.max_tokens)

        self._budget()
        reply = await pool.request(
            "POST", path, dumps(body), what=self._what(q, b, None),
            timeout=self.options.generation_timeout_s, check=check,
            fatal=self._fatal(q, b, None),
        )
        assert reply is not None
        done = reply.checked
        traj, exact = await self._trajectory(pool, done)
        blob = traj.blob()
        self.journal.write_blob(q, b, blob)
        self.journal.append({
            "kind": "gen", "q": q, "b": b, "sha256": blob_digest(blob), **traj.record(),
            "prompt_tokens": done.prompt_tokens, "attempts": reply.attempts,
            "server": reply.server, **({} if exact is None else {"exact": exact}),
        })
        self._charge(done.completion_tokens)
        return traj, reply.server

    async def _trajectory(self, pool: ServerPool, done: Completion
                          ) -> tuple[Trajectory, bool | None]:
        """The trajectory, and in tokenize mode whether the re-tokenised text has as many
        tokens as were generated (None in the other modes)."""
        mode, marker = self.config.token_mode, self.template.think_end
        if mode == "ids":
            return from_ids(done, done.token_ids or [], self.marker_ids, marker), None
        if mode == "tokenize":
            ids = await self._tokenize(pool, done.text)
            if ids is None:
                raise CollectError("The server stopped answering /tokenize; use --token-mode text.")
            return (from_ids(done, ids, self.marker_ids, marker),
                    len(ids) == done.completion_tokens)
        return from_text(done, marker), None

    async def _probe(self, pool: ServerPool, q: int, b: int, at: int, bodies: ProbeBodies,
                     home: int | None) -> dict[str, Any]:
        k = self.config.probe_max_tokens
        self._budget()
        reply = await pool.request(
            "POST", "/v1/completions", bodies.parts(at), what=self._what(q, b, at),
            timeout=self.options.timeout_s, prefer=home,
            check=lambda data: parse_completion(data, k), fatal=self._fatal(q, b, at),
        )
        assert reply is not None
        done = reply.checked
        answer, closed = probe_answer(done.text, self.opened)
        rec = {
            "kind": "probe", "q": q, "b": b, "at": at, "output": done.text, "answer": answer,
            "closed": closed, "completion_tokens": done.completion_tokens,
            "prompt_tokens": done.prompt_tokens, "attempts": reply.attempts,
            "server": reply.server,
        }
        if self.config.token_mode == "text" and q in self._prompt_lens and \
                self.suffix_ids is not None and done.prompt_tokens:
            rec["exact"] = done.prompt_tokens == self._prompt_lens[q] + at + len(self.suffix_ids)
        self.journal.append(rec)
        self._charge(done.completion_tokens)
        return rec

    def _what(self, q: int, b: int, at: int | None) -> str:
        qid = self.problems[q].id
        if at is None:
            return f"the generation of question {qid!r}, branch {b}"
        return f"the probe at {at} tokens of question {qid!r}, branch {b}"

    def _fatal(self, q: int, b: int, at: int | None) -> Callable[[str, int | None], str]:
        def sentence(message: str, status: int | None) -> str:
            hint = {
                401: "set --api-key-env to the variable holding the server's key",
                403: "set --api-key-env to the variable holding the server's key",
                404: "check --base-url (http://HOST:PORT/v1) and --model-name",
            }.get(status or 0, "check the arguments against the server's limits")
            return (f"The server refused {self._what(q, b, at)}: {message}; {hint} (progress is "
                    "saved: rerun the same command to continue).")

        return sentence

    # --- one branch ---------------------------------------------------------------------------
    async def _branch(self, pool: ServerPool, q: int, b: int, pending: Pending | None) -> None:
        prompt = await self._prompt(pool, q)
        home: int | None = None
        traj: Trajectory | None = None
        probes: dict[int, dict[str, Any]] = {}
        if pending is not None and pending.gen is not None:
            traj = self._restore(q, b, pending.gen)
            if traj is not None:
                probes = dict(pending.probes)
                home = pending.gen["server"]
        if traj is None:
            traj, home = await self._generate(pool, q, b, prompt)
        positions = probe_positions(traj.thinking, self.config.interval)
        wanted = positions + ([traj.thinking] if traj.final_raw is None else [])
        missing = [p for p in wanted if p not in probes]
        if missing:
            bodies = ProbeBodies(self.probe_head, prompt, traj, self.suffix_ids,
                                 self.config.probe_suffix)
            recs = await gather_or_cancel(
                [self._probe(pool, q, b, p, bodies, home) for p in missing]
            )
            probes.update({r["at"]: r for r in recs})
        answers = [probes[p]["answer"] for p in positions]
        if traj.final_raw is not None:
            final, source = traj.final_raw, "boxed"
        else:
            final, source = probes[traj.thinking]["answer"], "probe"
        self.journal.append({
            "kind": "branch", "q": q, "b": b, "probes": answers + [final], "final": final,
            "final_source": source, "tokens": traj.generated, "thinking": traj.thinking,
            "truncated": traj.truncated, "finish": traj.finish_reason,
            "unclosed": [probes[p]["output"] for p in wanted if not probes[p]["closed"]],
        })
        self.journal.drop_blob(q, b)
        self._branch_done(q)

    def _restore(self, q: int, b: int, rec: dict[str, Any]) -> Trajectory | None:
        try:
            blob = self.journal.blob_path(q, b).read_bytes()
        except OSError:
            blob = b""
        if blob_digest(blob) != rec["sha256"]:
            self.log(f"note: the saved trajectory of question {self.problems[q].id!r}, branch "
                     f"{b} is missing or damaged; sampling it again.")
            return None
        return Trajectory.restore(rec, blob)

    def _branch_done(self, q: int) -> None:
        self._left[q] -= 1
        if self._left[q] == 0:
            self._prompts.pop(q, None)
        if self._bar is not None:
            rate = self.session_tokens / max(1e-9, time.monotonic() - self.started)
            self._bar.set_postfix_str(f"{rate:,.0f} tok/s, {self.spent:,} tokens", refresh=False)
            self._bar.update(1)

    # --- the run ------------------------------------------------------------------------------
    async def _run_branches(self, pool: ServerPool, done: set[tuple[int, int]],
                            pending: dict[tuple[int, int], Pending]) -> None:
        n = self.config.branches
        for q in range(len(self.problems)):
            self._left[q] = sum((q, b) not in done for b in range(n))
        gate = asyncio.Semaphore(self.options.max_in_flight * len(self.options.base_urls))
        tasks: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []

        def finished(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            gate.release()
            if task.cancelled():
                return
            exc = task.exception()
            if exc is not None:
                failures.append(exc)
                if not isinstance(exc, BudgetReached):
                    for other in list(tasks):
                        other.cancel()

        for q in range(len(self.problems)):
            for b in range(n):
                if (q, b) in done:
                    continue
                await gate.acquire()
                if failures:
                    gate.release()
                    break
                task = asyncio.ensure_future(self._branch(pool, q, b, pending.get((q, b))))
                tasks.add(task)
                task.add_done_callback(finished)
            if failures:
                break
        while tasks:
            await asyncio.wait(set(tasks))
        if failures:
            fatal = [e for e in failures if not isinstance(e, BudgetReached)]
            raise (fatal or failures)[0]

    def _check_resume(self, saved: CollectConfig, now: CollectConfig) -> None:
        diff = differences(saved, now)
        if diff:
            raise CollectError(
                f"A collection into {self.store} was started with other settings "
                f"({'; '.join(diff)}); rerun with the saved settings to continue it, or "
                f"delete {self.journal.folder} to start over."
            )

    async def _prepare(self, pool: ServerPool, saved: CollectConfig | None) -> None:
        """Detect the engines, resolve the token mode, check sampling and context, tokenize the
        probe suffix and the end-of-thinking marker, build the probe request head."""
        opts, cfg = self.options, self.config
        self.engines = await check_servers(pool, cfg.model_name, self.sampling, opts.timeout_s)
        names = {e.name for e in self.engines}
        if len(names) > 1:
            raise CollectError(
                f"The servers run different engines ({', '.join(e.label() for e in self.engines)}"
                "); collect from servers of one engine at a time."
            )
        self.max_model_len = context_limit(self.engines)
        mode = resolve_mode(opts.token_mode, self.engines, saved.token_mode if saved else None)
        if mode == "ids" and len({e.dialect for e in self.engines}) > 1:
            raise CollectError("The servers return token ids in different ways; collect from "
                               "servers of one engine version at a time.")
        self.config = cfg = dataclasses.replace(cfg, token_mode=mode)
        if saved is not None:
            self._check_resume(saved, cfg)
        check_sampling(self.engines, self.sampling)
        if self.engines[0].tokenize_format is not None:
            self.suffix_ids = await self._tokenize(pool, cfg.probe_suffix)
            if self.template.think_end and mode != "text":
                self.marker_ids = await self._tokenize(pool, self.template.think_end)
        greedy = Sampling(0.0, 1.0, 0, 0.0, 1.0).fields(self.engines[0].name)
        self.probe_head = dumps({"model": cfg.model_name, "max_tokens": cfg.probe_max_tokens,
                                 **greedy, "n": 1})[:-1] + b',"prompt":'
        await self._check_all_contexts(pool)

    def _pre_flight(self, rate: float | None) -> list[str]:
        return preflight_lines(self.engines, self.config, self.sampling, len(self.problems),
                               self.max_model_len, rate)

    async def check(self) -> list[str]:
        """``--check``: detect and check everything a run would, send no generation of the run,
        write nothing; return the pre-flight lines."""
        opts = self.options
        async with ServerPool(opts.base_urls, opts.max_in_flight, opts.policy,
                              opts.api_key) as pool:
            await self._prepare(pool, None)
            rate = await measure_rate(pool, self.engines[0], self.config, self.sampling,
                                      await self._tokenize(pool, "Hello"), opts.timeout_s)
        return self._pre_flight(rate)

    async def run(self) -> dict[str, Any]:
        """Check the servers, resume or start the journal, collect, build; return the metadata."""
        from tqdm import tqdm

        opts, cfg = self.options, self.config
        resumed = self.journal.resume() if self.journal.exists() else None
        saved = None
        if resumed is not None:
            try:
                saved = CollectConfig.from_dict(resumed.header["config"])
            except (KeyError, TypeError):
                raise CollectError(f"{self.journal.path} has an unreadable header; delete "
                                   f"{self.journal.folder} to start over.") from None
        if saved is not None:  # refuse changed settings before talking to any server
            self._check_resume(saved, cfg if opts.token_mode != "auto" else
                               dataclasses.replace(cfg, token_mode=saved.token_mode))
        async with ServerPool(opts.base_urls, opts.max_in_flight, opts.policy,
                              opts.api_key) as pool:
            await self._prepare(pool, saved)
            cfg = self.config
            for line in self._pre_flight(None):
                self.log(line)
            if resumed is None:
                created = datetime.now(timezone.utc).isoformat(timespec="seconds")
                self.journal.create({"config": cfg.to_dict(), "created": created})
                done, pending, created_at = set(), {}, created
            else:
                self.journal.open()
                done, pending = resumed.done, resumed.pending
                self.spent, created_at = resumed.spent, resumed.header["created"]
                self.log(f"resuming: {len(done)} of {len(self.problems) * cfg.branches} branches "
                         f"done, {sum(len(p.probes) for p in pending.values())} probes of "
                         f"unfinished branches kept")
            total = len(self.problems) * cfg.branches
            with tqdm(total=total, initial=len(done), unit="branch", desc="collect",
                      disable=not opts.progress, leave=False) as bar:
                self._bar = bar
                try:
                    await self._run_branches(pool, done, pending)
                finally:
                    self._bar = None
                    self.journal.close()
        engine = self.engines[0]
        run_info = {
            "servers": list(opts.base_urls),
            "engines": [e.describe() for e in self.engines],
            "token_ids_via": engine.dialect if cfg.token_mode == "ids" else None,
            "sampling_sent": self.sampling.fields(engine.name),
            "max_model_len": self.max_model_len,
            "started": created_at,
            "seconds_last_session": round(time.monotonic() - self.started, 1),
        }
        meta = build(self.journal, self.problems, cfg, self.store, run_info)
        if not opts.keep_work:
            shutil.rmtree(self.journal.folder, ignore_errors=True)
        return meta


def collect(problems: Sequence[Problem], config: CollectConfig, template: Template,
            options: RunOptions, out_dir: str | Path,
            log: Callable[[str], None] = lambda line: None) -> tuple[Path, dict[str, Any], bool]:
    """Collect a store from a served model.

    Args:
        problems: The questions (:func:`~tts_gym.collect.problems.read_problems`).
        config: The data settings (``token_mode`` may be ``"auto"``; it is resolved against
            the servers).
        template: The prompt template (:func:`~tts_gym.collect.templates.load_template`).
        options: Run settings.
        out_dir: Data directory; the store lands in ``out_dir/<store_model>/<benchmark>.json``.
        log: Called with progress notes (the CLI prints them on stderr).

    Returns:
        ``(store path, metadata, collected)``; ``collected`` is False when the same collection
        was already complete (nothing was sent), and with ``options.check_only`` (the metadata
        is then ``{"preflight": lines}``).

    Raises:
        CollectError: Bad input, refused overwrite, changed settings on resume, a server that
            keeps failing (progress is kept), or the token budget (:class:`BudgetReached`).
    """
    store = store_file(out_dir, config)
    if options.check_only:
        lines = asyncio.run(Collector(problems, config, template, options, store, log).check())
        return store, {"preflight": lines}, False
    meta = check_target(store, config, options.token_mode, options.overwrite)
    if meta is not None:
        return store, meta, False
    collector = Collector(problems, config, template, options, store, log)
    return store, asyncio.run(collector.run()), True
