"""Controllers: HTTP in, HTTP out, nothing else.

    openai.py   /v1 (raw ASGI: the hot path)
    health.py   /health
"""
