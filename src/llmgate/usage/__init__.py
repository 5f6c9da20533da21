"""Usage accounting, off the request path.

    event.py      Exchange (stamped on the request path) and UsageEvent (what sinks get)
    meter.py      the tokens a response used, from its `usage` (whole bodies and SSE stream tails)
    tap.py        a stream's usage chunk asked for and removed again, when usage is logged
    bus.py        bounded queue + background writer: batches to every sink, spill on a full queue
    pace.py       whether the writer keeps up (a sink paces its own work only then)
    account.py    the bus's build step: event, tokens (estimate.py when the provider sent none), cost (prices.py)
    counting.py   LLM token counting (tiktoken encodings shipped, loaded lazily)
    raw.py        the raw body log (LLMGATE_RAW_LOG), secrets masked
    sinks/        store (spilled and replayed), JSONL (rotated), HTTP (retried, spilled)
"""
