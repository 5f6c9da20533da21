"""The cache benchmark's parts (benchmarks/cache_hit.py; its runs need wrk, which CI lacks): the floor app answers
the recorded hit as it is, the wrk scripts ask for a miss only where told, and ratios are paired per round."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import cache_hit
from benchmarks.cache_hit import Load, Run, chat_body, paired, summarize, wrk_script


def test_the_floor_answers_the_recorded_hit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps({"headers": [["content-type", "application/json"], ["x-llmgate-cache", "hit"]],
                                  "body": '{"id":"chatcmpl-1"}'}))
    monkeypatch.setenv("LLMGATE_FLOOR_ANSWER", str(answer))
    headers, body = cache_hit._floor_answer()
    monkeypatch.setattr(cache_hit, "_HEADERS", headers)
    monkeypatch.setattr(cache_hit, "_BODY", body)
    incoming = [{"type": "http.request", "body": b"{", "more_body": True},
                {"type": "http.request", "body": b"}", "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(cache_hit.floor_app({"type": "http"}, receive, send))
    assert incoming == []  # the whole request read
    assert sent == [{"type": "http.response.start", "status": 200,
                     "headers": [(b"content-type", b"application/json"), (b"x-llmgate-cache", b"hit")]},
                    {"type": "http.response.body", "body": b'{"id":"chatcmpl-1"}'}]


def test_only_the_miss_script_bypasses_the_cache(tmp_path: Path) -> None:
    miss = wrk_script(tmp_path, "miss", chat_body(False, 0), False, {"cache-control": "no-cache"}).read_text()
    hit = wrk_script(tmp_path, "hit", chat_body(True, 2), True, {}).read_text()
    assert 'wrk.headers["cache-control"] = "no-cache"' in miss and "cache-control" not in hit
    assert "report.setup_chat(false)" in miss and "report.setup_chat(true)" in hit
    assert 'wrk.body = [==[{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello' in miss
    assert all(script.rstrip().endswith("done = report.done") for script in (hit, miss))


def test_the_body_is_the_labs_chat_request_after_the_turns_asked_for() -> None:
    plain, long = json.loads(chat_body(False, 0)), json.loads(chat_body(True, 100))
    assert plain == {"model": "gpt-4o-mini",
                     "messages": [{"role": "user", "content": "Say hello in one short sentence please."}]}
    assert long["stream"] is True and len(long["messages"]) == 201 and long["messages"][-1] == plain["messages"][0]
    assert len(chat_body(False, 100)) > 20_000


def test_ratios_are_paired_within_rounds() -> None:
    def load(name: str, *runs: tuple[float, float]) -> Load:
        return Load(name, "", 0, runs=[Run(int(rps), rps, cpu, 1.0, 0) for rps, cpu in runs])

    # the host slows by half in the second round: each round's pair still says 2x
    hit = load("hit", (10_000, 50), (5_000, 100), (9_000, 60))
    miss = load("miss", (5_000, 100), (2_500, 200), (3_000, 180))
    floor = load("floor", (20_000, 25), (10_000, 50), (18_000, 30))
    assert paired(hit, miss, "rps") == 2.0 and paired(miss, hit, "cpu_us") == 2.0
    summary = summarize({"hit": hit, "miss": miss, "floor": floor})
    assert summary["ratios"]["hit/floor CPU a request"] == 2.0
    assert summary["hit"]["cpu_us"] == 60 and summary["miss"]["errors"] == 0
