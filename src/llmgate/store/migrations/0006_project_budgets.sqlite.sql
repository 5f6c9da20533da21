-- Limits and budgets that belong to a project (across all its tokens), budget periods on projects and tokens,
-- how long a request over an rpm/tpm limit may queue, and the end user a request was made for.
ALTER TABLE projects ADD COLUMN max_requests INTEGER;
ALTER TABLE projects ADD COLUMN rpm_limit INTEGER;
ALTER TABLE projects ADD COLUMN tpm_limit INTEGER;
ALTER TABLE projects ADD COLUMN budget_tokens INTEGER;
ALTER TABLE projects ADD COLUMN budget_cost REAL;
ALTER TABLE projects ADD COLUMN budget_period TEXT;
ALTER TABLE projects ADD COLUMN alert_threshold REAL;
ALTER TABLE projects ADD COLUMN queue_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN per_user TEXT NOT NULL DEFAULT '{}';
ALTER TABLE projects ADD COLUMN request_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN tokens_used INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN cost_used REAL NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN period_start REAL NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN budget_period TEXT;
ALTER TABLE tokens ADD COLUMN alert_threshold REAL;
ALTER TABLE tokens ADD COLUMN queue_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN period_start REAL NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN end_user TEXT;
CREATE INDEX usage_end_user_time ON usage (end_user, time) WHERE end_user IS NOT NULL;
