"""Download the 12 public replay stores, verify their SHA-256, write them atomically.

The stores were published with the AutoTTS paper ("LLMs Improving LLMs: Agentic Discovery for
Test-Time Scaling", arXiv 2605.08083) in the repository ``zhengkid/AutoTTS``; this module fetches
them from the pinned commit ``3cd98d1`` (``efficient_reasoning_controller/test_environment/
<model>/<benchmark>.json``) with nothing but the standard library (:mod:`urllib`).

Guarantees:

* every file is checked against the SHA-256 digest embedded below before it gets its final name;
* bytes are streamed into ``<name>.part`` beside the target and renamed only when complete and
  verified, so a final name never holds a partial or corrupt file;
* resume-safe: files already present with the right digest are skipped without a request;
* every failure raises :class:`DownloadError` with one sentence saying what happened and what to
  do (no traceback reaches the command line).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from tts_gym.paths import BENCHMARKS, MODELS, default_download_dir

PINNED_COMMIT = "3cd98d1"
"""Commit of ``zhengkid/AutoTTS`` the stores are fetched from."""

DEFAULT_BASE_URL = (
    f"https://raw.githubusercontent.com/zhengkid/AutoTTS/{PINNED_COMMIT}/"
    "efficient_reasoning_controller/test_environment"
)
"""Folder URL holding ``<model>/<benchmark>.json``."""

URL_ENV = "TTS_GYM_DOWNLOAD_URL"
"""Environment variable overriding :data:`DEFAULT_BASE_URL` (a mirror, or a test server)."""

SHA256: dict[tuple[str, str], str] = {
    ("Qwen3-0.6B", "aime24"): "6b4297405b494c84afb05b337af315c617513eb2580ed327ca7040b760988a7d",
    ("Qwen3-0.6B", "aime25"): "33f65695ecc78fb777f53bead2128ba1249772b3608c6a22bd4e674488d453e0",
    ("Qwen3-0.6B", "hmmt25"): "7e7c574aaedcd05b36b801c11e3bdd7e2cfd3b7309a2376967cc1e8bc01ebebc",
    ("Qwen3-1.7B", "aime24"): "5d6c9a63e26c7cf60181c53b67adc7017db146bf2ff1e3b9784673cb97313ad1",
    ("Qwen3-1.7B", "aime25"): "77bfb8e8589d0c0da3ccb6d5852c37bf23273e047664a5086d492896a5ae2496",
    ("Qwen3-1.7B", "hmmt25"): "87d158ecdc3551e375891d19917ce02f8fdcadd778afe99ad2ae179f872fb298",
    ("Qwen3-4B", "aime24"): "d99ce8711c60605b7555a7fc6e66cc5ae0abe7ce6b36bf4e712802d26aa7ffdd",
    ("Qwen3-4B", "aime25"): "977f56022b0cd225bd0233aff1f7b39740c45ec79693475ada8c766ee4097a3f",
    ("Qwen3-4B", "hmmt25"): "4bc0b51765a0fc5a3d9a462b1ff317b70577d478c5cb5e06f20fe9d5b73b4b1c",
    ("Qwen3-8B", "aime24"): "be725bdacc64712088d5c947b9b869471ad659c8465c3e5b6e9ff5191bfd0128",
    ("Qwen3-8B", "aime25"): "969bba7bb0276f66d421d069e078e20a9b3ff4a59977393a2733a97ca6e4566c",
    ("Qwen3-8B", "hmmt25"): "561efa74e3dd4ca79b67463c7c5d449762824b4534bdc7267b19d9af29d2a9a9",
}
"""SHA-256 of every published store, keyed by (model, benchmark) (from the data's SHA256SUMS)."""

CHUNK = 1 << 16
USER_AGENT = "tts-gym-download/0.1 (+python urllib)"


class DownloadError(Exception):
    """A download failed; the message is one sentence saying what happened and what to do."""


class _Interrupted(Exception):
    """The body stopped before it was complete (connection dropped, reset or timed out)."""


@dataclass(frozen=True)
class FileResult:
    """What happened to one store file.

    Attributes:
        model: Model name.
        benchmark: Benchmark name.
        path: The final file.
        status: ``"downloaded"``, ``"present"`` (skipped, digest ok) or ``"replaced"`` (a file
            with a wrong digest was there and was downloaded again).
        n_bytes: File size in bytes.
        seconds: Wall time spent on this file.
    """

    model: str
    benchmark: str
    path: Path
    status: str
    n_bytes: int
    seconds: float


def base_url_from(base_url: str | None = None) -> str:
    """``base_url``, else ``TTS_GYM_DOWNLOAD_URL``, else :data:`DEFAULT_BASE_URL`."""
    return (base_url or os.environ.get(URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def store_url(base_url: str, model: str, benchmark: str) -> str:
    """URL of one store file under ``base_url``.

    >>> store_url("http://127.0.0.1:8000/x/", "Qwen3-8B", "aime24")
    'http://127.0.0.1:8000/x/Qwen3-8B/aime24.json'
    """
    return f"{base_url.rstrip('/')}/{quote(model)}/{quote(benchmark)}.json"


def file_sha256(path: str | os.PathLike[str]) -> str | None:
    """Hex SHA-256 of a file's bytes, or None if it does not exist or cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def select_stores(
    models: Iterable[str] | None,
    benchmarks: Iterable[str] | None,
    digests: Mapping[tuple[str, str], str],
) -> list[tuple[str, str]]:
    """The (model, benchmark) pairs to fetch, in a stable order.

    Args:
        models: Restrict to these models (None: all).
        benchmarks: Restrict to these benchmarks (None: all).
        digests: The known files; only pairs listed here can be fetched.

    Returns:
        The selected pairs, sorted.

    Raises:
        DownloadError: A requested model or benchmark is unknown.
    """
    known_models = sorted({m for m, _ in digests}, key=_model_order)
    known_benchmarks = sorted({b for _, b in digests}, key=_benchmark_order)
    want_m = list(dict.fromkeys(models)) if models else known_models
    want_b = list(dict.fromkeys(benchmarks)) if benchmarks else known_benchmarks
    for value, known, what in (
        (want_m, known_models, "model"),
        (want_b, known_benchmarks, "benchmark"),
    ):
        bad = [v for v in value if v not in known]
        if bad:
            raise DownloadError(
                f"Unknown {what} {', '.join(map(repr, bad))}; choose from {', '.join(known)}."
            )
    pairs = [(m, b) for m in want_m for b in want_b if (m, b) in digests]
    return sorted(pairs, key=lambda p: (_model_order(p[0]), _benchmark_order(p[1])))


def _model_order(name: str) -> tuple[int, str]:
    return (MODELS.index(name) if name in MODELS else len(MODELS), name)


def _benchmark_order(name: str) -> tuple[int, str]:
    return (BENCHMARKS.index(name) if name in BENCHMARKS else len(BENCHMARKS), name)


def _stream(url: str, part: Path, timeout: float) -> tuple[str, int]:
    """Fetch ``url`` into ``part``; return (sha256 hex, bytes). Raises urllib / _Interrupted."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    digest = hashlib.sha256()
    got = 0
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        with open(part, "wb") as fh:
            try:
                while chunk := response.read1(CHUNK):
                    digest.update(chunk)
                    fh.write(chunk)
                    got += len(chunk)
            except (http.client.HTTPException, OSError) as exc:
                raise _Interrupted(f"{got} bytes received, then {_reason(exc)}") from None
            if expected is not None and got != expected:
                raise _Interrupted(
                    f"{got} of {expected} bytes received, then the connection closed"
                )
            fh.flush()
            os.fsync(fh.fileno())
    return digest.hexdigest(), got


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    text = str(exc) or type(exc).__name__
    return text[:-1] if text.endswith(".") else text


def fetch_file(
    url: str,
    dest: Path,
    sha256: str,
    *,
    label: str,
    timeout: float = 60.0,
    retries: int = 2,
    retry_delay: float = 1.0,
) -> int:
    """Download ``url`` to ``dest`` through ``dest.part``, verify ``sha256``, rename.

    Args:
        url: Source URL.
        dest: Final path (its folder is created).
        sha256: Expected hex digest of the whole file.
        label: How messages name the file (``"<model>/<benchmark>.json"``).
        timeout: Seconds without progress before giving up on a connection.
        retries: Extra attempts after a connection dropped mid-body.
        retry_delay: Seconds before the first retry (doubled each time).

    Returns:
        The number of bytes written.

    Raises:
        DownloadError: Host unreachable, HTTP error, repeated dropped connections, or a digest
            mismatch; ``dest.part`` is deleted in every case and ``dest`` is never touched.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    host = urlsplit(url).netloc or url
    try:
        for attempt in range(retries + 1):
            try:
                got_sha, n_bytes = _stream(url, part, timeout)
                break
            except _Interrupted as exc:
                if attempt == retries:
                    raise DownloadError(
                        f"The download of {label} from {host} was interrupted ({exc}, "
                        f"{attempt + 1} attempt{'s' if attempt else ''}); nothing was written to "
                        f"{dest}; run `tts-gym download` again (finished files are kept)."
                    ) from None
                time.sleep(retry_delay * 2**attempt)
            except urllib.error.HTTPError as exc:
                raise DownloadError(
                    f"{host} answered HTTP {exc.code} {exc.reason} for {url}; check the base URL "
                    f"(--base-url or {URL_ENV}), which must hold <model>/<benchmark>.json."
                ) from None
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                raise DownloadError(
                    f"Cannot reach {host} ({_reason(exc)}): check your internet connection or "
                    f"proxy and run `tts-gym download` again, or point --base-url / {URL_ENV} "
                    "at a reachable mirror."
                ) from None
        if got_sha != sha256:
            raise DownloadError(
                f"{label} from {url} is corrupt or not the published file: SHA-256 {got_sha} "
                f"instead of {sha256}; the temporary file was deleted and nothing was written to "
                f"{dest}; run `tts-gym download` again, and if it persists check --base-url / "
                f"{URL_ENV} (it must serve AutoTTS commit {PINNED_COMMIT})."
            )
        os.replace(part, dest)
        return n_bytes
    finally:
        part.unlink(missing_ok=True)


def download_stores(
    models: Iterable[str] | None = None,
    benchmarks: Iterable[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    base_url: str | None = None,
    digests: Mapping[tuple[str, str], str] | None = None,
    timeout: float = 60.0,
    retries: int = 2,
    retry_delay: float = 1.0,
    log: Callable[[str], None] | None = None,
) -> list[FileResult]:
    """Fetch and verify the replay stores into ``data_dir``.

    Args:
        models: Restrict to these models (default: all four).
        benchmarks: Restrict to these benchmarks (default: all three).
        data_dir: Target folder (default: the download cache, see :mod:`tts_gym.paths`); files
            land in ``<data_dir>/<model>/<benchmark>.json``.
        base_url: Folder URL (default: ``TTS_GYM_DOWNLOAD_URL``, else the pinned GitHub commit).
        digests: Expected SHA-256 per (model, benchmark) (default: :data:`SHA256`).
        timeout: Seconds without progress before a connection is abandoned.
        retries: Extra attempts per file after a connection dropped mid-body.
        retry_delay: Seconds before the first retry (doubled each time).
        log: Called with one progress line per file (the CLI prints them to stderr).

    Returns:
        One :class:`FileResult` per selected store.

    Raises:
        DownloadError: See :func:`fetch_file`; files finished before the failure are kept.
    """
    digests = SHA256 if digests is None else digests
    root = Path(data_dir).expanduser() if data_dir is not None else default_download_dir()
    base = base_url_from(base_url)
    pairs = select_stores(models, benchmarks, digests)
    results = []
    for i, (model, benchmark) in enumerate(pairs, 1):
        start = time.perf_counter()
        label = f"{model}/{benchmark}.json"
        dest = root / model / f"{benchmark}.json"
        expected = digests[(model, benchmark)]
        present = file_sha256(dest)
        if present == expected:
            status, n_bytes = "present", dest.stat().st_size
        else:
            n_bytes = fetch_file(
                store_url(base, model, benchmark),
                dest,
                expected,
                label=label,
                timeout=timeout,
                retries=retries,
                retry_delay=retry_delay,
            )
            status = "downloaded" if present is None else "replaced"
        result = FileResult(model, benchmark, dest, status, n_bytes, time.perf_counter() - start)
        results.append(result)
        if log is not None:
            log(_progress_line(i, len(pairs), result))
    return results


def _progress_line(i: int, total: int, r: FileResult) -> str:
    what = {
        "present": "already present, sha256 ok, skipped",
        "downloaded": f"downloaded in {r.seconds:.2f} s, sha256 ok",
        "replaced": f"had a wrong digest; downloaded again in {r.seconds:.2f} s, sha256 ok",
    }[r.status]
    width = len(str(total))
    label = f"{r.model}/{r.benchmark}.json"
    return f"[{i:>{width}}/{total}] {label:<24} {r.n_bytes / 1e6:6.2f} MB  {what}"
