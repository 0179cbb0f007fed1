"""A discovery run against a scripted local OpenAI-compatible server (no API key, no network).

Shows the whole loop on the real search split (or on generated tiny stores when no data is
configured) and prints what a round costs: prompt size in characters and approximate tokens
(~4 characters per token; the scripted server reports that estimate as its usage), and the
wall time of the sandboxed beta sweep. The scripted "LLM" proposes two honest controllers from
``tests/synthesis_candidates.py`` and one syntax error.

    TTS_GYM_DATA=../shared/replay python examples/discover_scripted.py --out /tmp/disc
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.synthesis.llm import LLMConfig  # noqa: E402
from agents.synthesis.loop import DiscoveryConfig, run_discovery  # noqa: E402
from tests import synthesis_candidates as C  # noqa: E402
from tests.fake_openai_server import FakeOpenAI  # noqa: E402
from tts_gym.paths import MODELS  # noqa: E402
from tts_gym.sandbox.limits import SandboxLimits  # noqa: E402
from tts_gym.testing import tiny_questions, write_store_json  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="run folder (default: a temp folder)")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--final-seeds", type=int, default=100)
    p.add_argument("--models", nargs="+", default=None)
    args = p.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="discover-")) / "run"
    data_dir = os.environ.get("TTS_GYM_DATA")
    models = tuple(args.models or MODELS)
    if not data_dir:
        data_dir = tempfile.mkdtemp(prefix="tiny-data-")
        models = ("tiny-a", "tiny-b")
        for i, m in enumerate(models):
            write_store_json(Path(data_dir) / m / "aime24.json", tiny_questions(i, questions=6))
            write_store_json(Path(data_dir) / m / "aime25.json", tiny_questions(9 + i))
    script = {
        1: [{"reply": C.reply(C.GOOD)}],
        2: [{"reply": C.reply(C.PROBING)}],
        3: [{"reply": C.reply(C.SYNTAX_ERROR)}],
    }
    with FakeOpenAI(script) as srv:
        cfg = DiscoveryConfig(
            out=out,
            rounds=3,
            llm=LLMConfig(model="scripted", base_url=srv.base_url),
            models=models,
            data_dir=data_dir,
            seeds=args.seeds,
            final_seeds=args.final_seeds,
            limits=SandboxLimits(timeout_s=1800),
        )
        start = time.monotonic()
        summary = run_discovery(cfg)
        total = time.monotonic() - start
    print(json.dumps(summary["chosen"], indent=1))
    for r in (1, 2, 3):
        rec = json.loads((out / "rounds" / f"round_{r:03d}.json").read_text())
        chars = sum(len(m["content"]) for m in rec["prompt"])
        u = rec["response"]["usage"]
        print(
            f"round {r}: {rec['status']:8s} prompt {chars} chars ~{u['prompt_tokens']} tokens, "
            f"reply ~{u['completion_tokens']} tokens, sandboxed sweep {rec['eval_seconds']} s"
        )
    print(f"total {total:.1f} s; report {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
