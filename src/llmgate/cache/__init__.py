"""The response cache: successful answers kept by the request that determines them, served again while fresh.

    key.py      the normalised request (endpoint, model, the body's fields that matter) → its key
    store.py    Answer (what is kept), the in-process LRU bounded by bytes
    redis.py    Redis storage, shared by instances (when LLMGATE_REDIS_URL is set); a failure is a miss
    flight.py   ResponseCache: storage, per-alias TTLs, single-flight of identical misses
The pipeline's step is pipeline/cache.py.
"""
