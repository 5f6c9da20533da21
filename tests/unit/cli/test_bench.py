"""`llmgate bench`'s options and figures, without a network (tests/integration/test_llmgate_bench.py runs it)."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import pytest

from llmgate.cli import bench, main
from llmgate.cli.bench import DEFAULT_DURATION_S, OptionError, build_plan, endpoint_url
from llmgate.cli.bench_load import LoadPlan, Tally, percentile, percentiles_ms, summarize


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_parser(parser.add_subparsers())
    return parser.parse_args(["bench", *argv])


@pytest.mark.parametrize(("given", "posted"), [
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1/chat/completions"),
    ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/v1/chat/completions"),
    ("https://gw.example/v1/", "https://gw.example/v1/chat/completions"),
    ("http://h/openai/v1", "http://h/openai/v1/chat/completions"),
    ("http://h/v1/embeddings", "http://h/v1/embeddings"),
    ("http://h/v1/chat/completions?api-version=1", "http://h/v1/chat/completions?api-version=1"),
])
def test_endpoint_url(given: str, posted: str) -> None:
    assert endpoint_url(given) == posted


@pytest.mark.parametrize("bad", ["127.0.0.1:8000", "ftp://h/v1", "http:///v1"])
def test_endpoint_url_refuses_what_is_not_http(bad: str) -> None:
    with pytest.raises(OptionError, match="not an http"):
        endpoint_url(bad)


def test_the_default_plan_is_a_short_chat_for_ten_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    plan = build_plan(args("http://h"))
    assert plan.duration_s == DEFAULT_DURATION_S and plan.requests is None and plan.concurrency == 8
    assert plan.body == b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello in one short ' \
                        b'sentence."}]}'
    assert plan.headers == {"content-type": "application/json"} and not plan.is_stream


def test_requests_alone_set_no_duration_and_options_shape_the_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-1")
    plan = build_plan(args("http://h", "-n", "5", "--model", "m", "--prompt", "p", "--max-tokens", "7", "--stream",
                           "--key-env", "MY_KEY", "-H", "X-Trace: on", "-H", "x-empty:"))
    assert plan.requests == 5 and plan.duration_s is None and plan.is_stream
    assert plan.body == b'{"model": "m", "messages": [{"role": "user", "content": "p"}], "max_tokens": 7, ' \
                        b'"stream": true}'
    assert plan.headers == {"content-type": "application/json", "authorization": "Bearer sk-1", "x-trace": "on",
                            "x-empty": ""}


def test_a_body_file_is_sent_as_it_is(tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(b'{"model": "x", "input": "embed me",  "stream": true}')
    plan = build_plan(args("http://h/v1/embeddings", "--body", str(body), "-d", "2"))
    assert plan.body == body.read_bytes() and plan.is_stream and plan.duration_s == 2.0


@pytest.mark.parametrize(("content", "extra", "message"), [
    (b'{"model": "x"}', ["--model", "y", "--stream"], "leave out --model, --stream"),
    (b"not json", [], "is not JSON"),
    (b"[1, 2]", [], "must hold a JSON object"),
])
def test_bad_bodies(tmp_path: Path, content: bytes, extra: list[str], message: str) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(content)
    with pytest.raises(OptionError, match=message):
        build_plan(args("http://h", "--body", str(body), *extra))


def test_a_missing_body_file(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="No such file"):
        build_plan(args("http://h", "--body", str(tmp_path / "absent.json")))


@pytest.mark.parametrize(("argv", "message"), [
    (["-c", "0"], "--concurrency: expected `int` >= 1"),
    (["-n", "0"], "--requests: expected `int` >= 1"),
    (["-d", "0"], "--duration: expected `float` > 0.0"),
    (["--timeout", "-1"], "--timeout: expected `float` > 0.0"),
    (["-H", "no colon"], "-H wants 'NAME: VALUE'"),
])
def test_bad_options_name_the_option(argv: list[str], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        build_plan(args("http://h", *argv))


def test_bad_options_exit_2_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "http://127.0.0.1:9", "--concurrency", "0"]) == 2
    assert capsys.readouterr().err == "llmgate bench: --concurrency: expected `int` >= 1\n"


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, p) for p in (50, 90, 99, 100)] == [50.0, 90.0, 99.0, 100.0]
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_summarize_counts_only_2xx_in_rps_and_latency() -> None:
    plan = LoadPlan(url="http://h/v1/chat/completions", body=b"{}", headers={}, concurrency=2, is_stream=True)
    tally = Tally(started=6, finished=6, latencies_s=[0.004, 0.002, 0.003, 0.001], first_byte_s=[0.001] * 4,
                  errors=Counter({"timeout": 1, "HTTP 503": 1}))
    report = summarize(plan, tally, 2.0)
    assert (report.requests, report.ok, report.rps) == (6, 4, 2.0)
    assert report.errors == {"HTTP 503": 1, "timeout": 1}
    assert report.latency == percentiles_ms([0.001, 0.002, 0.003, 0.004])
    assert report.latency is not None and (report.latency.p50_ms, report.latency.max_ms) == (2.0, 4.0)
    assert report.latency.mean_ms == pytest.approx(2.5)
    assert report.first_byte is not None and report.first_byte.p99_ms == 1.0
    assert summarize(LoadPlan(url="u", body=b"", headers={}, concurrency=1), Tally(), 1.0).first_byte is None
