"""Who may call ("tokens" alone would be ambiguous next to LLM tokens).

    authenticate.py   credential from the request headers → Principal (master key | virtual token), cached
    tokens.py         virtual tokens: the in-process cache (loads, store outages), batched usage write-back
    token_entry.py    a cached token (its record, allowances, counts; revoked/expired/model checks); secrets
    lifecycle.py      a token's life: issue, update, revoke, rotate (store, caches, other instances)
    limits.py         rpm / tpm / max_requests / budget checks; pure, the clock passed in
    throttle.py       failed authentications per client address (a token bucket each; 429 past it)
    periods.py        budget periods (daily, weekly, monthly, 12h, 30d): their bounds; pure
    budgets.py        what a token and a project share: limits, this period's counts, soft-limit crossings
    projects.py       a project's limits on this instance, shared by its tokens; its end users' counters
    admission.py      the long way in: project and end-user limits, periods, Redis, queueing (queue_ms)
"""
