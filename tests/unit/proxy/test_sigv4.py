"""SigV4 at the transport: the signature the Bedrock double verifies with botocore, only what is needed signed,
credentials resolved off the event loop, cached, refreshed when botocore says so, and missing ones a clear
error; botocore loaded only when a Bedrock provider is configured."""

from __future__ import annotations

import asyncio
import datetime
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from botocore.credentials import Credentials

from llmgate.config import ProviderConfig
from llmgate.proxy.client import UpstreamClient
from llmgate.proxy.sigv4 import AwsCredentials, MissingCredentials, Signer, SigningClient, signing_clients
from tests.bedrock_double import ACCESS_KEY, REGION, SECRET_KEY, SESSION_TOKEN, verify_signature

PROVIDER = ProviderConfig(name="bedrock", kind="bedrock", region=REGION, base_url="https://bedrock.test")
URL = "https://bedrock.test/model/anthropic.claude-v2:1/converse"
BODY = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'


class Chain:
    """A credential chain that records the threads it is called on."""

    def __init__(self, credentials: Any) -> None:
        self.credentials = credentials
        self.threads: list[int] = []

    def __call__(self) -> Any:
        self.threads.append(threading.get_ident())
        return self.credentials


def sign(signer: Signer, headers: list[tuple[str, str]], url: str = URL, body: bytes = BODY) -> dict[str, str]:
    return dict(asyncio.run(signer.sign("POST", url, headers, body)))


def test_the_double_verifies_the_signature_and_only_what_is_needed_is_signed() -> None:
    signer = Signer(PROVIDER, AwsCredentials("bedrock", Chain(Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN))))
    headers = sign(signer, [("content-type", "application/json"), ("x-trace", "t"), ("authorization", "Bearer stolen"),
                            ("x-amz-date", "19700101T000000Z")])
    assert headers["x-trace"] == "t" and headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID")
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token," in headers["authorization"]
    assert headers["x-amz-security-token"] == SESSION_TOKEN and headers["x-amz-date"] != "19700101T000000Z"
    assert verify_signature("POST", URL, {**headers, "host": "bedrock.test"}, BODY) is None
    # an unsigned header added on the way does not break it; a changed body or path does
    forwarded = {**headers, "host": "bedrock.test", "x-forwarded-for": "1.2.3.4"}
    assert verify_signature("POST", URL, forwarded, BODY) is None
    assert verify_signature("POST", URL, {**headers, "host": "bedrock.test"}, BODY + b" ") is not None
    assert verify_signature("POST", URL + "-stream", {**headers, "host": "bedrock.test"}, BODY) is not None


def test_wrong_credentials_do_not_verify() -> None:
    wrong = Credentials(ACCESS_KEY, "another-secret", SESSION_TOKEN)
    signer = Signer(PROVIDER, AwsCredentials("bedrock", Chain(wrong)))
    headers = sign(signer, [("content-type", "application/json")])
    assert verify_signature("POST", URL, {**headers, "host": "bedrock.test"}, BODY) is not None


def test_credentials_are_resolved_in_a_thread_once_and_reused() -> None:
    chain = Chain(Credentials(ACCESS_KEY, SECRET_KEY))
    signer = Signer(PROVIDER, AwsCredentials("bedrock", chain))

    async def many() -> list[list[tuple[str, str]]]:
        return await asyncio.gather(*(signer.sign("POST", URL, [], BODY) for _ in range(20)))

    signed = asyncio.run(many())
    assert len(chain.threads) == 1 and chain.threads[0] != threading.get_ident()  # off the loop's thread
    assert all("x-amz-security-token" not in dict(h) for h in signed)  # long-term keys: no session token


class Expiring(Credentials):  # type: ignore[misc]
    """Credentials that say a refresh is due until they have been refreshed (as RefreshableCredentials do)."""

    def __init__(self) -> None:
        super().__init__(ACCESS_KEY, SECRET_KEY, "token-1")
        self.due = False
        self.refresh_threads: list[int] = []

    def refresh_needed(self) -> bool:
        return self.due

    def get_frozen_credentials(self) -> Any:
        self.refresh_threads.append(threading.get_ident())
        if self.due:
            self.token, self.due = "token-2", False
        return super().get_frozen_credentials()


