"""Which upstream answers a request: pure, no I/O, the clock passed in.

    table.py    model name → Route (alias → weighted deployments per capability, fallbacks); built from config
    select.py   Deployment, Route, HedgeState; choose(): weighted among the healthy, then the key
    keys.py     key rotation (least recently used), 429 cooldowns from retry-after headers, disabled keys
    breaker.py  circuit breaker per (deployment, upstream model): consecutive failures or error rate → open → one
                probe → closed; a pass-through deployment keeps one per model asked, bounded
    health.py   the /health/deployments snapshot
    catalog.py  the /v1/models listing: aliases merged with upstream lists, cached with a TTL
"""
