"""``tts-gym download`` against an HTTP server on 127.0.0.1 started by the tests (no real network).

The server serves fixture stores under several prefixes that misbehave on purpose: ``/good``
(correct files), ``/corrupt`` (one flipped byte, same length), ``/drop`` (the connection closes
half-way through the body), ``/flaky`` (drops the first request of each file, then serves it),
``/nolength`` (no Content-Length, close-delimited), ``/slow`` (sends headers, then stalls), and
anything else answers 404.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import real_data_dir, requires_data
from tts_gym import download
from tts_gym.cli import main
from tts_gym.download import SHA256, DownloadError, download_stores, file_sha256
from tts_gym.store import load_store
from tts_gym.testing import tiny_questions

PAIRS = [("Qwen3-8B", "aime24"), ("Qwen3-8B", "aime25"), ("Qwen3-4B", "aime24")]


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    hits: Counter = Counter()
    lock = threading.Lock()

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        mode, _, rest = self.path.lstrip("/").partition("/")
        key = "/" + rest
        with self.lock:
            self.hits[self.path] += 1
            hit = self.hits[self.path]
        body = self.files.get(key)
        if body is None:
            self.send_error(404, "Not Found")
            return
        if mode == "corrupt":
            body = body[:100] + bytes([body[100] ^ 1]) + body[101:]
        elif mode not in ("good", "drop", "flaky", "nolength", "slow"):
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if mode != "nolength":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "slow":
            self.wfile.write(body[:10])
            self.wfile.flush()
            time.sleep(1.5)
            return
        if mode == "drop" or (mode == "flaky" and hit == 1):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture(scope="module")
def fixtures() -> dict[tuple[str, str], bytes]:
    """Fixture store bytes per (model, benchmark): small, valid, all different."""
    out = {}
    for i, (m, b) in enumerate(PAIRS):
        data = tiny_questions(seed=20 + i, questions=2, branches=4)
        out[(m, b)] = json.dumps(data).encode()
    return out


@pytest.fixture(scope="module")
def digests(fixtures) -> dict[tuple[str, str], str]:
    """The injectable digest mapping for the fixture files."""
    return {k: hashlib.sha256(v).hexdigest() for k, v in fixtures.items()}


def _serve(files: dict[str, bytes]):
    handler = type("Handler", (_Handler,), {"files": files, "hits": Counter()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, handler


@pytest.fixture(scope="module")
def server(fixtures):
    files = {f"/{m}/{b}.json": body for (m, b), body in fixtures.items()}
    srv, thread, handler = _serve(files)
    yield f"http://127.0.0.1:{srv.server_address[1]}", handler
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def _no_env_url(monkeypatch):
    monkeypatch.delenv(download.URL_ENV, raising=False)


def _refused_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    return f"http://127.0.0.1:{port}/good"


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_embedded_digests_cover_the_twelve_stores():
    assert sorted(SHA256) == sorted((m, b) for m in download.MODELS for b in download.BENCHMARKS)
    assert all(len(d) == 64 and int(d, 16) >= 0 for d in SHA256.values())
    assert download.DEFAULT_BASE_URL == (
        "https://raw.githubusercontent.com/zhengkid/AutoTTS/3cd98d1/"
        "efficient_reasoning_controller/test_environment"
    )


@requires_data
def test_embedded_digests_match_sha256sums_and_the_shipped_files():
    root = real_data_dir()
    listed = {}
    for line in (root / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        model, file = name.split("/")
        listed[(model, file.removesuffix(".json"))] = digest
    assert listed == SHA256
    for (m, b), digest in SHA256.items():
        assert file_sha256(root / m / f"{b}.json") == digest


def test_download_verifies_and_writes(server, fixtures, digests, tmp_path):
    url, handler = server
    lines: list[str] = []
    results = download_stores(
        data_dir=tmp_path, base_url=url + "/good", digests=digests, log=lines.append
    )
    assert [(r.model, r.benchmark, r.status) for r in results] == [
        ("Qwen3-4B", "aime24", "downloaded"),
        ("Qwen3-8B", "aime24", "downloaded"),
        ("Qwen3-8B", "aime25", "downloaded"),
    ]
    for (m, b), body in fixtures.items():
        assert (tmp_path / m / f"{b}.json").read_bytes() == body
    assert _tree(tmp_path) == [
        "Qwen3-4B/aime24.json",
        "Qwen3-8B/aime24.json",
        "Qwen3-8B/aime25.json",
    ]
    assert len(lines) == 3 and lines[0].startswith("[1/3] Qwen3-4B/aime24.json")
    assert all("sha256 ok" in line for line in lines)
    store = load_store("Qwen3-8B", "aime25", tmp_path)
    assert store.n_questions == 2


def test_resume_skips_verified_files_and_replaces_bad_ones(server, fixtures, digests, tmp_path):
    url, handler = server
    base = url + "/good"
    download_stores(["Qwen3-8B"], ["aime24"], tmp_path, base_url=base, digests=digests)
    (tmp_path / "Qwen3-4B").mkdir()
    (tmp_path / "Qwen3-4B" / "aime24.json").write_bytes(b"[] stale or damaged")
    before = Counter(handler.hits)
    results = download_stores(data_dir=tmp_path, base_url=base, digests=digests)
    status = {(r.model, r.benchmark): r.status for r in results}
    assert status == {
        ("Qwen3-4B", "aime24"): "replaced",
        ("Qwen3-8B", "aime24"): "present",
        ("Qwen3-8B", "aime25"): "downloaded",
    }
    new_hits = handler.hits - before
    assert new_hits == Counter({"/good/Qwen3-4B/aime24.json": 1, "/good/Qwen3-8B/aime25.json": 1})
    for (m, b), body in fixtures.items():
        assert (tmp_path / m / f"{b}.json").read_bytes() == body
    # Everything present now: a third run makes no request at all.
    before = Counter(handler.hits)
    results = download_stores(data_dir=tmp_path, base_url=base, digests=digests)
    assert {r.status for r in results} == {"present"} and handler.hits == before


def test_digest_mismatch_deletes_temp_and_says_what_to_do(server, digests, tmp_path):
    url, _ = server
    with pytest.raises(DownloadError) as info:
        download_stores(
            ["Qwen3-8B"], ["aime24"], tmp_path, base_url=url + "/corrupt", digests=digests
        )
    msg = str(info.value)
    assert "Qwen3-8B/aime24.json" in msg and "SHA-256" in msg
    assert digests[("Qwen3-8B", "aime24")] in msg
    assert "run `tts-gym download` again" in msg and "--base-url" in msg
    assert _tree(tmp_path) == []  # no final file, no .part left behind


def test_digest_check_uses_the_injected_mapping(server, fixtures, tmp_path):
    """The good file is rejected when the mapping expects another digest: the check is applied."""
    url, _ = server
    wrong = {("Qwen3-8B", "aime24"): hashlib.sha256(b"something else").hexdigest()}
    with pytest.raises(DownloadError, match="SHA-256"):
        download_stores(data_dir=tmp_path, base_url=url + "/good", digests=wrong)
    assert _tree(tmp_path) == []


def test_existing_wrong_file_survives_a_failed_redownload(server, digests, tmp_path):
    """Atomic: a failed download never replaces or truncates what is at the final name."""
    url, _ = server
    dest = tmp_path / "Qwen3-8B" / "aime24.json"
    dest.parent.mkdir()
    dest.write_bytes(b"old content")
    with pytest.raises(DownloadError):
        download_stores(
            ["Qwen3-8B"], ["aime24"], tmp_path, base_url=url + "/corrupt", digests=digests
        )
    assert dest.read_bytes() == b"old content"
    assert _tree(tmp_path) == ["Qwen3-8B/aime24.json"]


def test_dropped_connection_mid_body(server, digests, tmp_path):
    url, handler = server
    before = Counter(handler.hits)
    with pytest.raises(DownloadError) as info:
        download_stores(
            ["Qwen3-8B"],
            ["aime25"],
            tmp_path,
            base_url=url + "/drop",
            digests=digests,
            retries=1,
            retry_delay=0.01,
        )
    msg = str(info.value)
    assert "interrupted" in msg and "Qwen3-8B/aime25.json" in msg and "of" in msg
    assert "2 attempts" in msg and "run `tts-gym download` again" in msg
    assert (handler.hits - before)["/drop/Qwen3-8B/aime25.json"] == 2  # retried once
    assert _tree(tmp_path) == []


def test_dropped_connection_is_retried(server, fixtures, digests, tmp_path):
    url, handler = server
    results = download_stores(
        ["Qwen3-4B"], None, tmp_path, base_url=url + "/flaky", digests=digests, retry_delay=0.01
    )
    assert results[0].status == "downloaded"
    assert handler.hits["/flaky/Qwen3-4B/aime24.json"] == 2
    assert (tmp_path / "Qwen3-4B" / "aime24.json").read_bytes() == fixtures[("Qwen3-4B", "aime24")]


def test_body_without_content_length(server, fixtures, digests, tmp_path):
    url, _ = server
    download_stores(["Qwen3-8B"], ["aime24"], tmp_path, base_url=url + "/nolength", digests=digests)
    assert (tmp_path / "Qwen3-8B" / "aime24.json").read_bytes() == fixtures[("Qwen3-8B", "aime24")]


def test_stalled_server_times_out(server, digests, tmp_path):
    url, _ = server
    with pytest.raises(DownloadError, match="timed out"):
        download_stores(
            ["Qwen3-8B"],
            ["aime24"],
            tmp_path,
            base_url=url + "/slow",
            digests=digests,
            timeout=0.3,
            retries=0,
        )
    assert _tree(tmp_path) == []


def test_http_404_names_the_url(server, digests, tmp_path):
    url, _ = server
    with pytest.raises(DownloadError) as info:
        download_stores(["Qwen3-8B"], ["aime24"], tmp_path, base_url=url + "/nope", digests=digests)
    assert "HTTP 404" in str(info.value) and "/nope/Qwen3-8B/aime24.json" in str(info.value)
    assert _tree(tmp_path) == []


def test_refused_port_is_one_sentence(digests, tmp_path):
    with pytest.raises(DownloadError) as info:
        download_stores(data_dir=tmp_path, base_url=_refused_url(), digests=digests)
    msg = str(info.value)
    assert msg.startswith("Cannot reach 127.0.0.1:") and "connection refused" in msg
    assert "internet connection" in msg and msg.count(". ") == 0 and msg.endswith(".")
    assert _tree(tmp_path) == []


def test_unknown_model_or_benchmark(digests, tmp_path):
    with pytest.raises(
        DownloadError, match="Unknown model 'Qwen9'; choose from Qwen3-4B, Qwen3-8B"
    ):
        download_stores(["Qwen9"], None, tmp_path, digests=digests)
    with pytest.raises(DownloadError, match="Unknown benchmark 'gsm8k'"):
        download_stores(None, ["gsm8k"], tmp_path)


def test_selection_order_and_restriction():
    pairs = download.select_stores(None, None, SHA256)
    assert len(pairs) == 12 and pairs[0] == ("Qwen3-0.6B", "aime24")
    assert pairs[-1] == ("Qwen3-8B", "hmmt25")
    assert download.select_stores(["Qwen3-8B", "Qwen3-8B"], ["hmmt25", "aime24"], SHA256) == [
        ("Qwen3-8B", "aime24"),
        ("Qwen3-8B", "hmmt25"),
    ]


def test_default_target_is_the_download_cache(server, digests, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    url, _ = server
    download_stores(["Qwen3-8B"], ["aime24"], base_url=url + "/good", digests=digests)
    assert _tree(tmp_path / "xdg" / "tts-gym" / "replay") == ["Qwen3-8B/aime24.json"]
    monkeypatch.delenv("TTS_GYM_DATA", raising=False)
    assert load_store("Qwen3-8B", "aime24").n_questions == 2  # found without configuration


# ---- the command line -------------------------------------------------------------------------


@pytest.fixture
def cli_digests(monkeypatch, digests):
    """The CLI uses the module's embedded mapping; swap in the fixture digests."""
    monkeypatch.setattr(download, "SHA256", dict(digests))


