"""A snapshot of every deployment's health for `GET /health/deployments`: breakers, window counts, keys (masked)."""

from __future__ import annotations

from typing import Any

from llmgate.routing.breaker import Breaker
from llmgate.routing.keys import KeyState
from llmgate.routing.select import Deployment
from llmgate.routing.table import RoutingTable


def deployments_health(table: RoutingTable, now: float) -> list[dict[str, Any]]:
    """Per deployment: healthy now?, breaker state, recent errors, and each key's state. Pure.

    A pass-through deployment also lists `models`: the breaker of each upstream model asked (its own `breaker`
    is that of requests naming no model); its `recent` counts add up every model's.
    """
    out = []
    for deployment in table.deployments():
        breaker = deployment.breaker
        failures, total = breaker.window_counts(now)
        entry: dict[str, Any] = {
            "name": deployment.name,
            "provider": deployment.provider.name,
            "kind": deployment.provider.config.kind,
            "model": deployment.upstream_model,
            "healthy": deployment.is_available(now),
            "breaker": _breaker_health(breaker, now),
            "recent": {},
            "keys": [_key_health(key, now) for key in deployment.keys.keys],
        }
        if deployment.models is not None:
            entry["models"] = [_model_health(deployment, model, model_breaker, now)
                               for model, model_breaker in sorted(deployment.models.items())]
            failures += sum(m["recent"]["errors"] for m in entry["models"])
            total += sum(m["recent"]["requests"] for m in entry["models"])
        entry["recent"] = {"errors": round(failures, 2), "requests": round(total, 2)}
        out.append(entry)
    return out


def _model_health(deployment: Deployment, model: str, breaker: Breaker, now: float) -> dict[str, Any]:
    failures, total = breaker.window_counts(now)
    return {
        "model": model,
        "healthy": deployment.is_available(now, breaker),
        "breaker": _breaker_health(breaker, now),
        "recent": {"errors": round(failures, 2), "requests": round(total, 2)},
    }


def _breaker_health(breaker: Breaker, now: float) -> dict[str, Any]:
    return {
        "state": breaker.state,
        "consecutive_failures": breaker.consecutive,
        "opened_count": breaker.opened,
        "half_open_in_s": round(max(0.0, breaker.open_until - now), 3) if breaker.state == "open" else None,
    }


def _key_health(key: KeyState, now: float) -> dict[str, Any]:
    state = "disabled" if key.disabled else "cooling_down" if key.cooldown_until > now else "ok"
    return {
        "key": key.masked,
        "state": state,
        "cooling_down_for_s": round(key.cooldown_until - now, 3) if state == "cooling_down" else None,
        "rate_limited": key.rate_limits,
        "failures": key.failures,
    }
