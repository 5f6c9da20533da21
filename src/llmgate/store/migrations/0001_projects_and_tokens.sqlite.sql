-- Projects and their virtual tokens.
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}',
    allowed_models TEXT NOT NULL DEFAULT '[]',
    upstream_keys TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    expires_at REAL,
    is_active INTEGER NOT NULL DEFAULT 1,
    max_requests INTEGER,
    request_count INTEGER NOT NULL DEFAULT 0,
    rpm_limit INTEGER,
    tpm_limit INTEGER,
    budget_tokens INTEGER,
    tokens_used INTEGER NOT NULL DEFAULT 0,
    allowed_models TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_used_at REAL,
    revoked_at REAL
);
CREATE INDEX tokens_project_id ON tokens (project_id);
