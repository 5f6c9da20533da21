"""An issuer's keys (access/jwks.py): fetched over HTTP from jwks_url or by OIDC discovery, refreshed at most
every 30 s, kept through an outage, each failure said plainly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from llmgate.access.jwks import REFRESH_EVERY_S, IssuerKeys
from llmgate.config import JwtConfig
from tests.jwks import Issuer


def keys_of(issuer: Issuer, clock: Callable[[], float], jwks_url: str | None = None,
            issuer_url: str | None = None) -> tuple[IssuerKeys, httpx.AsyncClient]:
    client = httpx.AsyncClient()
    config = JwtConfig(issuer=issuer_url or issuer.iss, audiences=("a",),
                       jwks_url=issuer.url + "/keys" if jwks_url is None else jwks_url)
    return IssuerKeys(config, lambda: client, clock), client


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_fetch_refresh_interval_and_outage() -> None:
    now = [0.0]
    with Issuer() as issuer:
        async def main() -> None:
            keys, client = keys_of(issuer, lambda: now[0])
            try:
                assert keys.status() == "not fetched yet"
                assert await keys.refresh() == set() and keys.key("rsa-1") is not None
                assert keys.key(None) is keys.key("rsa-1")  # no kid in the token: the only key
                issuer.rotate("rsa-1", "ec-2")
                assert await keys.refresh() == set() and keys.key("ec-2") is None  # within 30 s: no fetch
                now[0] += REFRESH_EVERY_S
                assert await keys.refresh() == {"rsa-1"} and keys.key("ec-2") is not None
                issuer.down = True
                now[0] += REFRESH_EVERY_S
                await keys.refresh()
                assert keys.key("ec-2") is not None and keys.status().startswith("stale: ")
                assert "HTTP 503" in keys.status()
            finally:
                await client.aclose()

        run(main())


def test_discovery_and_its_failures_are_said_plainly() -> None:
    with Issuer() as issuer:
        async def main() -> list[str]:
            found, client = keys_of(issuer, lambda: 0.0, jwks_url="")
            await found.refresh()
            assert found.key("rsa-1") is not None and found.status() == "ok"
            missing, _ = keys_of(issuer, lambda: 0.0, jwks_url="", issuer_url=issuer.url + "/nowhere/")
            not_json, _ = keys_of(issuer, lambda: 0.0, jwks_url=issuer.url + "/.well-known/openid-configuration")
            unreachable, _ = keys_of(issuer, lambda: 0.0, jwks_url="http://127.0.0.1:9/keys")
            statuses = []
            for keys in (missing, not_json, unreachable):
                await keys.refresh()
                statuses.append(keys.status())
            await client.aclose()
            return statuses

        statuses = run(main())
    assert statuses[0].startswith("unavailable: ") and "HTTP 404" in statuses[0]
    assert "not a usable JWKS" in statuses[1]
    assert "127.0.0.1:9" in statuses[2] and "ConnectError" in statuses[2]


def test_concurrent_refreshes_fetch_once() -> None:
    with Issuer() as issuer:
        async def main() -> int:
            keys, client = keys_of(issuer, lambda: 0.0)
            await asyncio.gather(*(keys.refresh() for _ in range(10)))
            await client.aclose()
            return issuer.fetches

        assert run(main()) == 1
