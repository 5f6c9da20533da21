"""Micro: what routing adds per request, in-process (no I/O): resolve, pick, the Call, upstream headers, outcome.

    uv run python benchmarks/bench_routing_micro.py

The steps llmgate runs per request on top of the pre-routing passthrough, timed with timeit (best of 7).
"""

from __future__ import annotations

import random
import time
import timeit

from llmgate.config import load_settings
from llmgate.proxy.attempt import Call
from llmgate.proxy.headers import split_request_headers
from llmgate.routing.select import choose
from llmgate.upstreams import Upstreams

HEADERS = [(b"host", b"gw"), (b"authorization", b"Bearer sk-master"), (b"content-type", b"application/json"),
           (b"content-length", b"95"), (b"user-agent", b"OpenAI/Python 1.0"), (b"accept", b"application/json")]


def steps(router: Upstreams, model: str) -> None:
    inbound = split_request_headers(HEADERS)
    route = router.table.resolve(model, "/chat/completions")
    call = Call(router, None, None, "POST", "/chat/completions", "", inbound, b"{}", b"rid", model,  # type: ignore[arg-type]
                False, "chat")
    entries = route.by_capability["chat"]
    now = time.monotonic()
    deployment, key = choose(entries, model, now, [], random.random)  # type: ignore[misc]
    call.upstream_path(deployment)
    call.upstream_headers(deployment, key)
    call.upstream_body(deployment)
    deployment.breaker_for(model).record_success(time.monotonic())


def baseline() -> None:  # what the pre-routing code did in their place
    inbound = split_request_headers(HEADERS)
    headers = inbound.forward.copy()
    headers.append(("authorization", "Bearer sk"))
    headers.append(("x-client-request-id", b"rid".decode("latin-1")))


def main() -> None:
    plain = Upstreams(load_settings({"OPENAI_API_KEY": "sk-up"}), {})
    routed = Upstreams(load_settings({}, "benchmarks/routed.toml"), {})
    n = 200_000
    base = min(timeit.repeat(baseline, number=n, repeat=7)) / n * 1e6
    for name, router, model in (("passthrough", plain, "gpt-4o-mini"), ("routed", routed, "gpt-4o-mini")):
        t = min(timeit.repeat(lambda r=router, m=model: steps(r, m), number=n, repeat=7)) / n * 1e6
        print(f"{name:12} {t:5.2f} µs per request for these steps, {t - base:+5.2f} µs over the pre-routing ones")


if __name__ == "__main__":
    main()
