"""Where usage events go; each implements usage/bus.py's `Sink` (name, async write(batch), async close()):

    store.py    the store's `usage` table (SQLite or PostgreSQL), one multi-row insert per batch; what it
                refuses (the store down) spilled to its own file and replayed when it is back
    jsonl.py    a JSONL file, rotated by size, whole lines only, fsync per batch (configurable)
    http.py     POST a JSON array per batch (httpx), retried with backoff, then given up to the spill file
The raw body log (usage/raw.py) is a sink too. A sink that fails is counted and logged by the bus; the others
still get the batch, and requests never see it. What a sink spills or drops (its `spilled`, `dropped`) the bus
adds to its own counts.
"""