def test_credentials_are_refreshed_off_the_loop_when_due() -> None:
    source = Expiring()
    signer = Signer(PROVIDER, AwsCredentials("bedrock", Chain(source)))
    assert sign(signer, [])["x-amz-security-token"] == "token-1"
    assert sign(signer, [])["x-amz-security-token"] == "token-1" and len(source.refresh_threads) == 1  # cached
    source.due = True
    assert sign(signer, [])["x-amz-security-token"] == "token-2"
    assert len(source.refresh_threads) == 2 and threading.get_ident() not in source.refresh_threads


def test_no_credentials_is_a_clear_error() -> None:
    signer = Signer(PROVIDER, AwsCredentials("bedrock", Chain(None)))
    with pytest.raises(MissingCredentials, match=r"No AWS credentials for the provider `bedrock`: set AWS_ACCESS"):
        sign(signer, [])
    assert MissingCredentials.status == 500


def test_only_bedrock_providers_get_a_signing_client() -> None:
    new_client = signing_clients(UpstreamClient)
    assert isinstance(new_client(PROVIDER), SigningClient)
    assert type(new_client(ProviderConfig(name="o", base_url="https://api.openai.com/v1"))) is UpstreamClient


def test_botocore_and_awscrt_are_not_imported_without_a_bedrock_provider(tmp_path: Any) -> None:
    code = ("import sys, asyncio\n"
            "from llmgate.config import load_settings\n"
            "from llmgate.services import Services\n"
            "from llmgate.app import create_app\n"
            "settings = load_settings({'OPENAI_API_KEY': 'sk-x', 'LLMGATE_DATA_DIR': sys.argv[1]})\n"
            "services = Services(settings)\n"
            "create_app(settings, services=services)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('botocore', 'awscrt', '_awscrt')))\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


class Idle(UpstreamClient):
    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass


def test_opening_the_client_resolves_credentials_in_a_thread_before_any_request() -> None:
    chain = Chain(Credentials(ACCESS_KEY, SECRET_KEY))
    client = SigningClient(Idle(PROVIDER), Signer(PROVIDER, AwsCredentials("bedrock", chain)))

    async def start() -> None:
        await client.open()
        await asyncio.sleep(0)
        assert chain.threads == []  # open() did not wait for it
        assert client._warming is not None
        await client._warming
        await client.close()

    asyncio.run(start())
    assert len(chain.threads) == 1 and chain.threads[0] != threading.get_ident()
    assert "llmgate.pipeline.bedrock" in sys.modules  # and the translators with botocore's decoder
    assert "awscrt.auth" in sys.modules  # and the signer


def test_a_failed_warm_up_is_logged_and_the_request_tries_again() -> None:
    chain = Chain(None)
    client = SigningClient(Idle(PROVIDER), Signer(PROVIDER, AwsCredentials("bedrock", chain)))

    async def start() -> None:
        await client.open()
        assert client._warming is not None
        await client._warming
        with pytest.raises(MissingCredentials):
            await client.fetch("POST", "/model/m/converse", [], BODY)

    asyncio.run(start())
    assert len(chain.threads) == 2


def test_a_default_port_in_the_base_url_is_left_out_of_the_signed_host() -> None:
    signer = Signer(PROVIDER, AwsCredentials("bedrock", Chain(Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN))))
    json_body = [("content-type", "application/json")]
    headers = sign(signer, json_body, url="https://bedrock.test:443/model/m/converse")
    assert verify_signature("POST", "https://bedrock.test/model/m/converse", {**headers, "host": "bedrock.test"},
                            BODY) is None
    headers = sign(signer, json_body, url="http://127.0.0.1:8080/model/m/converse?x=1")
    assert verify_signature("POST", "http://127.0.0.1:8080/model/m/converse?x=1",
                            {**headers, "host": "127.0.0.1:8080"}, BODY) is None


def test_each_signature_is_dated_when_it_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = Signer(PROVIDER, AwsCredentials("bedrock", Chain(Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN))))
    now = [float(int(time.time())) + 0.2]
    monkeypatch.setattr("llmgate.proxy.sigv4.time.time", lambda: now[0])
    json_body = [("content-type", "application/json")]
    first, same_second = sign(signer, json_body), sign(signer, json_body)
    now[0] += 1
    later = sign(signer, json_body)

    def stamp(seconds: float) -> str:
        return datetime.datetime.fromtimestamp(int(seconds), datetime.UTC).strftime("%Y%m%dT%H%M%SZ")

    assert first["x-amz-date"] == same_second["x-amz-date"] == stamp(now[0] - 1)
    assert later["x-amz-date"] == stamp(now[0]) and later["authorization"] != first["authorization"]
    for headers in (first, later):
        assert verify_signature("POST", URL, {**headers, "host": "bedrock.test"}, BODY) is None
