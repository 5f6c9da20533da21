"""The time-to-first-byte benchmark (benchmarks/ttfb.py) briefly end to end: every double served over HTTP (the
Google one with its token endpoint, the Bedrock one verifying signatures), llmgate in front, each kind's stream
whole through it, and figures for each kind."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import ttfb


def test_every_kind_streams_through_llmgate_and_is_timed(tmp_path: Path) -> None:
    out = tmp_path / "ttfb.json"
    assert ttfb.main(["--requests", "5", "--warmup", "1", "--runs", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert len(result["runs"]) == 2
    assert set(result["median"]) == set(ttfb.KINDS)
    for kind, figures in result["median"].items():
        assert 0 < figures["direct_p50"] <= figures["direct_p99"], kind
        assert 0 < figures["llmgate_p50"] <= figures["llmgate_p99"], kind
        assert figures["diff_p50"] == figures["llmgate_p50"] - figures["direct_p50"], kind


def test_a_stream_that_is_not_whole_is_refused() -> None:
    class Answers(ttfb.Probe):
        def __init__(self, body: bytes) -> None:
            super().__init__("http://127.0.0.1:1", "/", b"", {})
            self.answer = body

        def once(self) -> tuple[float, bytes]:
            return 0.001, self.answer

    whole = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n'
    ttfb.check("openai", Answers(b"x"), Answers(whole))
    try:
        ttfb.check("openai", Answers(b"x"), Answers(whole[:-16]))
    except ttfb.BenchError as exc:
        assert "not a whole OpenAI stream" in str(exc)
    else:
        raise AssertionError("a stream without [DONE] passed the check")
