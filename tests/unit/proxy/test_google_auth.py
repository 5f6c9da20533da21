"""Vertex AI access tokens (proxy/google_auth.py) against a local token endpoint: one exchange while a token is
good, a refresh ahead of expiry that no request waits for, and failures said once a token is needed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from llmgate.proxy.google_auth import REFRESH_AHEAD_S, AccessTokens, CredentialsError
from tests.google_token_endpoint import TokenEndpoint, service_account


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def endpoint(key: rsa.RSAPrivateKey) -> Iterator[TokenEndpoint]:
    served = TokenEndpoint(key.public_key())
    yield served
    served.close()


def test_a_token_is_cached_and_refreshed_ahead_of_expiry_in_the_background(
        tmp_path: Path, key: rsa.RSAPrivateKey, endpoint: TokenEndpoint) -> None:
    clock = Clock()
    tokens = AccessTokens("vertex", str(service_account(tmp_path, key, endpoint.url)), clock)

    async def scenario() -> None:
        first = await tokens.header()  # nothing yet: this one waits for the exchange
        assert first[0] == "authorization" and first[1].removeprefix("Bearer ") in endpoint.issued
        assert await tokens.header() == first and len(endpoint.issued) == 1
        clock.now += 3599 - REFRESH_AHEAD_S + 1  # still good, but soon not
        pending = tokens.header()
        assert await asyncio.wait_for(pending, 0.05) == first  # answered at once with the current token
        assert tokens._refreshing is not None
        await tokens._refreshing  # the refresh goes on meanwhile, in a thread
        second = await tokens.header()
        assert second != first and len(endpoint.issued) == 2

    asyncio.run(scenario())


def test_no_token_to_be_had_fails_the_request_and_says_why(tmp_path: Path, key: rsa.RSAPrivateKey,
                                                           endpoint: TokenEndpoint) -> None:
    endpoint.refuse = True
    tokens = AccessTokens("vertex", str(service_account(tmp_path, key, endpoint.url)), Clock())
    with pytest.raises(CredentialsError, match="could not obtain an access token for provider 'vertex'"):
        asyncio.run(tokens.header())
    missing = AccessTokens("vertex", str(tmp_path / "nowhere.json"), Clock())
    with pytest.raises(CredentialsError):
        asyncio.run(missing.header())
