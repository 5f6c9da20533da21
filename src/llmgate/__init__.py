"""llmgate: an OpenAI-compatible LLM API gateway.

    routes/     HTTP in, HTTP out: /v1 (raw ASGI, the hot path), /v1/messages, /health
    access/     who may call: master key, virtual tokens (cached), limits (pure)
    routing/    which upstream answers: aliases, deployments, keys, breakers (pure)
    providers/  per upstream dialect: URLs, auth headers, capabilities (pure)
    proxy/      the only upstream I/O: client, attempt loop with retries and failover, streaming relay
    translate/  OpenAI chat <-> Anthropic Messages (pure; imported only when a request needs it)
    store/      the only SQL: projects and tokens on SQLite or PostgreSQL; Redis for shared limits
    admin/      the management API · cli/  the `llmgate` command · usage/  token counting and metering
    config.py   settings from env and TOML · state.py  what the request path needs · errors.py  one error table
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "create_app"]

if TYPE_CHECKING:
    from litestar import Litestar

    from llmgate.config import Settings


def create_app(settings: Settings | None = None, **kwargs: Any) -> Litestar:
    """Build the Litestar app (imported lazily so `import llmgate` stays cheap for the CLI)."""
    from llmgate.app import create_app as _create_app

    return _create_app(settings, **kwargs)