def test_cli_download_progress_and_summary(server, cli_digests, tmp_path, capsys):
    url, _ = server
    argv = ["download", "--data-dir", str(tmp_path), "--base-url", url + "/good"]
    assert main(argv + ["--model", "Qwen3-8B", "--benchmark", "aime24,aime25"]) == 0
    out, err = capsys.readouterr()
    assert "2 stores verified" in out and "(2 downloaded, 0 already present)" in out
    progress = [line for line in err.splitlines() if line.startswith("[")]
    assert [line.split()[1] for line in progress] == [
        "Qwen3-8B/aime24.json",
        "Qwen3-8B/aime25.json",
    ]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "3 stores verified" in out and "(1 downloaded, 2 already present)" in out
    assert err.count("already present, sha256 ok, skipped") == 2


def test_cli_base_url_from_environment(server, cli_digests, tmp_path, capsys, monkeypatch):
    url, _ = server
    monkeypatch.setenv(download.URL_ENV, url + "/good")
    assert main(["download", "--data-dir", str(tmp_path), "--model", "Qwen3-4B"]) == 0
    assert _tree(tmp_path) == ["Qwen3-4B/aime24.json"]
    assert f"from {url}/good into" in capsys.readouterr().err


def test_cli_offline_is_one_clear_sentence(cli_digests, tmp_path, capsys):
    code = main(["download", "--data-dir", str(tmp_path), "--base-url", _refused_url()])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in err
    assert errors[0].startswith("tts-gym download: error: Cannot reach 127.0.0.1:")


