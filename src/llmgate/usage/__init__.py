"""Usage accounting, off the request path.

    counting.py   LLM token counting (tiktoken encodings shipped, loaded lazily)
    meter.py      the tokens a response used, from its `usage` (whole bodies and SSE stream tails)
"""
