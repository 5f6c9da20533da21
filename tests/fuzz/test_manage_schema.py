"""The /manage API against its own OpenAPI schema (`/manage/schema`), with schemathesis: generated requests,
valid and not, through the app in process; no 5xx, and every answer (status, headers, body) as the schema says."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from tests.inprocess.gateway import Gateway

MANAGEMENT_TOKEN = "mt-fuzz-0123456789abcdef"
BEARER = {"authorization": f"Bearer {MANAGEMENT_TOKEN}"}


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    env = {"LLMGATE_MANAGEMENT_TOKEN": MANAGEMENT_TOKEN, "LLMGATE_SECRET_KEY": "fuzz-secret-key-0123456789abcdef"}
    with Gateway(env=env) as gateway:
        yield gateway


def _schema() -> Any:
    with Gateway(env={"LLMGATE_MANAGEMENT_TOKEN": MANAGEMENT_TOKEN}) as gateway:
        return gateway.get("/manage/schema").json()


schema = schemathesis.openapi.from_dict(_schema())


def send(gw: Gateway, case: Any) -> httpx.Response:
    """The case as an httpx request to the gateway in process."""
    kwargs = case.as_transport_kwargs(base_url=gw.url, headers=BEARER)
    data = kwargs.pop("data", None)
    if isinstance(data, (bytes, str)):
        kwargs["content"] = data
    elif data is not None:
        kwargs["data"] = data
    kwargs.pop("cookies", None)
    with gw.http as client:
        response = client.request(**kwargs)
    response.elapsed = dt.timedelta(0)  # served in process: the client's clock never ran
    return response


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_manage_answers_as_its_schema_says(gw: Gateway, case: Any) -> None:
    response = send(gw, case)
    assert response.status_code < 500, response.text
    # `from` and `to` (usage, audit) are any string the schema says, read as Unix seconds or ISO 8601: a string of
    # neither is a documented 400 (no pattern could say exactly what `datetime.fromisoformat` takes), not a broken
    # promise.
    excluded = [positive_data_acceptance] if case.operation.path in ("/manage/usage", "/manage/audit") else []
    case.validate_response(response, excluded_checks=excluded)
