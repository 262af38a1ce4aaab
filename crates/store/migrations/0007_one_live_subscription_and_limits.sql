-- One live subscription per family and plan, held by the database: a
-- double-click or two tabs can never make a second one (and charge twice).
-- A second seat, if ever wanted, is an explicit quantity, not a race.
CREATE UNIQUE INDEX subscriptions_live_per_plan ON subscriptions(family_id, plan_id)
    WHERE status NOT IN ('cancelled', 'expired');

-- Saved responses for Idempotency-Key: whose they are, so that deleting a
-- family's personal data also deletes its saved responses, and when they
-- were made, so that they are pruned after the replay window.
ALTER TABLE idempotency_keys ADD COLUMN family_id TEXT;
CREATE INDEX idempotency_keys_family ON idempotency_keys(family_id) WHERE family_id IS NOT NULL;
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);

-- Failed sign-ins per account, so that the pause after repeated wrong
-- passwords survives a restart and holds across servers. The account is
-- kept as the SHA-256 of realm and email: no address is stored here.
CREATE TABLE login_failures (
    account_sha256 TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);
