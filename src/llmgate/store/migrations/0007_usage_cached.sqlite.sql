-- Requests answered from the response cache (usage/event.py UsageEvent.cached).
ALTER TABLE usage ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;
