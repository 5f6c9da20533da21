"""The only SQL: projects, virtual tokens and usage rows, behind one contract with two backends.

    base.py        records (Project, Token, UsageDelta) and the Store protocol
    backend.py     open_store: the backend a database URL names
    sqlite.py      the embedded default (aiosqlite, WAL, a file under LLMGATE_DATA_DIR)
    usage_rows.py  its usage table's batched inserts (apsw, a connection and thread of their own)
    postgres.py    PostgreSQL for several instances (asyncpg, imported lazily)
    redis.py       shared rate limits and revocation pub/sub (redis-py, imported lazily)
    crypto.py      encryption of per-project upstream keys (Fernet, key from LLMGATE_SECRET_KEY)
    migrations/    versioned schema, one SQL file per version and dialect
"""
