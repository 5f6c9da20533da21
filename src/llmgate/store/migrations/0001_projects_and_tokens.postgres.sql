-- Projects and their virtual tokens.
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}',
    allowed_models TEXT NOT NULL DEFAULT '[]',
    upstream_keys TEXT NOT NULL DEFAULT '{}',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    expires_at DOUBLE PRECISION,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    max_requests BIGINT,
    request_count BIGINT NOT NULL DEFAULT 0,
    rpm_limit BIGINT,
    tpm_limit BIGINT,
    budget_tokens BIGINT,
    tokens_used BIGINT NOT NULL DEFAULT 0,
    allowed_models TEXT NOT NULL DEFAULT '[]',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    last_used_at DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION
);
CREATE INDEX tokens_project_id ON tokens (project_id);
