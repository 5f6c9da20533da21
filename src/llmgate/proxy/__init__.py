"""The only upstream I/O.

    asgi.py       read the request body under a limit, send responses, watch for a client disconnect
    headers.py    rewrite headers both ways (pure)
    client.py     the pooled upstream HTTP client (wire.py), behind a small interface
    wire.py       whole and streamed answers over HTTP/1.1 on the event loop's transports, abortable
    wire_answer.py one connection of wire.py and the answer read on it (framing, flow control)
    attempt.py    Call (one request through its attempts), Opened / Failure (how an attempt ended), and
                  ClientPools, what the loop needs of the configuration
    forward.py    the attempt loop: retries, fallbacks, backoff; upstream client errors → gateway errors
    relay.py      the passthrough's delivery: the answer as it came, a stream chunk by chunk
    models.py     a provider's own model list (for /v1/models)
    hedge.py      opt-in hedged attempts
    streaming.py  byte-for-byte stream relay; first-byte/idle deadlines and keep-alive comments
    translated.py the same guards for answers translated into the other dialect (whole or streamed)
    compress.py   gzip for whole JSON answers the client accepts it for (never streams)
    google.py     translated calls to Google's APIs: the body per model, Vertex's token, RetryInfo → retry-after
    google_auth.py Vertex AI access tokens (google-auth, lazily; refreshed ahead of expiry in a thread)
    sigv4.py      AWS SigV4 signing at the transport for Bedrock providers (botocore), credentials off the loop
"""
