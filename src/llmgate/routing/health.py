"""A snapshot of every deployment's health for `GET /health/deployments`: breaker, window counts, keys (masked)."""

from __future__ import annotations

from typing import Any

from llmgate.routing.keys import KeyState
from llmgate.routing.table import RoutingTable


def deployments_health(table: RoutingTable, now: float) -> list[dict[str, Any]]:
    """Per deployment: healthy now?, breaker state, recent errors, and each key's state. Pure."""
    out = []
    for deployment in table.deployments():
        breaker = deployment.breaker
        failures, total = breaker.window_counts(now)
        out.append({
            "name": deployment.name,
            "provider": deployment.provider.name,
            "kind": deployment.provider.config.kind,
            "model": deployment.upstream_model,
            "healthy": deployment.is_available(now),
            "breaker": {
                "state": breaker.state,
                "consecutive_failures": breaker.consecutive,
                "opened_count": breaker.opened,
                "half_open_in_s": round(max(0.0, breaker.open_until - now), 3) if breaker.state == "open" else None,
            },
            "recent": {"errors": round(failures, 2), "requests": round(total, 2)},
            "keys": [_key_health(key, now) for key in deployment.keys.keys],
        })
    return out


def _key_health(key: KeyState, now: float) -> dict[str, Any]:
    state = "disabled" if key.disabled else "cooling_down" if key.cooldown_until > now else "ok"
    return {
        "key": key.masked,
        "state": state,
        "cooling_down_for_s": round(key.cooldown_until - now, 3) if state == "cooling_down" else None,
        "rate_limited": key.rate_limits,
        "failures": key.failures,
    }
