-- Requests answered from the response cache (usage/event.py UsageEvent.cached).
ALTER TABLE usage ADD COLUMN cached BOOLEAN NOT NULL DEFAULT FALSE;
