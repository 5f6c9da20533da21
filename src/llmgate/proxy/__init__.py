"""The only upstream I/O.

    asgi.py       read the request body under a limit, send responses, watch for a client disconnect
    headers.py    rewrite headers both ways (pure)
    client.py     the pooled upstream HTTP client (pyreqwest), behind a small interface
    forward.py    send one request and its answer back; upstream client errors → gateway errors
    streaming.py  byte-for-byte stream relay with first-byte/idle deadlines
    translated.py the same guards for answers translated into the other dialect (whole or streamed)
"""