def test_cli_digest_mismatch_exit_code(server, cli_digests, tmp_path, capsys):
    url, _ = server
    code = main(["download", "--data-dir", str(tmp_path), "--base-url", url + "/corrupt"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "is corrupt" in err
    assert _tree(tmp_path) == []


def test_cli_unknown_model(tmp_path, capsys):
    code = main(["download", "--data-dir", str(tmp_path), "--model", "GPT-5"])
    assert code == 1 and "Unknown model 'GPT-5'" in capsys.readouterr().err


@requires_data
def test_all_twelve_real_stores_through_a_local_mirror(tmp_path, capsys):
    """The shipped files served on 127.0.0.1 pass the embedded digests and then load."""
    root = real_data_dir()
    files = {f"/{m}/{b}.json": (root / m / f"{b}.json").read_bytes() for m, b in SHA256}
    srv, thread, handler = _serve(files)
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/good"
        assert main(["download", "--data-dir", str(tmp_path), "--base-url", url]) == 0
        assert "12 stores verified" in capsys.readouterr().out
        assert sum(handler.hits.values()) == 12
        assert main(["download", "--data-dir", str(tmp_path), "--base-url", url]) == 0
        assert "(0 downloaded, 12 already present)" in capsys.readouterr().out
        assert sum(handler.hits.values()) == 12
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)
    assert load_store("Qwen3-8B", "aime24", tmp_path).n_questions == 30


def test_leftover_part_file_from_a_killed_run_is_overwritten(server, fixtures, digests, tmp_path):
    url, _ = server
    part = tmp_path / "Qwen3-8B" / "aime24.json.part"
    part.parent.mkdir()
    part.write_bytes(b"x" * 100_000)  # longer than the real file: must be truncated, not patched
    download_stores(["Qwen3-8B"], ["aime24"], tmp_path, base_url=url + "/good", digests=digests)
    assert _tree(tmp_path) == ["Qwen3-8B/aime24.json"]
    assert (tmp_path / "Qwen3-8B" / "aime24.json").read_bytes() == fixtures[("Qwen3-8B", "aime24")]


def test_cli_notes_when_tts_gym_data_would_shadow_the_target(
    server, cli_digests, tmp_path, capsys, monkeypatch
):
    url, _ = server
    monkeypatch.setenv("TTS_GYM_DATA", str(tmp_path / "elsewhere"))
    argv = ["download", "--data-dir", str(tmp_path / "dl"), "--base-url", url + "/good"]
    assert main([*argv, "--model", "Qwen3-4B"]) == 0
    assert "note: TTS_GYM_DATA=" in capsys.readouterr().err
    monkeypatch.setenv("TTS_GYM_DATA", str(tmp_path / "dl"))
    assert main([*argv, "--model", "Qwen3-4B"]) == 0
    assert "note:" not in capsys.readouterr().err
