"""Who may use the management API (admin/access.py): only its own token; without one configured it is off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.inprocess.access import MANAGE, TOKENS_ENV
from tests.inprocess.gateway import Gateway
from tests.servers import MASTER_KEY


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with Gateway(env=TOKENS_ENV) as gateway:
        yield gateway


def test_management_api_needs_its_token(gw: Gateway) -> None:
    assert gw.get("/manage/projects", auth=False).status_code == 401
    assert gw.get("/manage/projects", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert gw.get("/manage/projects", headers={"authorization": f"Bearer {MASTER_KEY}"}).status_code == 401


def test_management_api_disabled_without_its_token() -> None:
    with Gateway() as gateway:
        response = gateway.get("/manage/projects", headers=MANAGE)
    assert response.status_code == 503 and "LLMGATE_MANAGEMENT_TOKEN" in response.json()["error"]["message"]


def test_schema_describes_only_manage(gw: Gateway) -> None:
    paths = gw.get("/manage/schema", auth=False).json()["paths"]
    assert paths and all(p.startswith("/manage/") for p in paths)
