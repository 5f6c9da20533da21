"""`GET {base_url}/models`: a provider's own model list, for `/v1/models` (routing/catalog.py merges them)."""

from __future__ import annotations

from typing import Any

import msgspec

from llmgate.errors import UpstreamError
from llmgate.proxy.client import TRANSPORT_ERRORS, UpstreamClient
from llmgate.proxy.forward import upstream_error


class _ModelList(msgspec.Struct):
    data: list[dict[str, Any]]


class _GoogleModelList(msgspec.Struct):
    models: list[dict[str, Any]] = []


async def fetch_model_list(client: UpstreamClient, path: str, headers: list[tuple[str, str]],
                           field: str = "data") -> list[dict[str, Any]]:
    """`GET {base_url}{path}` (the provider's model list): the model objects it lists under `field` (`data`;
    Google's: `models`)."""
    try:
        status, _, data = await client.fetch("GET", path, headers, b"")
    except TRANSPORT_ERRORS as exc:
        raise upstream_error(exc, client) from exc
    if status != 200:
        raise UpstreamError(f"The upstream provider `{client.provider.name}` answered {status} to GET /models.")
    try:
        if field == "models":
            return msgspec.json.decode(data, type=_GoogleModelList).models
        return msgspec.json.decode(data, type=_ModelList).data
    except msgspec.MsgspecError:
        raise UpstreamError(f"The upstream provider `{client.provider.name}` sent an unreadable model list.") from None
