-- One row per /v1 request (usage/event.py UsageEvent), written in batches by the store usage sink.
CREATE TABLE usage (
    request_id TEXT NOT NULL,
    time REAL NOT NULL,
    method TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    status INTEGER NOT NULL,
    stream INTEGER NOT NULL DEFAULT 0,
    model TEXT,
    deployment TEXT,
    provider TEXT,
    project_id TEXT,
    token_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    duration_ms REAL NOT NULL,
    upstream_ttfb_ms REAL,
    upstream_ms REAL NOT NULL,
    overhead_ms REAL NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    total_tokens INTEGER,
    cached_tokens INTEGER,
    estimated INTEGER NOT NULL DEFAULT 0,
    cost REAL,
    upstream_request_id TEXT,
    error TEXT
);
CREATE INDEX usage_time ON usage (time);
CREATE INDEX usage_project_time ON usage (project_id, time);
CREATE INDEX usage_token_time ON usage (token_id, time);
