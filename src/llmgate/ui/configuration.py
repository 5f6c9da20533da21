"""/ui/config: the configuration this gateway runs with (file, environment and defaults merged), secrets masked."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get

from llmgate.config import Settings
from llmgate.log import mask_secret, url_password
from llmgate.services import Services
from llmgate.ui.render import page

SECRETS = ("master_key", "management_token", "secret_key", "usage_http_token", "metrics_token", "admin_password")
URLS = ("database_url", "redis_url")


def masked(settings: Settings) -> dict[str, Any]:
    """The settings as plain data, every secret masked (provider keys, passwords in store URLs)."""
    data: dict[str, Any] = msgspec.to_builtins(settings)
    for name in SECRETS:
        if data.get(name):
            data[name] = mask_secret(data[name])
    for name in URLS:
        password = url_password(data.get(name))
        if password:
            data[name] = data[name].replace(f":{password}@", ":****@")
    for provider in data.get("providers", []):
        if provider.get("api_key"):
            provider["api_key"] = mask_secret(provider["api_key"])
        provider["api_keys"] = [mask_secret(k) for k in provider.get("api_keys", [])]
    return data


def sections(data: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(section, [(key, value as TOML-ish text)]) for the page: the top-level values first, then each table."""
    top = [(k, shown(v)) for k, v in data.items() if not isinstance(v, (dict, list)) or not v]
    out = [("Settings", top)]
    for key in ("server", "routing"):
        out.append((f"[{key}]", [(k, shown(v)) for k, v in data[key].items()]))
    for index, provider in enumerate(data.get("providers", [])):
        out.append((f"[[providers]] {index + 1}: {provider.get('name', '')}",
                    [(k, shown(v)) for k, v in provider.items()]))
    for index, model in enumerate(data.get("models", [])):
        out.append((f"[[models]] {index + 1}: {model.get('name', '')}", [(k, shown(v)) for k, v in model.items()]))
    if data.get("prices"):
        out.append(("[prices]", [(k, shown(v)) for k, v in data["prices"].items()]))
    return out


def shown(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


class ConfigurationPage(Controller):
    path = "/"

    @get("/config")
    async def configuration(self, request: Request[Any, Any, Any], gateway: Services) -> Response[Any]:
        return page(request, "configuration.html", sections=sections(masked(gateway.settings)),
                    path=gateway.settings.config_path)
