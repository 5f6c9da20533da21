-- A token's budget in cost (the currency of the configured [prices]) and what it has spent.
ALTER TABLE tokens ADD COLUMN budget_cost DOUBLE PRECISION;
ALTER TABLE tokens ADD COLUMN cost_used DOUBLE PRECISION NOT NULL DEFAULT 0;
