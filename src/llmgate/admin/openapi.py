"""/manage/schema: Litestar's OpenAPI document, each Struct's schema as msgspec itself describes it.

Litestar's schemas keep a field's own constraints but drop those of what it holds: a `dict[Name, Secret]` became
any object of strings, a list of model names any list of strings, so generated requests the API rightly refuses
looked valid by the schema. msgspec's schemas are the rules the API decodes with (JSON Schema 2020-12, what
OpenAPI 3.1 uses), so they replace Litestar's for every Struct the API reads or writes.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.openapi.plugins import JsonRenderPlugin

from llmgate.admin.schemas import (
    Deleted,
    ProjectCreate,
    ProjectOut,
    ProjectUpdate,
    TokenCreate,
    TokenCreated,
    TokenOut,
    TokenUpdate,
)
from llmgate.admin.usage import UsageSummary
from llmgate.errors import ErrorBody

if TYPE_CHECKING:
    from litestar import Request

STRUCTS = (Deleted, ErrorBody, ProjectCreate, ProjectOut, ProjectUpdate, TokenCreate, TokenCreated, TokenOut,
           TokenUpdate, UsageSummary)


@functools.cache
def struct_schemas() -> dict[str, Any]:
    """Component name → msgspec's JSON schema, for `STRUCTS` and the Structs they hold."""
    _, components = msgspec.json.schema_components(STRUCTS, ref_template="#/components/schemas/{name}")
    return components


class ManageSchemaPlugin(JsonRenderPlugin):
    """Litestar's JSON render plugin, with msgspec's schemas in place of its own for the same components."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        schemas = openapi_schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(struct_schemas())
        return self.render_json(request, openapi_schema)
