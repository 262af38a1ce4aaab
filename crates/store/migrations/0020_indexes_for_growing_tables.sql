-- Indexes for reads that scanned a table growing with every family served
-- (found by the API test `query_plans`, which asks SQLite's planner about
-- every statement the server sends). Each cost nothing on a test database
-- and grew with the whole table in production.

-- A subscription's ledger entries, in order: every quote and cancellation
-- reads them (it scanned the whole ledger, holding SQLite's one writer),
-- and a subscription's foreign-key checks find them.
CREATE INDEX ledger_entries_subscription ON ledger_entries(subscription_id, created_at, seq);
-- A family's cancellations: erasing a deleted family's free-text reasons.
CREATE INDEX cancellations_family ON cancellations(family_id);
-- A guardian's or staff member's sessions: ending them all.
CREATE INDEX sessions_principal ON sessions(principal_id);
-- Exports by status: the worker's pending ones at start, the file sweep's
-- pending and ready ones (every export ever made keeps its row).
CREATE INDEX exports_status ON exports(status, created_at, id);
-- Written notices by the cancellation and subscription they name: the
-- foreign-key checks of those tables.
CREATE INDEX written_notices_cancellation ON written_notices(cancellation_id);
CREATE INDEX written_notices_subscription ON written_notices(subscription_id);
