"""The soak (`python -m benchmarks.soak`), for a few seconds: its report holds what it promises, and a short run
at load loses nothing and leaks nothing that shows in seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_short_soak_reports_requests_against_usage_rows(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMGATE_", "OPENAI_"))}
    run = subprocess.run([sys.executable, "-m", "benchmarks.soak", "--minutes", "0.05", "--concurrency", "4",
                          "--json", str(out)], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(out.read_text())
    assert report["requests"] > 0 and report["errors"] == {}
    assert report["usage_rows"] == report["requests"]  # every request left its usage event
    assert set(report["answered"]) == {"stream", "whole", "embeddings"} and report["left"] > 0
    # Each client that left closed its upstream request, but for the first long ones after quick answers only,
    # sent before any of them had waited 0.25 s: those went through the pooled client (docs/reliability.md).
    assert report["left"] - 4 <= report["upstream_abandoned"] <= report["left"]
    assert report["rss_mb_end"] > 0 and report["fds_end"] > 0 and len(report["samples"]) >= 2
    assert "usage rows" in run.stdout and "RSS" in run.stdout
