"""llmgate: an OpenAI-compatible LLM API gateway.

    pipeline/   /v1 (raw ASGI, the hot path): its steps in order in pipeline/v1.py, one module a step
    routes/     Litestar controllers: /health, /metrics; the /v1 shortcut
    access/     who may call: master key, virtual tokens (cached), limits (pure)
    routing/    which upstream answers: aliases, deployments, keys, breakers (pure)
    providers/  per upstream dialect: URLs, auth headers, capabilities (pure)
    proxy/      the only upstream I/O: client, attempt loop with retries and failover, streaming relay
    translate/  OpenAI chat <-> Anthropic Messages (pure; imported only when a request needs it)
    store/      the only SQL: projects and tokens on SQLite or PostgreSQL; Redis for shared limits
    admin/      the management API · cli/  the `llmgate` command · usage/  token counting and metering
    config.py   settings from env and TOML · errors.py  one error table
    services.py the composition root · upstreams.py  one configuration generation · reload.py  swaps it
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
