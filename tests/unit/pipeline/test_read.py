"""The pure parts of /v1's steps: routing-field decoding, multipart sniffing, the route allowlist, what is
metered."""

import pytest

from llmgate.access.tokens import TokenEntry
from llmgate.config import ConfigError, ServerConfig
from llmgate.errors import InvalidRequest
from llmgate.pipeline.endpoints import DEFAULT_ENDPOINTS, build_endpoints
from llmgate.pipeline.meter import counts_usage
from llmgate.pipeline.read import FirstChunk, decode_view, sniff_multipart_fields
from llmgate.store.base import Project, Token
from llmgate.store.crypto import KeyBox


def test_decode_view_reads_only_model_and_stream() -> None:
    view = decode_view(b'{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o","stream":true,"n":2}')
    assert (view.model, view.stream) == ("gpt-4o", True)
    assert decode_view(b'{"model":"m","stream":null}').stream is None


@pytest.mark.parametrize(("body", "message", "param"), [
    (b'{"messages":[]}', "You must provide a model parameter.", "model"),
    (b'{"model":3}', "Invalid value for 'model': Expected `str`, got `int`.", "model"),
    (b'{"model":"m","stream":"yes"}', "Invalid value for 'stream': Expected `bool | null`, got `str`.", "stream"),
    (b'[1,2]', "The request body must be a JSON object.", None),
    (b'{"model":', "We could not parse the JSON body of your request: Input data was truncated.", None),
    (b'', "The request body is empty; expected a JSON object.", None),
    (b'  \n', "The request body is empty; expected a JSON object.", None),
    (b'{"model":"m"} trailing', "We could not parse the JSON body of your request: JSON is malformed: "
                                "trailing characters (byte 15).", None),
])
def test_decode_view_errors_name_the_problem(body: bytes, message: str, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_view(body)
    assert (info.value.message, info.value.param, info.value.status) == (message, param, 400)


MULTIPART = (
    b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
    b'--b\r\nContent-Disposition: form-data; name="stream"\r\n\r\ntrue\r\n'
    b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'
    b'RIFF....\r\n--b--\r\n'
)


def test_sniff_multipart_fields() -> None:
    assert sniff_multipart_fields(FirstChunk(MULTIPART, False)) == ("whisper-1", True)
    assert sniff_multipart_fields(FirstChunk(b"--b\r\n", True)) == (None, False)


def test_routes_allowlist_extends_from_config() -> None:
    routes = build_endpoints(("POST /v1/moderations", "GET /v1/files/", "POST /v1/chat/completions"))
    assert set(routes) == set(DEFAULT_ENDPOINTS) | {"/moderations", "/files"}
    assert routes["/moderations"].methods["POST"].body == "raw"
    assert "/moderations" not in DEFAULT_ENDPOINTS  # the defaults are not mutated
    assert routes["/chat/completions"].methods["POST"].body == "view"  # an extra route never replaces a default


def test_routes_reject_bad_extra_route() -> None:
    with pytest.raises(ConfigError):
        build_endpoints(("DELETE moderations",))


def test_replace_model_keeps_everything_else() -> None:
    from llmgate.schemas.openai import replace_model

    body = b'{"messages": [{"role": "user", "content": "\\"model\\": x"}], "model": "alias", "n": 1}'
    assert replace_model(body, "up/name") == \
        b'{"messages":[{"role": "user", "content": "\\"model\\": x"}],"model":"up/name","n":1}'


def _entry(**limits: int | float) -> TokenEntry:
    token = Token(id="t", project_id="p", prefix="lg-…abcd", secret_hash="h", created_at=0.0, updated_at=0.0, **limits)
    return TokenEntry(token, Project(id="p", name="p", created_at=0.0, updated_at=0.0), KeyBox(None), 0.0)


@pytest.mark.parametrize(("limits", "counted"), [
    ({}, False),
    ({"max_requests": 5, "rpm_limit": 5}, False),  # limits on requests need no token counts
    ({"tpm_limit": 1000}, True),
    ({"budget_tokens": 1000}, True),
    ({"budget_cost": 1.0}, True),
])
def test_a_tokens_answers_are_metered_when_its_limits_count_llm_tokens(limits: dict[str, float],
                                                                       counted: bool) -> None:
    entry = _entry(**limits)
    no_log = ServerConfig(usage_log=False)
    assert counts_usage(entry, no_log) is counted
    assert counts_usage(entry, ServerConfig(usage_log=False, meter_every_token=True)) is True
    assert counts_usage(entry, ServerConfig(usage_log=True)) is True
    assert counts_usage(None, no_log) is False  # the master key: only for the usage log
    assert counts_usage(None, ServerConfig(usage_log=True)) is True
    assert ServerConfig().usage_log is True  # the default: usage is counted
