"""Logging: secret masking and scrubbing, request ids on every line of a request, the JSON and human formats."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator

import pytest
from loguru import logger

from llmgate.config import ProviderConfig, ServerConfig, Settings
from llmgate.log import Scrubber, current_request, known_secrets, mask_secret, new_request_id, setup_logging
from llmgate.usage.event import Exchange


def test_mask_keeps_prefix_and_last_four() -> None:
    assert mask_secret("sk-proj-abcdefghijklmnopqrstuvwxyz") == "sk-****wxyz"
    assert mask_secret("lg-0123456789abcdef") == "lg-****cdef"


def test_mask_never_reveals_short_secrets() -> None:
    assert mask_secret("sk-short") == "sk-****"
    assert mask_secret("abcdefgh") == "****"


def test_mask_empty() -> None:
    assert mask_secret("") == "<none>" and mask_secret(None) == "<none>"


def test_mask_does_not_contain_the_secret() -> None:
    secret = "sk-live-9f8e7d6c5b4a39281706"
    assert secret[3:-4] not in mask_secret(secret)


def test_request_ids_are_unique_hex() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 24 and int(i, 16) >= 0 for i in ids)


def test_request_ids_differ_in_a_forked_worker() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    mine = new_request_id()
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert len(child) == 24 and child != mine


def test_scrubber_masks_known_secrets_key_shapes_and_bearers() -> None:
    scrub = Scrubber(["hunter2-not-key-shaped", "short"])
    line = ("a short word, db password hunter2-not-key-shaped, key sk-proj-abcdefghijklmnop1234, "
            "token lg-AbCdEfGhIjKlMnOpQrSt_-99, header Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload")
    scrubbed = scrub(line)
    for secret in ("hunter2-not-key-shaped", "sk-proj-abcdefghijklmnop1234", "lg-AbCdEfGhIjKlMnOpQrSt_-99",
                   "eyJhbGciOiJIUzI1NiJ9.payload"):
        assert secret not in scrubbed
    assert "****aped" in scrubbed and "hunter2" not in scrubbed  # no prefix kept: a password's first word
    assert "sk-****1234" in scrubbed and "lg-****_-99" in scrubbed and "Bearer ****load" in scrubbed
    assert "short" in scrubbed  # too short to be a secret worth masking (every word would go)
    assert scrub("request 0123456789abcdef01234567 took 3 ms") == "request 0123456789abcdef01234567 took 3 ms"


def test_known_secrets_come_from_every_setting_that_holds_one() -> None:
    settings = Settings(server=ServerConfig(), providers=(
        ProviderConfig(name="p", base_url="http://p", api_key="sk-p-1", api_keys=("sk-p-1", "sk-p-2")),),
        master_key="mk", management_token="mt", metrics_token="xt", usage_http_token="ht", secret_key="sek",
        database_url="postgresql://app:pg-pass@db/llm", redis_url="redis://:redis-pass@cache:6379/0")
    assert set(known_secrets(settings)) == {"sk-p-1", "sk-p-2", "mk", "mt", "xt", "ht", "sek", "pg-pass",
                                            "redis-pass"}


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    yield stream
    logger.remove()
    logger.configure(patcher=None, extra={})
    logger.add(sys.stderr)


def in_request(exchange: Exchange) -> None:
    """Log as code on the request path does: nothing passed but the message."""
    token = current_request.set(exchange)
    try:
        logger.warning("upstream stream broke mid-response: {}", "reset")
        exchange.upstream_request_id = b"req_up_42"
        logger.info("after the upstream answered")
        try:
            raise ValueError("boom with sk-live-0123456789abcdefXYZ")
        except ValueError:
            logger.exception("unexpected error")
    finally:
        current_request.reset(token)


def test_json_lines_carry_the_request_ids(captured: io.StringIO) -> None:
    setup_logging("DEBUG", json_lines=True, secrets=["the-master-key-000"], stream=captured)
    in_request(Exchange(b"req-abc", "POST", "/v1/chat/completions"))
    logger.info("outside any request, master key the-master-key-000")
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert [line["level"] for line in lines] == ["WARNING", "INFO", "ERROR", "INFO"]
    first, second, error, outside = lines
    assert first["request_id"] == "req-abc" and "upstream_request_id" not in first
    assert first["message"] == "upstream stream broke mid-response: reset"
    assert first["module"] == __name__ and first["function"] == "in_request" and first["line"] > 0
    assert second["request_id"] == "req-abc" and second["upstream_request_id"] == "req_up_42"
    assert error["exception"].startswith("Traceback") and "ValueError: boom with sk-****fXYZ" in error["exception"]
    assert "sk-live-0123456789abcdefXYZ" not in captured.getvalue()
    assert outside["request_id"] == "-" and outside["message"] == "outside any request, master key the-****-000"
    assert first["time"].endswith("+00:00") or "T" in first["time"]


def test_a_bound_request_id_wins(captured: io.StringIO) -> None:
    setup_logging("INFO", json_lines=True, stream=captured)
    token = current_request.set(Exchange(b"req-ctx", "POST", "/v1/chat/completions"))
    try:
        logger.bind(request_id="req-bound").info("bound")
    finally:
        current_request.reset(token)
    assert json.loads(captured.getvalue())["request_id"] == "req-bound"


def test_human_lines_carry_the_request_ids(captured: io.StringIO) -> None:
    setup_logging("INFO", stream=captured, secrets=["the-master-key-000"])
    in_request(Exchange(b"req-abc", "POST", "/v1/chat/completions"))
    logger.debug("below the level")
    lines = captured.getvalue().splitlines()
    assert " WARNING req-abc upstream stream broke mid-response: reset" in lines[0]
    assert " INFO    req-abc upstream req_up_42 after the upstream answered" in lines[1]
    assert "\x1b[" not in captured.getvalue()  # no colours off a terminal
    assert "sk-live-0123456789abcdefXYZ" not in captured.getvalue() and "sk-****fXYZ" in captured.getvalue()
    assert "below the level" not in captured.getvalue()
