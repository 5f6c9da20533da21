"""Controllers: HTTP in, HTTP out, nothing else.

    openai.py       /v1 (raw ASGI: the hot path); dispatches the three below
    anthropic.py    /v1/messages, /v1/messages/count_tokens for Anthropic clients (Anthropic-format errors)
    translating.py  requests for a model of the other dialect (imported only when one comes)
    token_count.py  /v1/token-count (tiktoken, imported on first use)
    health.py       /health
"""
