"""The only upstream I/O.

    asgi.py       read the request body under a limit, send responses, watch for a client disconnect
    headers.py    rewrite headers both ways (pure)
    client.py     the pooled upstream HTTP clients (pyreqwest whole, aiohttp streamed), behind a small interface
    attempt.py    Call (one request through its attempts), Opened / Failure (how an attempt ended)
    forward.py    the attempt loop: retries, fallbacks, backoff; upstream client errors → gateway errors
    hedge.py      opt-in hedged attempts
    streaming.py  byte-for-byte stream relay; first-byte/idle deadlines and keep-alive comments
    translated.py the same guards for answers translated into the other dialect (whole or streamed)
"""
