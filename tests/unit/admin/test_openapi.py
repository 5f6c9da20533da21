"""/manage/schema says what /manage does: the errors each operation answers, in the OpenAI shape they have;
the constraints of what the bodies hold; OPTIONS and 405 list the methods a path serves; `group_by=` accepted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.inprocess.gateway import Gateway

TOKEN = "mt-openapi-test-0123456789"
BEARER = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with Gateway(env={"LLMGATE_MANAGEMENT_TOKEN": TOKEN}) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def schema(gw: Gateway) -> dict[str, Any]:
    return gw.get("/manage/schema").json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(("method", "path", "statuses"), [
    ("post", "/manage/projects", {"201", "400", "401", "409", "422", "429", "503"}),
    ("get", "/manage/projects", {"200", "401", "429", "503"}),
    ("get", "/manage/projects/{project_id}", {"200", "400", "401", "404", "429", "503"}),
    ("patch", "/manage/projects/{project_id}", {"200", "400", "401", "404", "409", "422", "429", "503"}),
    ("post", "/manage/tokens/{token_id}/rotate", {"200", "400", "401", "404", "409", "429", "503"}),
    ("get", "/manage/tokens", {"200", "400", "401", "422", "429", "503"}),
    ("get", "/manage/usage", {"200", "400", "401", "429", "503"}),
])
def test_every_error_an_operation_answers_is_documented(schema: dict[str, Any], method: str, path: str,
                                                        statuses: set[str]) -> None:
    """404, 409 and 422 were missing, and 400 was described as Litestar's `{status_code, detail}`."""
    responses = schema["paths"][path][method]["responses"]
    assert set(responses) == statuses
    for status in statuses - {"200", "201"}:
        body = responses[status]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/ErrorBody"}, status
    error = schema["components"]["schemas"]["ErrorDetail"]
    assert set(error["properties"]) == {"message", "type", "param", "code"}


def test_what_bodies_hold_keeps_its_constraints(schema: dict[str, Any]) -> None:
    create = schema["components"]["schemas"]["ProjectCreate"]["properties"]
    assert create["upstream_keys"]["propertyNames"]["minLength"] == 1
    assert create["upstream_keys"]["additionalProperties"]["minLength"] == 1
    assert create["allowed_models"]["items"]["minLength"] == 1 and create["metadata"]["maxProperties"] == 100


def test_options_and_405_list_every_method_of_the_path(gw: Gateway) -> None:
    """OPTIONS /manage/projects said `allow: OPTIONS, POST` though GET is served too."""
    assert gw.request("OPTIONS", "/manage/projects", headers=BEARER).headers["allow"] == "GET, OPTIONS, POST"
    assert gw.request("OPTIONS", "/manage/projects/p1", headers=BEARER).headers["allow"] == \
        "DELETE, GET, OPTIONS, PATCH"
    refused = gw.request("PUT", "/manage/projects", headers=BEARER)
    assert refused.status_code == 405 and set(refused.headers["allow"].split(", ")) >= {"GET", "POST"}
    assert refused.json()["error"]["type"] == "invalid_request_error"


def test_an_empty_group_by_is_not_grouped(gw: Gateway, schema: dict[str, Any]) -> None:
    """`group_by=` was refused though the schema allowed it; the schema now lists the values, "" among them."""
    response = gw.get("/manage/usage?group_by=", headers=BEARER)
    assert response.status_code == 200 and response.json()["data"] == []
    group_by = next(p for p in schema["paths"]["/manage/usage"]["get"]["parameters"] if p["name"] == "group_by")
    assert "" in group_by["schema"]["enum"] and "day" in group_by["schema"]["enum"]
    assert gw.get("/manage/usage?group_by=week", headers=BEARER).status_code == 400
