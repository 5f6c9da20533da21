"""/v1, one request at a time: the steps in order (v1.py), one module a step.

    v1.py            serve_v1: the order, and the one error block
    request.py       V1Request (the one request object), V1Services (what the steps are given)
    dialects.py      OpenAI and Anthropic as data: error shapes, stream error frames
    endpoints.py     the allowlist: path → dialect, method → body kind, capability, or an answer of ours
    screen.py        cheap refusals: a bad Host, load shedding
    authenticate.py  master key | virtual token | open
    read.py          the body under its limit; `model`/`stream` decoded for routing
    resolve.py       alias → deployments; passthrough, translated (translate.py, google.py, bedrock.py) or
                     answered (local.py)
    admit.py         a virtual token's model and limits
    meter.py         what of the answer to count (usage log, budgets, tpm)
    cache.py         the response cache in front of the attempts, when configured (storage: llmgate/cache/)
    settle.py        a virtual token's tokens and cost, once answered
The attempts themselves (retries, failover, hedging, relay) are proxy/forward.py's.
"""
