-- One row per /v1 request (usage/event.py UsageEvent), written in batches by the store usage sink.
CREATE TABLE usage (
    request_id TEXT NOT NULL,
    time DOUBLE PRECISION NOT NULL,
    method TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    status INTEGER NOT NULL,
    stream BOOLEAN NOT NULL DEFAULT FALSE,
    model TEXT,
    deployment TEXT,
    provider TEXT,
    project_id TEXT,
    token_id TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    duration_ms DOUBLE PRECISION NOT NULL,
    upstream_ttfb_ms DOUBLE PRECISION,
    upstream_ms DOUBLE PRECISION NOT NULL,
    overhead_ms DOUBLE PRECISION NOT NULL,
    prompt_tokens BIGINT,
    completion_tokens BIGINT,
    total_tokens BIGINT,
    cached_tokens BIGINT,
    estimated BOOLEAN NOT NULL DEFAULT FALSE,
    cost DOUBLE PRECISION,
    upstream_request_id TEXT,
    error TEXT
);
CREATE INDEX usage_time ON usage (time);
CREATE INDEX usage_project_time ON usage (project_id, time);
CREATE INDEX usage_token_time ON usage (token_id, time);
