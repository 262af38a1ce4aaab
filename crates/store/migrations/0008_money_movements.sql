-- Money that has still to move through the payment gateway, or has moved.
-- A refund or a fee is written to the ledger in the transaction of the
-- change that causes it, with a row here `pending`; a worker calls the
-- gateway outside any transaction and marks it `succeeded` (with the
-- gateway's reference) or, after its last attempt, `failed`, which puts it
-- in front of finance and tells the guardian. The ledger itself stays
-- append-only: this table carries the gateway's side of each entry.
CREATE TABLE money_movements (
    entry_id TEXT PRIMARY KEY REFERENCES ledger_entries(id),
    family_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT,
    last_error TEXT,
    gateway_reference TEXT,
    settled_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX money_movements_due ON money_movements(next_attempt_at) WHERE status = 'pending';
CREATE INDEX money_movements_family ON money_movements(family_id);
CREATE INDEX money_movements_failed ON money_movements(settled_at) WHERE status = 'failed';
