"""Header rewriting both ways (and through the app, in process against the double)."""

from llmgate.proxy.headers import downstream_headers, split_request_headers, upstream_request_headers
from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import seen
from tests.servers import MASTER_KEY, UPSTREAM_KEY

CLIENT_HEADERS = [
    (b"host", b"gw.local:8000"),
    (b"authorization", b"Bearer sk-caller"),
    (b"content-type", b"application/json"),
    (b"content-length", b"42"),
    (b"connection", b"keep-alive"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"openai-organization", b"org-1"),
    (b"openai-beta", b"assistants=v2"),
    (b"x-stainless-lang", b"python"),
    (b"x-request-id", b"caller-id-1"),
    (b"cookie", b"session=1"),
    (b"transfer-encoding", b"chunked"),
    (b"user-agent", b"OpenAI/Python 3.51"),
]


def test_split_request_headers() -> None:
    found = split_request_headers(CLIENT_HEADERS)
    assert found.credential == "sk-caller"
    assert found.request_id == b"caller-id-1"
    assert found.content_length == 42
    assert found.content_type == b"application/json"
    assert found.forward == [
        ("content-type", "application/json"), ("openai-organization", "org-1"), ("openai-beta", "assistants=v2"),
        ("x-stainless-lang", "python"), ("user-agent", "OpenAI/Python 3.51"),
    ]


def test_x_api_key_is_a_credential_and_bearer_wins() -> None:
    assert split_request_headers([(b"x-api-key", b"sk-a")]).credential == "sk-a"
    both = [(b"x-api-key", b"sk-a"), (b"authorization", b"Bearer sk-b")]
    assert split_request_headers(both).credential == "sk-b"
    assert split_request_headers(list(reversed(both))).credential == "sk-b"


def test_non_bearer_authorization_is_no_credential() -> None:
    assert split_request_headers([(b"authorization", b"Basic dXNlcjpwYXNz")]).credential is None
    assert split_request_headers([(b"authorization", b"bearer sk-lower")]).credential == "sk-lower"


def test_bad_content_length_is_ignored() -> None:
    assert split_request_headers([(b"content-length", b"12x")]).content_length is None


def test_upstream_headers_swap_credentials() -> None:
    found = split_request_headers(CLIENT_HEADERS)
    headers = upstream_request_headers(found, (("authorization", "Bearer sk-provider"),), b"rid")
    names = [name for name, _ in headers]
    assert ("authorization", "Bearer sk-provider") in headers
    assert ("x-client-request-id", "rid") in headers
    assert "sk-caller" not in str(headers)
    for dropped in ("host", "connection", "cookie", "content-length", "transfer-encoding", "x-request-id"):
        assert dropped not in names
    assert found.forward == split_request_headers(CLIENT_HEADERS).forward  # not mutated


def test_upstream_headers_without_provider_key() -> None:
    headers = upstream_request_headers(split_request_headers([(b"authorization", b"Bearer x")]), (), b"r")
    assert headers == [("x-client-request-id", "r")]


def test_downstream_headers() -> None:
    upstream = [  # names lower-cased, as proxy/client.py gives them
        (b"content-type", b"application/json"),
        (b"x-request-id", b"req_upstream_1"),
        (b"x-ratelimit-remaining-requests", b"99"),
        (b"retry-after", b"2"),
        (b"openai-processing-ms", b"312"),
        (b"connection", b"keep-alive"),
        (b"transfer-encoding", b"chunked"),
        (b"keep-alive", b"timeout=5"),
    ]
    headers, upstream_id = downstream_headers(upstream, b"ours")
    assert upstream_id == b"req_upstream_1"
    assert headers == [
        (b"x-request-id", b"ours"), (b"content-type", b"application/json"),
        (b"x-ratelimit-remaining-requests", b"99"), (b"retry-after", b"2"), (b"openai-processing-ms", b"312"),
        (b"x-upstream-request-id", b"req_upstream_1"),
    ]


def test_anthropic_request_id_is_also_the_upstream_id() -> None:
    headers, upstream_id = downstream_headers([(b"request-id", b"req_011"), (b"content-type", b"application/json")],
                                              b"ours")
    assert upstream_id == b"req_011"
    assert headers == [(b"x-request-id", b"ours"), (b"request-id", b"req_011"),
                       (b"content-type", b"application/json"), (b"x-upstream-request-id", b"req_011")]


def test_provider_default_headers_yield_to_the_callers() -> None:
    defaults = (("anthropic-version", "2023-06-01"),)
    mine = upstream_request_headers(split_request_headers([(b"anthropic-version", b"2024-01-01")]),
                                    (("x-api-key", "k"),), b"r", defaults)
    assert [v for n, v in mine if n == "anthropic-version"] == ["2024-01-01"]
    theirs = upstream_request_headers(split_request_headers([]), (("x-api-key", "k"),), b"r", defaults)
    assert ("anthropic-version", "2023-06-01") in theirs and ("x-api-key", "k") in theirs


# Through the app, against the double run in process.
def test_headers_going_up(double_gateway: Gateway) -> None:
    headers = {"OpenAI-Organization": "org-42", "OpenAI-Beta": "assistants=v2", "x-custom": "kept",
               "cookie": "session=secret", "x-request-id": "caller-1"}
    double_gateway.post("/v1/chat/completions", json={"model": "m"}, headers=headers)
    up = seen()["last_headers"]
    assert up["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert (up["openai-organization"], up["openai-beta"], up["x-custom"]) == ("org-42", "assistants=v2", "kept")
    assert up["x-client-request-id"] == "caller-1"
    assert "cookie" not in up and "x-api-key" not in up
    assert MASTER_KEY not in str(up)


def test_x_api_key_caller_does_not_leak_upstream(double_gateway: Gateway) -> None:
    double_gateway.post("/v1/chat/completions", json={"model": "m"}, headers={"x-api-key": MASTER_KEY}, auth=False)
    assert MASTER_KEY not in str(seen()["last_headers"])


def test_headers_coming_down(double_gateway: Gateway) -> None:
    response = double_gateway.post("/v1/chat/completions", json={"model": "m"})
    assert response.headers["openai-processing-ms"]
    assert response.headers["x-ratelimit-limit-requests"]
    assert response.headers["x-upstream-request-id"].startswith("up-")
